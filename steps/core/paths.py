"""Where things are on this machine: the project root, the model cache, checkpoints.

The project's own environment variables are read here and nowhere else: ``NIZAMI_ROOT``
(:func:`project_root`), ``NIZAMI_CACHE`` (:func:`cache_dir`), ``NIZAMI_CHECKPOINTS``
(:func:`checkpoint_root`) and ``NIZAMI_RESUME_FROM`` (:func:`resume_dirs`). Variables that
other programs set are read where they are used: torchrun's ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in :mod:`steps.core.train.process` and :mod:`steps.core.train.launch`, and
``SACREBLEU_SEED`` in :mod:`steps.core.evaluate.uncertainty`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

PROJECT_NAME = "nizami"  # [project] name in the checkout's pyproject.toml


def _names_this_project(pyproject: Path) -> bool:
    try:
        with pyproject.open("rb") as f:
            return tomllib.load(f).get("project", {}).get("name") == PROJECT_NAME
    except (OSError, tomllib.TOMLDecodeError):
        return False


def find_project_root() -> Path | None:
    """``NIZAMI_ROOT``, else the nearest folder at or above the current directory whose
    ``pyproject.toml`` names this project; None if neither."""
    override = os.environ.get("NIZAMI_ROOT")
    if override:
        return Path(override).resolve()
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if _names_this_project(d / "pyproject.toml")),
                None)


def project_root() -> Path:
    """The project's checkout, which relative paths in configs (data, outputs) are relative to.

    ``NIZAMI_ROOT`` when set, else the nearest folder at or above the current directory whose
    ``pyproject.toml`` names the ``nizami`` project. (The module's own location would not do:
    installed, it is in site-packages.)

    Raises:
        FileNotFoundError: neither is found; the message says how to fix it.
    """
    root = find_project_root()
    if root is None:
        raise FileNotFoundError(
            f"no nizami checkout at or above {Path.cwd()} (no pyproject.toml naming project "
            f"{PROJECT_NAME!r}): run from the checkout, or set NIZAMI_ROOT to it"
        )
    return root


def resolve_path(path: Path) -> Path:
    """A config path made absolute against the project root (:func:`project_root`)."""
    return path if path.is_absolute() else project_root() / path


def cache_dir() -> Path:
    """Where resolved base models are kept (``NIZAMI_CACHE``, default ``~/.cache/nizami``)."""
    return Path(os.environ.get("NIZAMI_CACHE", Path.home() / ".cache" / "nizami"))


def checkpoint_root(configured: Path) -> Path:
    """Where a run's checkpoints go: ``NIZAMI_CHECKPOINTS``, else ``configured`` (the train
    config's ``checkpoint_dir``) against the project root."""
    override = os.environ.get("NIZAMI_CHECKPOINTS")
    return Path(override) if override else resolve_path(configured)


def resume_dirs() -> list[Path]:
    """More folders searched for a checkpoint to resume from (``NIZAMI_RESUME_FROM``, a
    ``os.pathsep``-separated list; a Kaggle kernel sets it to ``/kaggle/input``, where the
    previous version's output is mounted)."""
    raw = os.environ.get("NIZAMI_RESUME_FROM", "")
    return [Path(part) for part in raw.split(os.pathsep) if part]
