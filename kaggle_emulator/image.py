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
        found = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"),
                       key=lambda p: _version_key(p.parents[1].name))
        if found:
            return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path:
        return Path(on_path)
    raise ImageError(
        f"no Python {version} found (pyenv or python{version} on PATH): Kaggle's image runs "
        f"{version}; install it (`pyenv install {version}`) or pass --python to the emulator"
    )


def _version_key(name: str) -> tuple[int, ...]:
    """``"3.12.10"`` → ``(3, 12, 10)`` (so that 3.12.10 sorts after 3.12.9); junk sorts first."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def _warn_if_shutdown_defect(target: Path) -> None:
    """CPython 3.12.0-3.12.2 cannot start a thread once the interpreter shuts down, and the
    OpenTelemetry logging handler of ZenML's log store starts one to flush (python/cpython#113964):
    a server-mode kernel on such a Python ends with a harmless traceback that 3.12.3 and later
    do not print (checked with OpenTelemetry's handler: 3.12.1 prints it, 3.11.7 and 3.13.0 do
    not). Said where the environment is chosen."""
    cfg = target / "pyvenv.cfg"
    lines = cfg.read_text().splitlines() if cfg.is_file() else []
    version = next((ln.split("=", 1)[1].strip() for ln in lines
                    if ln.split("=", 1)[0].strip() in ("version", "version_info")), "")
    if (3, 12, 0) <= _version_key(version)[:3] < (3, 12, 3):
        log.warning(
            "the Kaggle-like environment runs Python %s, which cannot start threads at "
            "interpreter shutdown (fixed in 3.12.3): server-mode kernels end with a harmless "
            "'can't create new thread at interpreter shutdown' traceback from ZenML's log "
            "export, which Python 3.12.3 and later do not print (`pyenv install 3.12` avoids it)",
            version,
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
        _warn_if_shutdown_defect(target)
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return python
        shutil.rmtree(target, ignore_errors=True)
        log.warning(
            "no Kaggle-like Python %s environment in %s (%s): preparing one there (~5 GB, a few "
            "minutes, once per cache; point %s at an existing one to reuse it)", IMAGE_PYTHON,
            target, f"{CACHE_ENV}" if os.environ.get(CACHE_ENV) else f"HOME={Path.home()}",
            CACHE_ENV,
        )  # fmt: skip
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
    _warn_if_shutdown_defect(target)
    return python
