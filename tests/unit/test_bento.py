"""The serving bento without a server: build arguments, the vLLM command, the build itself.

These run in the training environment, which has no vLLM: building the bento must work there.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bento import build, image
from bento.service import BentoArgs, engine_command, exit_description, seed_text, vllm_metrics


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_gpu_command_runs_vllms_openai_server_on_loopback() -> None:
    command = engine_command(BentoArgs(dtype="float16", max_model_len=2048), "/models/m")
    # its own process group (killed as one), vLLM's metrics kept out of BentoML's directory
    assert command[:4] == ["setsid", "env", "-u", "PROMETHEUS_MULTIPROC_DIR"]
    python = command.index("-m") - 1
    assert command[python] == sys.executable
    assert all("=" in part for part in command[4:python])  # only K=V for env between
    assert command[command.index("-m") + 1] == "vllm.entrypoints.openai.api_server"
    assert _flag(command, "--shutdown-timeout") == "25"  # drains on SIGTERM, as the service
    assert "--enable-prefix-caching" in command and "--enable-chunked-prefill" in command
    assert _flag(command, "--model") == "/models/m"
    assert _flag(command, "--served-model-name") == "nizami-1.7b"
    assert _flag(command, "--host") == "127.0.0.1" and _flag(command, "--port") == "8001"
    assert _flag(command, "--dtype") == "float16"
    assert _flag(command, "--max-model-len") == "2048"
    assert _flag(command, "--gpu-memory-utilization") == "0.9"
    assert _flag(command, "--reasoning-parser") == "qwen3"
    assert "--enforce-eager" not in command and "--enable-lora" not in command
    assert not any(part.startswith("VLLM_CPU") for part in command)
    assert "VLLM_HTTP_TIMEOUT_KEEP_ALIVE=75" in command  # longer than its clients' keep-alive


def test_cpu_command_carries_the_cpu_workarounds() -> None:
    args = BentoArgs(
        device="cpu", enforce_eager=True, kv_cache_gib=3, reasoning_parser=False,
        enable_prefix_caching=False,
    )  # fmt: skip
    command = engine_command(args, "/m", port=9123, shutdown_timeout=40)
    env = dict(part.split("=", 1) for part in command[4 : command.index("-m") - 1])
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert env["VLLM_CPU_OMP_THREADS_BIND"].startswith("0-")
    site = Path(env["PYTHONPATH"].split(":")[0])
    assert "_init_amx" in (site / "sitecustomize.py").read_text()
    assert "--enforce-eager" in command and "--gpu-memory-utilization" not in command
    assert "--reasoning-parser" not in command and _flag(command, "--port") == "9123"
    assert _flag(command, "--shutdown-timeout") == "40"
    assert "--no-enable-prefix-caching" in command and "--enable-chunked-prefill" in command


def test_lora_serving_keeps_the_public_model_name_for_the_adapter() -> None:
    command = engine_command(BentoArgs(max_lora_rank=32), "/base", adapter_dir="/adapter")
    assert "--enable-lora" in command and _flag(command, "--max-lora-rank") == "32"
    assert _flag(command, "--lora-modules") == "nizami-1.7b=/adapter"
    assert _flag(command, "--served-model-name") == "nizami-1.7b-base"


@pytest.mark.parametrize(
    "bad",
    [
        {"dtype": "fp8"},
        {"max_model_len": 0},
        {"gpu_memory_utilization": 1.5},
        {"engine_port": 8000},
        {"max_lora_rank": 12},
        {"max_num_seq": 8},  # a typo is an error, not a silently ignored argument
        {"kv_cache_gib": 0},  # None (the default) sizes it from the model and the memory
    ],
)
def test_bad_build_arguments_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        BentoArgs(**bad)


def test_only_vllm_series_are_added_to_metrics() -> None:
    engine = "\n".join(
        [
            "# HELP process_cpu_seconds_total CPU",
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total 1.0",
            "# HELP vllm:generation_tokens_total Generated tokens.",
            "# TYPE vllm:generation_tokens_total counter",
            'vllm:generation_tokens_total{model_name="nizami-1.7b"} 42.0',
        ]
    )
    kept = vllm_metrics(engine).splitlines()
    assert len(kept) == 3 and all("vllm:" in line for line in kept)
    assert vllm_metrics("python_info 1\n") == ""


def test_seed_text_keeps_the_think_block() -> None:
    assert seed_text({"content": " 7 ", "reasoning": "12 - 5"}) == "<think>12 - 5</think>\n\n7"
    assert seed_text({"content": "7", "reasoning": None}) == "7"
    assert seed_text({"content": None, "reasoning": "..."}) == "<think>...</think>"


def test_exit_statuses_are_told_as_they_are() -> None:
    """asyncio's return code of a process killed by a signal is minus the signal's number."""
    assert exit_description(-9) == "was killed by SIGKILL"
    assert exit_description(-15) == "was killed by SIGTERM"
    assert exit_description(0) == "exited with status 0"
    assert exit_description(1) == "exited with status 1"


@pytest.fixture(scope="module")
def model_tag(tmp_path_factory) -> str:
    model_dir = tmp_path_factory.mktemp("fake-model")
    (model_dir / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"]}))
    (model_dir / "model.safetensors").write_bytes(b"\0" * 16)
    return build.save_model(model_dir, "nizami-unit", {"zenml_version": "7"}, {"bleu": 1.0})


def test_bento_builds_without_vllm_for_both_images(model_tag: str) -> None:
    import bentoml

    assert importlib.util.find_spec("vllm") is None  # the training environment
    tags = build.build_variants("nizami-unit", model_tag, {"zenml_version": "7"})
    gpu, cpu = bentoml.get(tags["gpu"]), bentoml.get(tags["cpu"])
    assert [str(m.tag) for m in gpu.info.all_models] == [model_tag]
    assert gpu.info.args == {"model_tag": model_tag, "device": "gpu"}
    assert cpu.info.args == {"model_tag": model_tag, "device": "cpu", "enforce_eager": True}
    assert gpu.info.labels["variant"] == "gpu" and cpu.info.labels["variant"] == "cpu"
    for bento in (gpu, cpu):
        assert bento.info.services[0].config["http"]["port"] == 8000
        dockerfile = Path(bento.path, "env", "docker", "Dockerfile").read_text()
        assert "EXPOSE 8000" in dockerfile and "EXPOSE 3000" not in dockerfile
    cpu_install = Path(cpu.path, "env", "python", "install.sh").read_text()
    assert "--no-deps" in cpu_install  # torch's index: a build argument (test_image_build.py)


def test_without_docker_the_image_is_a_complete_build_context(model_tag, tmp_path, monkeypatch):
    monkeypatch.setattr(image, "find_engine", lambda: None)
    tag = build.build_bento("nizami-unit-ctx", model_tag, {}, variant="cpu")
    result = image.make_image(tag, "7", context_root=tmp_path)
    assert result.image_tags == [] and result.build_context is not None
    assert result.reason and "no Docker engine answers" in result.reason
    name, version = model_tag.split(":")
    assert (result.build_context / "models" / name / version / "model.safetensors").is_file()
    assert (result.build_context / "src" / "cpu" / "sitecustomize.py").is_file()
    assert (result.build_context / "src" / "guard.py").is_file()
    assert (result.build_context / "src" / "relay.py").is_file()  # guard.py imports it
    assert (result.build_context / "src" / "cpu_profile.py").is_file()  # service.py imports it
    dockerfile = (result.build_context / "env" / "docker" / "Dockerfile").read_text()
    assert "EXPOSE 8000" in dockerfile and "FROM python:3.11-slim" in dockerfile


SECRET = "nz-never-in-the-image-0123456789"


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_image_hygiene_on_the_generated_build_context(model_tag, tmp_path, monkeypatch, variant):
    """Non-root, HEALTHCHECK on /health, only port 8000, no secret, .git, outputs/ or wandb/.

    Keys set in the building environment (and a .git, outputs/ and wandb/ beside the bento
    sources) must not reach the context that ``docker build`` sends to the daemon.
    """
    for name in ("NIZAMI_API_KEYS", "HF_TOKEN", "WANDB_API_KEY", "KAGGLE_KEY"):
        monkeypatch.setenv(name, SECRET)
    sources = tmp_path / "bento-src"
    shutil.copytree(build.BENTO_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    for junk in (".git", "outputs", "wandb"):
        (sources / junk).mkdir()
        (sources / junk / "leak.txt").write_text(SECRET)
    (sources / ".env").write_text(f"NIZAMI_API_KEYS={SECRET}\n")
    monkeypatch.setattr(build, "BENTO_DIR", sources)
    monkeypatch.chdir(tmp_path)  # BentoML reads build files only under the working directory
    monkeypatch.setattr(image, "find_engine", lambda: None)
    tag = build.build_bento(f"nizami-unit-hygiene-{variant}", model_tag, {}, variant=variant)
    context = image.make_image(tag, "7", context_root=tmp_path / "ctx").build_context
    assert context is not None
    dockerfile = (context / "env" / "docker" / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users[-1] not in {"root", "0"}, users  # the last USER is the one that runs
    assert [line for line in lines if line.startswith("EXPOSE")] == ["EXPOSE 8000"]
    health = dockerfile[dockerfile.index("HEALTHCHECK") :].split("\n\n")[0]
    assert "http://127.0.0.1:%s/health" in health and '"BENTOML_PORT", "8000"' in health
    assert dockerfile.index("HEALTHCHECK") > dockerfile.index("USER bentoml")
    names = {part for path in context.rglob("*") for part in path.relative_to(context).parts}
    assert not names & {".git", "outputs", "wandb", ".env", ".netrc", "kaggle.json"}, names
    for path in context.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "NIZAMI_API_KEYS" not in dockerfile
