"""From a DVC-tracked JSONL file to chat-rendered train and held-out splits."""

from __future__ import annotations

import hashlib
import logging
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel

from steps.core.config import DataConfig
from steps.core.data.examples import (
    Example,
    Target,
    assistant_text,
    messages,
    read_examples,
    split_examples,
)
from steps.core.paths import project_root

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


class ChatExample(BaseModel):
    """One example rendered with the base model's chat template.

    ``prompt`` ends with the generation prompt; ``completion`` is the assistant turn the model
    learns (loss is computed on its tokens only) and ``prompt + completion`` is the full text.
    """

    id: str
    question: str
    answer: str
    reference: str
    prompt: str
    completion: str
    family: str | None = None
    target: Target | None = None


class DatasetSplit(BaseModel):
    train: list[ChatExample]
    held_out: list[ChatExample]
    source: str
    data_hash: str


class TokenStats(BaseModel):
    mean: float
    p50: float
    p95: float
    max: int
    over_max_length: int


def _locate(cfg: DataConfig, repo: Path | None) -> tuple[Path, Path]:
    """The data file and its DVC pointer (``<file>.dvc``, which may not exist); a relative
    ``cfg.path`` is relative to ``repo`` (default: the project root)."""
    path = cfg.path if cfg.path.is_absolute() else (repo or project_root()) / cfg.path
    return path, path.with_name(path.name + ".dvc")


def data_version(cfg: DataConfig, repo: Path | None = None) -> str:
    """A cheap identity of the data for step caching, read without DVC: the pinned revision,
    the md5 recorded in the DVC pointer, or the md5 of an untracked file."""
    if cfg.rev:
        return f"rev:{cfg.rev}"
    path, pointer = _locate(cfg, repo)
    if pointer.is_file():
        return "md5:" + yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
    return f"file-md5:{hashlib.md5(path.read_bytes()).hexdigest()}" if path.is_file() else "missing"


def fetch_data(cfg: DataConfig, repo: Path | None = None) -> tuple[Path, str]:
    """Make the data file present locally and return it with its content hash.

    A file tracked by DVC (``<path>.dvc`` exists, or ``rev`` is pinned) is pulled from the
    DVC remote of ``repo`` (default: the project root) at ``rev`` and identified by its DVC md5;
    any other file is read as it is and identified by its own md5.
    """
    path, pointer = _locate(cfg, repo)
    if cfg.rev is None and not pointer.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: data file not found (and no {pointer.name})")
        return path, hashlib.md5(path.read_bytes()).hexdigest()

    import dvc.api
    from dvc.repo import Repo

    repo = repo or project_root()
    rel = str(path.relative_to(repo))
    # The remote keeps the object at .../files/md5/<first 2 hex>/<other 30>: that is its hash.
    md5 = "".join(dvc.api.get_url(rel, repo=str(repo), rev=cfg.rev).split("/")[-2:])
    if cfg.rev is None:
        with Repo(str(repo)) as dvc_repo:
            stats = dvc_repo.pull(targets=[str(path)])  # DVC resolves targets against the cwd
        log.info("dvc pull %s: %s", rel, stats)
        return path, md5
    pinned = repo / ".dvc" / "tmp" / f"{path.stem}-{md5}{path.suffix}"
    if not pinned.is_file():
        pinned.parent.mkdir(parents=True, exist_ok=True)
        pinned.write_bytes(dvc.api.read(rel, repo=str(repo), rev=cfg.rev, mode="rb"))
    log.info("dvc read %s@%s -> %s", rel, cfg.rev, pinned)
    return pinned, md5


def render(example: Example, tokenizer: PreTrainedTokenizerBase) -> ChatExample:
    """Render an example with the tokenizer's chat template, split into prompt and completion."""
    prompt = tokenizer.apply_chat_template(
        messages(example, with_answer=False), tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(messages(example), tokenize=False)
    if not full.startswith(prompt):
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the full conversation; "
            f"cannot separate the assistant turn for example {example.id!r}"
        )
    return ChatExample(
        id=example.id,
        question=example.question,
        answer=example.answer,
        reference=assistant_text(example),
        prompt=prompt,
        completion=full[len(prompt) :],
        family=example.family,
        target=example.target,
    )


def token_stats(
    rows: list[ChatExample], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> TokenStats:
    lengths = [
        len(tokenizer(r.prompt + r.completion, add_special_tokens=False)["input_ids"]) for r in rows
    ]
    ordered = sorted(lengths)
    return TokenStats(
        mean=round(statistics.fmean(lengths), 1),
        p50=float(statistics.median(lengths)),
        p95=float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]),
        max=ordered[-1],
        over_max_length=sum(n > max_length for n in lengths),
    )


def load_dataset(
    cfg: DataConfig, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[DatasetSplit, dict]:
    """Fetch, validate (all-or-nothing), split and render the data.

    Returns:
        The split and a metadata dict (hash, counts, token-length statistics).
    """
    path, data_hash = fetch_data(cfg)
    examples = read_examples(path)
    train, held_out = split_examples(
        examples, held_out=cfg.held_out, seed=cfg.seed, stratify=cfg.stratify
    )
    if cfg.max_train_examples is not None:
        train = train[: cfg.max_train_examples]
    split = DatasetSplit(
        train=[render(e, tokenizer) for e in train],
        held_out=[render(e, tokenizer) for e in held_out],
        source=str(cfg.path) + (f"@{cfg.rev}" if cfg.rev else ""),
        data_hash=data_hash,
    )
    metadata = {
        "data_hash": data_hash,
        "source": split.source,
        "examples": len(examples),
        "train_examples": len(split.train),
        "held_out_examples": len(split.held_out),
        "held_out_per_family": _count_families(split.held_out),
        "train_tokens": token_stats(split.train, tokenizer, max_length).model_dump(),
    }
    return split, metadata


def _count_families(rows: list[ChatExample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.family or "(none)"] = counts.get(row.family or "(none)", 0) + 1
    return dict(sorted(counts.items()))
