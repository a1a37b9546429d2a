"""From the DVC-tracked file to rendered splits: fetching, hashing, rendering, statistics."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from steps.core.config import DataConfig
from steps.core.data.dataset import data_version, fetch_data, load_dataset, render, token_stats
from steps.core.data.examples import Example, assistant_text
from steps.core.modeling import load_tokenizer

DATA = ROOT / "data" / "nizami.jsonl"
POINTER = ROOT / "data" / "nizami.jsonl.dvc"
EXAMPLE = Example(
    id="az-0001",
    question="Əlinin 12 alması var. O, 5 alma yedi. Neçə alma qaldı?",
    reasoning="12 - 5 = 7.",
    answer="7 alma qaldı.",
)


def _recorded_md5() -> str:
    return yaml.safe_load(POINTER.read_text())["outs"][0]["md5"]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tokenizer(tiny_base_dir):
    return load_tokenizer(tiny_base_dir)


@pytest.fixture
def fresh_clone(tmp_path) -> Path:
    """What a fresh ``git clone`` holds: DVC config, the pointer and the in-repo remote only."""
    repo = tmp_path / "clone"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copytree(ROOT / "dvc-store", repo / "dvc-store")
    (repo / "data").mkdir()
    shutil.copy2(POINTER, repo / "data")
    assert not (repo / "data" / "nizami.jsonl").exists()
    return repo


def test_fetch_tracked_file_returns_the_dvc_md5() -> None:
    path, data_hash = fetch_data(DataConfig())

    assert path == DATA
    assert data_hash == _recorded_md5()
    assert _md5(path) == data_hash


@pytest.mark.parametrize("cwd", ["repo", "elsewhere"])
def test_dvc_pull_on_a_fresh_clone(fresh_clone, tmp_path, monkeypatch, cwd: str) -> None:
    monkeypatch.chdir(fresh_clone if cwd == "repo" else tmp_path)

    path, data_hash = fetch_data(DataConfig(), repo=fresh_clone)

    assert path == fresh_clone / "data" / "nizami.jsonl"
    assert path.read_bytes() == DATA.read_bytes()
    assert data_hash == _recorded_md5()


def test_pinned_revision_is_read_from_git(fresh_clone) -> None:
    git = ["git", "-C", str(fresh_clone), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data"], check=True)

    path, data_hash = fetch_data(DataConfig(rev="HEAD"), repo=fresh_clone)

    assert data_hash == _recorded_md5()
    assert path.is_relative_to(fresh_clone / ".dvc" / "tmp")
    assert data_hash in path.name
    assert path.read_bytes() == DATA.read_bytes()
    assert not (fresh_clone / "data" / "nizami.jsonl").exists()


def test_plain_file_is_hashed_as_it_is(tmp_path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(DATA.read_bytes()[:1000] + b"\n")

    relative = fetch_data(DataConfig(path=Path("mine.jsonl")), repo=tmp_path)
    absolute = fetch_data(DataConfig(path=path))

    assert relative == absolute == (path, _md5(path))
    assert relative[1] != _recorded_md5()


def test_missing_plain_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl: data file not found"):
        fetch_data(DataConfig(path=Path("nope.jsonl")), repo=tmp_path)


def test_render_splits_prompt_and_completion(tokenizer) -> None:
    row = render(EXAMPLE, tokenizer)

    assert row.prompt == f"<|im_start|>user\n{EXAMPLE.question}<|im_end|>\n<|im_start|>assistant\n"
    assert row.completion == assistant_text(EXAMPLE) + "<|im_end|>\n"
    assert row.reference == assistant_text(EXAMPLE)
    assert (row.id, row.question, row.answer) == (EXAMPLE.id, EXAMPLE.question, EXAMPLE.answer)


def test_render_rejects_a_template_without_a_prompt_prefix(tiny_base_dir) -> None:
    tokenizer = load_tokenizer(tiny_base_dir)
    tokenizer.chat_template = (
        "{%- for m in messages|reverse %}{{ m['role'] + ': ' + m['content'] + '\\n' }}"
        "{%- endfor %}{%- if add_generation_prompt %}assistant: {%- endif %}"
    )

    with pytest.raises(ValueError, match="az-0001"):
        render(EXAMPLE, tokenizer)


def test_token_stats(tokenizer, tiny_split) -> None:
    rows = tiny_split.train[:20]
    lengths = sorted(
        len(tokenizer(r.prompt + r.completion, add_special_tokens=False)["input_ids"]) for r in rows
    )
    cutoff = lengths[10]

    stats = token_stats(rows, tokenizer, max_length=cutoff)

    assert stats.max == lengths[-1]
    assert stats.over_max_length == sum(n > cutoff for n in lengths) > 0
    assert lengths[0] <= stats.p50 <= stats.p95 <= stats.max
    assert lengths[0] <= stats.mean <= stats.max


def test_load_dataset_metadata(tiny_config, tokenizer) -> None:
    split, metadata = load_dataset(tiny_config.data, tokenizer, tiny_config.train.max_length)

    assert metadata["examples"] == 1120
    assert metadata["held_out_examples"] == len(split.held_out) == 50
    per_family = metadata["held_out_per_family"]  # stratified: 50 over 14 families
    assert sum(per_family.values()) == 50 and set(per_family.values()) == {3, 4}
    assert all(r.target is not None for r in split.held_out)
    assert metadata["train_examples"] == len(split.train) == 96
    assert metadata["data_hash"] == split.data_hash == _recorded_md5()
    assert metadata["source"] == split.source == "data/nizami.jsonl"
    stats = metadata["train_tokens"]
    assert set(stats) == {"mean", "p50", "p95", "max", "over_max_length"}
    assert 0 < stats["p50"] <= stats["p95"] <= stats["max"]
    assert not {r.id for r in split.train} & {r.id for r in split.held_out}


def test_load_dataset_without_cap_uses_every_other_example(tiny_config, tokenizer) -> None:
    data = tiny_config.data.model_copy(update={"max_train_examples": None})

    split, metadata = load_dataset(data, tokenizer, max_length=256)

    assert metadata["train_examples"] == len(split.train) == 1120 - 50
    capped, _ = load_dataset(tiny_config.data, tokenizer, max_length=256)
    assert [r.id for r in split.train[:96]] == [r.id for r in capped.train]
    assert [r.id for r in split.held_out] == [r.id for r in capped.held_out]


def test_data_version_agrees_with_what_load_data_fetches(tmp_path) -> None:
    # The cache key of load_data is read without DVC; it must name the same content hash.
    _, md5 = fetch_data(DataConfig())
    assert data_version(DataConfig()) == f"md5:{md5}"
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"id": "a"}\n', encoding="utf-8")
    cfg = DataConfig(path=plain)
    before = data_version(cfg)
    assert before == f"file-md5:{fetch_data(cfg)[1]}"
    plain.write_text('{"id": "b"}\n', encoding="utf-8")
    assert data_version(cfg) != before  # edited data misses the cache
    assert data_version(DataConfig(rev="v1.0")) == "rev:v1.0"
