"""Pure functions for one Kaggle kernel: names, metadata, the pushed script, its log.

Nothing here talks to Kaggle or ZenML; ``standalone.py`` wires these together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from uuid import UUID

from kaggle_orchestrator.checkpoint_contract import KERNEL_CHECKPOINTS, KERNEL_ENV

BUNDLE_FILE = "bundle.tar.gz"
BUNDLE_SUFFIX = "-bundle"
REPORT_FILE = "kernel-report.json"  # what the kernel found and installed (no secrets)
# Server mode: the step environment (the run-scoped ZenML token) in the private bundle only.
ENVIRONMENT_FILE = "environment.json"
MAX_SLUG = 50  # Kaggle's limit for dataset slugs; the bundle's slug is the kernel's + "-bundle"
# CANCEL_REQUESTED is not final: the session may still run until Kaggle acknowledges it.
FINISHED = {"COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED"}
FAILED = FINISHED - {"COMPLETE"}
MAX_SOURCE_BYTES = 1_000_000  # Kaggle rejects kernel sources of 1 MB or more


@dataclass(frozen=True)
class KernelNames:
    """The kernel and bundle-dataset slugs of one step run (deterministic)."""

    kernel: str
    dataset: str

    @classmethod
    def for_step_run(cls, prefix: str, step_name: str, step_run_id: UUID) -> KernelNames:
        """``<prefix>-<step>-<12 hex of the step run id>``; dataset adds ``-bundle``.

        Slugs are lower-case ``[a-z0-9-]``, 5–50 characters (Kaggle's limits, the dataset's
        included), so the title slugifies to exactly the slug and Kaggle files the kernel where
        we poll it. A long prefix or step name is shortened; the run id part never is.
        """
        step = re.sub(r"[^a-z0-9]+", "-", step_name.lower()).strip("-")[:16] or "step"
        suffix = f"-{step_run_id.hex[:12]}"
        head = f"{prefix}-{step}"[: MAX_SLUG - len(suffix) - len(BUNDLE_SUFFIX)].rstrip("-")
        return cls(kernel=head + suffix, dataset=head + suffix + BUNDLE_SUFFIX)


def pinned_requirements(packages: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """``name==version`` for each package installed here (skipping absent ones), plus ``extra``."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins + list(extra)


def kernel_metadata(
    owner: str,
    names: KernelNames,
    machine_shape: str | None,
    enable_internet: bool,
    dataset_sources: Iterable[str] = (),
    model_sources: Iterable[str] = (),
    kernel_sources: Iterable[str] = (),
) -> dict:
    """``kernel-metadata.json``: always private; a GPU kernel always names its machine shape.
    ``kernel_sources`` attaches other kernels' outputs (a previous version's, to resume)."""
    meta = {
        "id": f"{owner}/{names.kernel}",
        "title": names.kernel,
        "code_file": "kernel.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": machine_shape is not None,
        "enable_tpu": False,
        "enable_internet": enable_internet,
        "dataset_sources": [f"{owner}/{names.dataset}", *dataset_sources],
        "model_sources": list(model_sources),
        "kernel_sources": list(kernel_sources),
    }
    if machine_shape:
        meta["machine_shape"] = machine_shape
    return meta


def dataset_metadata(owner: str, names: KernelNames) -> dict:
    """``dataset-metadata.json`` of the private bundle dataset."""
    return {"title": names.dataset, "id": f"{owner}/{names.dataset}",
            "licenses": [{"name": "other"}]}


def kernel_script(
    owner: str,
    names: KernelNames,
    requirements: list[str],
    check_imports: list[str] | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """The single code file Kaggle runs: ``kernel_entry.py`` with its ``CONFIG`` filled in.

    Args:
        owner: The account that owns the bundle dataset.
        names: The kernel's and bundle's slugs.
        requirements: Pinned requirements to install where the image's version differs.
        check_imports: For the pre-flight check: import these modules instead of running a
            step.
        command: Server mode: ZenML's step entrypoint command, run with the environment
            that the private bundle holds (``ENVIRONMENT_FILE``), never this source.
        env: Further variables for the kernel (not secret: the source is kept by Kaggle).
    """
    config = {
        "owner": owner,
        "dataset": names.dataset,
        "bundle_file": BUNDLE_FILE,
        "report_file": REPORT_FILE,
        "requirements": list(requirements),
        "env": KERNEL_ENV | (env or {}),
        "checkpoints": KERNEL_CHECKPOINTS,
        "check_only": check_imports is not None,
        "check_imports": list(check_imports or []),
        "command": list(command or []),
        "environment_file": ENVIRONMENT_FILE,
    }
    template = (Path(__file__).with_name("kernel_entry.py")).read_text(encoding="utf-8")
    placeholder = "CONFIG: dict = {}\n"
    if template.count(placeholder) != 1:
        raise RuntimeError("kernel_entry.py must hold exactly one 'CONFIG: dict = {}' line")
    script = template.replace(placeholder, f"CONFIG: dict = {config!r}\n")
    if len(script.encode()) >= MAX_SOURCE_BYTES:
        raise ValueError("kernel script exceeds Kaggle's 1 MB source limit")
    return script


def log_chunks(raw: str) -> list[str]:
    """Kaggle's stored log (a JSON array of ``{stream_name, time, data}``) as its ``data``
    chunks, in order; text that is not such an array is one chunk."""
    if not raw:
        return []
    try:
        records = json.loads(raw)
    except json.JSONDecodeError:
        return [raw]
    if not isinstance(records, list):
        return [raw]
    return [str(r.get("data", "")) for r in records if isinstance(r, dict)]


def log_lines(raw: str) -> list[str]:
    """Kaggle's stored log as text lines."""
    return "".join(log_chunks(raw)).splitlines()


def tail(lines: list[str], n: int = 30) -> str:
    """The last ``n`` lines, for error messages."""
    return "\n".join(lines[-n:])
