"""A Python environment prepared like Kaggle's image, for the emulator's kernel sessions.

Kaggle's image (``Kaggle/docker-python``, built on Colab's runtime) runs **Python 3.12** with its
own CUDA torch, ``transformers>=5`` (older than our pin), ``accelerate``, ``datasets`` and
``wandb``, and none of zenml or peft. Running kernels on this project's 3.11 venv, where every
pin is already installed, would never execute a kernel's install branch; this environment
makes it run, exactly as on Kaggle.

``prepare_image()`` builds it once (a venv from a Python 3.12 found through pyenv or on
``PATH``, then ``pip install`` of ``IMAGE_REQUIREMENTS``: ~5 GB, a few minutes with an empty
pip cache, since PyPI's Linux torch is the CUDA build) under ``NIZAMI_KAGGLE_IMAGE_CACHE``
(default ``~/.cache/nizami/kaggle-image``) and reuses it while its requirements are unchanged;
``python -m kaggle_emulator --prepare-image`` builds it ahead of time.
Sessions never change it: the emulator overlays it per session (``isolation.py``).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_PYTHON = "3.12"
# What the image has that matters to our kernels (versions older than our pins on purpose,
# torch as Kaggle's is: a CUDA build, which also runs on a CPU).
IMAGE_REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==5.0.0",
    "accelerate==1.10.0",
    "datasets==4.0.0",
    "wandb==0.21.0",
)
CACHE_ENV = "NIZAMI_KAGGLE_IMAGE_CACHE"


class ImageError(RuntimeError):
    """The Kaggle-like environment cannot be built here."""


def find_python(version: str = IMAGE_PYTHON) -> Path:
    """A Python ``version`` interpreter: pyenv's newest ``version.*``, else ``python<version>``.

    Raises:
        ImageError: None is installed.
    """
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        found = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"))
        if found:
            return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path:
        return Path(on_path)
    raise ImageError(
        f"no Python {version} found (pyenv or python{version} on PATH): Kaggle's image runs "
        f"{version}; install it (`pyenv install {version}`) or pass --python to the emulator"
    )


def image_dir(cache: Path | None = None) -> Path:
    """Where the environment for the current ``IMAGE_REQUIREMENTS`` lives."""
    cache = cache or Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache/nizami/kaggle-image")
    digest = hashlib.sha256("\n".join((IMAGE_PYTHON, *IMAGE_REQUIREMENTS)).encode()).hexdigest()
    return cache / f"py{IMAGE_PYTHON}-{digest[:12]}"


def prepare_image(cache: Path | None = None) -> Path:
    """The image's interpreter, building the environment first if needed (once per cache).

    Safe to call from several processes at once: a file lock serializes the build.

    Raises:
        ImageError: No Python 3.12, or the install failed (pip's output is in the message).
    """
    target = image_dir(cache)
    python = target / "bin" / "python"
    stamp = target / ".ready"
    if stamp.is_file():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return python
        shutil.rmtree(target, ignore_errors=True)
        log.warning("preparing the Kaggle-like Python %s environment in %s (once; ~5 GB)",
                    IMAGE_PYTHON, target)
        base = find_python()
        steps = [
            [str(base), "-m", "venv", str(target)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *IMAGE_REQUIREMENTS],
        ]
        for command in steps:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise ImageError(f"preparing the Kaggle-like image failed: {' '.join(command)}\n"
                                 f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        stamp.write_text("\n".join(IMAGE_REQUIREMENTS) + "\n")
    return python
