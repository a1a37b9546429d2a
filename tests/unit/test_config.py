"""Every shipped config loads; a bad one fails with a message that names the file and field."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from pydantic import BaseModel

from steps.core.config import (
    LORA_TARGETS,
    ConfigError,
    PipelineConfig,
    load_config,
)
from steps.core.paths import project_root, resolve_path

CONFIGS = sorted((ROOT / "pipelines" / "configs").glob("*.yaml"))
MINIMAL = {"base_model": {"source": "tiny", "name": "t", "tiny": {}}, "gate": {"bleu_threshold": 1}}


def _write(tmp_path: Path, content: dict | str) -> Path:
    path = tmp_path / "bad.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(content)
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_configs_are_shipped() -> None:
    assert {p.name for p in CONFIGS} >= {"tiny.yaml", "demo.yaml", "nizami-1.7b.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    config = load_config(path)

    assert isinstance(config, PipelineConfig)
    assert config.data.path == Path("data/nizami.jsonl")
    production = path.name == "nizami-1.7b.yaml"
    assert config.data.held_out == (308 if production else 50)
    assert config.data.stratify is (path.name != "nizami-1.7b-seed-eval.yaml")


def test_relative_path_resolves_against_the_project_root(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NIZAMI_ROOT", raising=False)
    monkeypatch.chdir(ROOT / "stacks")  # inside the checkout: found upwards
    assert project_root() == ROOT
    assert load_config("pipelines/configs/tiny.yaml").base_model.source == "tiny"

    monkeypatch.chdir(tmp_path)  # outside it (an installed package): NIZAMI_ROOT says where
    with pytest.raises(FileNotFoundError, match="set NIZAMI_ROOT"):
        resolve_path(Path("outputs"))
    monkeypatch.setenv("NIZAMI_ROOT", str(ROOT))
    assert load_config("pipelines/configs/tiny.yaml").base_model.source == "tiny"
    assert resolve_path(Path("outputs")) == ROOT / "outputs"


def test_minimal_config_fills_in_defaults(tmp_path) -> None:
    config = load_config(_write(tmp_path, MINIMAL))

    assert config.lora.target_modules == LORA_TARGETS
    assert config.train.precision == "fp32"
    assert config.gate.tolerance == 0.5


def test_unknown_field_is_named(tmp_path) -> None:
    path = _write(tmp_path, MINIMAL | {"train": {"epochs": 1, "batchsize": 4}})

    message = _error(path)

    assert "train.batchsize" in message
    assert "unknown field" in message


def test_wrong_type_names_the_field(tmp_path) -> None:
    path = _write(tmp_path, MINIMAL | {"train": {"epochs": "many"}})

    message = _error(path)

    assert "train.epochs" in message
    assert "batchsize" not in message


def test_every_problem_is_listed(tmp_path) -> None:
    path = _write(tmp_path, MINIMAL | {"train": {"epochs": -1}, "lora": {"rank": 8}})

    lines = _error(path).splitlines()

    assert any("train.epochs" in line for line in lines)
    assert any("lora.rank: unknown field" in line for line in lines)
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_missing_gate_is_named(tmp_path) -> None:
    raw = {k: v for k, v in MINIMAL.items() if k != "gate"}

    path = _write(tmp_path, raw)

    assert f"{path}: gate: Field required" in _error(path)


def test_gguf_source_without_file_fails(tmp_path) -> None:
    raw = MINIMAL | {"base_model": {"source": "gguf", "name": "m", "gguf_package": "pkg"}}

    message = _error(_write(tmp_path, raw))

    assert "base_model" in message
    assert "gguf_file" in message


def test_tiny_source_without_shape_fails(tmp_path) -> None:
    raw = MINIMAL | {"base_model": {"source": "tiny", "name": "t"}}

    assert "'tiny' block" in _error(_write(tmp_path, raw))


def test_unknown_source_fails(tmp_path) -> None:
    raw = MINIMAL | {"base_model": {"source": "ollama", "name": "m"}}

    assert "base_model.source" in _error(_write(tmp_path, raw))


def test_invalid_yaml(tmp_path) -> None:
    message = _error(_write(tmp_path, "train: [epochs: 1\n"))

    assert "invalid YAML" in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_top_level_must_be_a_mapping(tmp_path, text: str) -> None:
    assert "expected a mapping at the top level" in _error(_write(tmp_path, text))


def test_missing_file(tmp_path) -> None:
    assert "not found" in _error(tmp_path / "nope.yaml")


def test_production_recipe() -> None:
    config = load_config(ROOT / "pipelines" / "configs" / "nizami-1.7b.yaml")

    assert config.base_model.source == "hub"
    assert config.base_model.name == "Qwen/Qwen3-1.7B"
    assert (config.lora.r, config.lora.alpha) == (16, 32)
    assert config.lora.target_modules == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert config.train.precision == "fp16"
    assert config.train.lr_scheduler == "cosine"
    assert config.train.epochs == 2


def test_config_is_frozen(tiny_config) -> None:
    with pytest.raises(ValueError):
        tiny_config.train.epochs = 3


def test_the_kaggle_eval_run_config_sends_evaluate_to_a_kernel_with_its_packages() -> None:
    from importlib import metadata

    from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import (
        OPERATOR_WIDE,
        KaggleStepOperatorSettings,
    )

    run_config = yaml.safe_load(
        (ROOT / "stacks" / "run-configs" / "kaggle-eval-on-kaggle.yaml").read_text()
    )
    plain = yaml.safe_load((ROOT / "stacks" / "run-configs" / "kaggle.yaml").read_text())
    assert run_config["steps"]["train"] == plain["steps"]["train"]
    evaluate = run_config["steps"]["evaluate"]
    assert evaluate["step_operator"] == "kaggle"
    settings = KaggleStepOperatorSettings(**evaluate["settings"]["step_operator"])
    assert settings.machine_shape == "NvidiaTeslaT4"
    assert not set(OPERATOR_WIDE) & set(evaluate["settings"]["step_operator"])
    # What the evaluation code imports beyond the operator's packages, each installed here (so
    # pinned): the step's Docker requirements, which the kernel pins in either mode.
    for package in ("evaluate", "sacrebleu", "rouge-score", "absl-py", "nltk"):
        assert package in evaluate["settings"]["docker"]["requirements"]
        assert metadata.version(package)


def _config_models() -> list[type[BaseModel]]:
    """Every pydantic model of the config schema, found from PipelineConfig down."""
    found, todo = [], [PipelineConfig]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            for kind in (field.annotation, *typing.get_args(field.annotation)):
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    todo.append(kind)
    return found


def test_every_config_field_has_a_description() -> None:
    """A YAML key's meaning is one hop away: its field in steps/core/config.py says it (and
    ZenML's dashboard shows it)."""
    models = _config_models()
    assert {m.__name__ for m in models} >= {
        "PipelineConfig", "ModelConfig", "TinyModelConfig", "DataConfig", "LoraSettings",
        "TrainConfig", "EvalConfig", "GateConfig", "RegistryConfig", "PackageConfig",
    }
    missing = [f"{m.__name__}.{name}" for m in models
               for name, field in m.model_fields.items() if not field.description]
    assert not missing, f"config fields without a description: {missing}"
