"""Which torch `make install` takes: never PyPI's multi-GB CUDA build on a machine without a GPU."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers import ROOT

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def _torch_line(tmp_path: Path, *, gpu: bool, wheels: Path | None) -> str:
    """The torch install command `make install` would run (``make -n``), on a PATH with or
    without ``nvidia-smi`` and with or without a local wheel folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    if wheels is not None:
        env["PIP_FIND_LINKS"] = str(wheels)
    done = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "install", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    (line,) = [x for x in done.stdout.splitlines() if "pip install -q" in x and "torch" in x]
    return line


def test_without_a_gpu_the_cpu_index(tmp_path: Path) -> None:
    line = _torch_line(tmp_path, gpu=False, wheels=None)
    assert "torch==2.13.0" in line and CPU_INDEX in line


def test_with_an_nvidia_gpu_pypi_s_cuda_build(tmp_path: Path) -> None:
    line = _torch_line(tmp_path, gpu=True, wheels=None)
    assert "torch==2.13.0" in line and "--extra-index-url" not in line


def test_a_local_cpu_wheel_is_used_offline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.touch()
    line = _torch_line(tmp_path, gpu=False, wheels=wheels)
    assert line.endswith(f"pip install -q {wheel}")
