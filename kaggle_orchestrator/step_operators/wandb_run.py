"""One W&B run per step that runs in a Kaggle kernel: the kernel's, linked from the step.

ZenML's wandb tracker would open a run on this machine for the step (an empty one: the work
happens on Kaggle) while the kernel logs into another, offline, with none of the step's
identity. Instead, ``KernelWandbRun.for_step`` computes what ZenML's tracker would pass to
``wandb.init`` (name ``<run>_<step>``, group = the ZenML run, the step's tags, the run id),
adds the training config, and the kernel's offline run is created with exactly that (no API key
travels: the kernel runs offline). The tracker is told not to open its own run
(``KernelStepRunner``), and the step's metadata links to this run id. Back here the run folder
is kept under ``$WANDB_DIR/wandb/``; an online tracker syncs it into W&B with the same id, an
offline one leaves it there and the step log prints the ``wandb sync`` command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class KernelWandbRun:
    """What the kernel's ``wandb.init`` gets (``online``/``api_key`` stay on this machine)."""

    id: str
    name: str
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    online: bool = field(default=False, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def for_step(cls, tracker: Any, info: Any, config: dict[str, Any]) -> KernelWandbRun:
        """The run ZenML's ``wandb`` tracker would open for the step in ``info``."""
        from zenml.integrations.wandb.experiment_trackers.run_initialization import (
            build_wandb_initialization,
        )

        settings = tracker.get_settings(info)
        kwargs = build_wandb_initialization(config=tracker.config, settings=settings, info=info)
        mode = (kwargs.get("settings") or {}).get("mode")
        online = mode != "offline" and os.environ.get("WANDB_MODE") != "offline"
        api_key = tracker.config.api_key
        if hasattr(tracker, "decision"):  # the project's tracker: this run's mode and key
            decision = tracker.decision(info)
            online, api_key = decision.online, decision.key
        return cls(
            id=kwargs.get("id") or uuid.uuid4().hex[:8],
            name=kwargs["name"], project=kwargs.get("project"), entity=kwargs.get("entity"),
            group=kwargs.get("group") or info.run_name, tags=list(kwargs.get("tags") or []),
            config={**(kwargs.get("config") or {}), **config},
            online=online, api_key=api_key,
        )  # fmt: skip

    def for_kernel(self) -> dict[str, Any]:
        """The manifest's ``wandb`` entry: init arguments only, never the key."""
        return {k: v for k, v in asdict(self).items() if k not in ("online", "api_key")}

    @property
    def url(self) -> str:
        """Where the run is (once synced)."""
        return f"https://wandb.ai/{self.entity or '<your-entity>'}/{self.project}/runs/{self.id}"

    def metadata(self) -> dict[str, Any]:
        """The step's W&B metadata, as ZenML's tracker would record it for its own run."""
        from zenml.metadata.metadata_types import Uri

        return {
            "experiment_tracker_url": Uri(self.url), "wandb_url": self.url,
            "wandb_run_id": self.id, "wandb_run_name": self.name, "wandb_group": self.group,
            "wandb_project": self.project, "wandb_mode": "online" if self.online else "offline",
        }  # fmt: skip

    def sync_command(self, run_dir: Path) -> list[str]:
        """``wandb sync`` of the kernel's offline run into this run id."""
        command = [sys.executable, "-m", "wandb", "sync", "--id", self.id]
        if self.project:
            command += ["--project", self.project]
        if self.entity:
            command += ["--entity", self.entity]
        return [*command, str(run_dir)]

    def bring_back(self, kernel_wandb: Path, local: Path) -> list[Path]:
        """Copy the kernel's run folder(s) for this id under ``local``, where they stay.

        Returns:
            The local run folders.
        """
        runs = sorted(kernel_wandb.glob(f"offline-run-*-{self.id}"))
        local.mkdir(parents=True, exist_ok=True)
        for run in runs:
            shutil.copytree(run, local / run.name, dirs_exist_ok=True)
        return [local / run.name for run in runs]

    def sync(self, run_dir: Path, timeout_s: float | None = None) -> str | None:
        """``wandb sync`` of ``run_dir`` into this run id, bounded in time; None when it worked,
        else why not. Never raises: W&B being down must not fail the step or lose its outputs.

        The wait is ``timeout_s`` (default ``NIZAMI_WANDB_SYNC_TIMEOUT_S``, 120 s); past it the
        sync and the processes it started are killed.
        """
        if timeout_s is None:
            timeout_s = float(os.environ.get("NIZAMI_WANDB_SYNC_TIMEOUT_S", "120"))
        env = os.environ | ({"WANDB_API_KEY": self.api_key} if self.api_key else {})
        try:
            proc = subprocess.Popen(self.sync_command(run_dir), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)  # fmt: skip
        except OSError as error:
            return f"wandb sync did not start: {error}"
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"W&B did not answer within {timeout_s:.0f} s"
        if proc.returncode != 0:
            last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
            return f"wandb sync exited {proc.returncode}: {last[0]}"
        return None
