"""The session a pushed kernel version runs in, laid out and isolated like a Kaggle session.

Each version gets ``<root>/kernels/<owner>/<slug>/<version>/``, whose ``kaggle/`` folder the
session sees at the real ``/kaggle``::

    /kaggle/input/datasets/<owner>/<slug>/...   attached datasets (read-only), Kaggle's 2026 layout
    /kaggle/input/notebooks/<owner>/<slug>/...  attached kernels' outputs (``kernel_sources``)
    /kaggle/working/                            the current directory; what is left is the output
    /kaggle/src/script.py                       the pushed source (a notebook's code cells, joined)

(``layout="legacy"`` mounts datasets at ``/kaggle/input/<slug>/`` instead, as Kaggle still does
for some attachments.) The script runs in its own mount namespace (``unshare``; as root, or in a
user namespace otherwise) where that folder is bind-mounted on ``/kaggle`` and ``/kaggle/input``
is read-only; with ``enableInternet: false`` it also gets its own network namespace (loopback
only). The interpreter's environment (``sys.prefix``) is overlaid per session, so a kernel's
``pip install`` lands in that session only and the next one starts from the pristine image, as
every Kaggle session does. The interpreter is a setting (``SessionSettings.python``): the tests
use a Python 3.12 environment prepared like Kaggle's image (``image.py``).

The environment is minimal: ``PATH`` and locale variables, ``HOME``/``TMPDIR`` inside the
session folder, ``PYTHONUNBUFFERED=1``, ``KAGGLE_KERNEL_RUN_TYPE=Batch`` (as on Kaggle).
Nothing else of the emulator's environment is inherited: no ``KAGGLE_*``, ``HF_TOKEN``,
``WANDB_API_KEY``... Extra variables must be allow-listed by name (``pass_env``) or given
(``extra_env``); names that look like secrets are refused.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal

from kaggle_emulator.faults import KernelErrorFault, KernelFault, KernelHangFault
from kaggle_emulator.isolation import (
    kill_session,
    release_session,
    sandbox_env,
    session_command,
)
from kaggle_emulator.session_faults import fault_script, start_fault

log = logging.getLogger(__name__)

_MAGIC_LINE = re.compile(r"^\s*[!%]", re.M)

class Status(StrEnum):
    """``KernelWorkerStatus`` names, as Kaggle sends them."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCEL_ACKNOWLEDGED = "CANCEL_ACKNOWLEDGED"


TERMINAL = frozenset({Status.COMPLETE, Status.ERROR, Status.CANCEL_ACKNOWLEDGED})


def notebook_to_script(notebook_json: str) -> str:
    """The code cells of a notebook (as SaveKernel sends it), joined into one script.

    Raises:
        ValueError: If the text is not a notebook, or a cell uses IPython magics or shell
            escapes (``%``/``!`` lines), which the emulator cannot run.
    """
    try:
        cells = json.loads(notebook_json)["cells"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"the notebook source is not valid .ipynb JSON: {e}") from e
    sources = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if _MAGIC_LINE.search(source):
            raise ValueError(
                "the notebook uses IPython magics or shell escapes (% or ! lines), which the "
                "emulator does not run; use a script kernel or plain Python"
            )
        sources.append(source)
    return "\n\n".join(sources) + "\n"


@dataclass
class KernelVersion:
    """One pushed version of a kernel and its session."""

    owner: str
    slug: str
    number: int
    request: dict[str, Any]
    dir: Path
    gpu: bool = False
    external: bool = False  # a phantom GPU session started by a fault: no process, no files
    status: Status = Status.QUEUED
    failure_message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    deleted: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ref(self) -> str:
        """``owner/slug``."""
        return f"{self.owner}/{self.slug}"

    @property
    def kaggle_dir(self) -> Path:
        """The session's ``/kaggle``."""
        return self.dir / "kaggle"

    @property
    def working_dir(self) -> Path:
        """The session's ``/kaggle/working``."""
        return self.kaggle_dir / "working"

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status not in TERMINAL

    def log_text(self) -> str:
        """The session log as Kaggle serves it: a JSON array of ``{stream_name, time, data}``,
        one record per line."""
        with self.lock:
            records = list(self.records)
        if not records:
            return "[]"
        lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
        return "[" + "\n,".join(lines) + "\n]"

    def output_files(self) -> list[str]:
        """Paths (relative, POSIX) of the files under ``/kaggle/working``, sorted."""
        if self.external or not self.working_dir.is_dir():
            return []
        return sorted(
            p.relative_to(self.working_dir).as_posix()
            for p in self.working_dir.rglob("*")
            if p.is_file()
        )

    def kill(self) -> None:
        """Stop the session (DeleteKernel): kill its process group and mark it cancelled."""
        with self.lock:
            self.deleted = True
            process = self.process
            if self.active:
                self.status = Status.CANCEL_ACKNOWLEDGED
                self.ended = time.time()
        if process is not None and process.poll() is None:
            kill_session(process.pid, self.dir)
            process.wait(timeout=30)

    def _append(self, stream: str, data: str) -> None:
        with self.lock:
            elapsed = time.time() - (self.started or self.created)
            self.records.append({"stream_name": stream, "time": round(elapsed, 3), "data": data})


@dataclass
class SessionSettings:
    """How the emulator runs sessions (shared by all versions).

    Attributes:
        python: The kernels' interpreter (``image.prepare_image()`` gives a Kaggle-like one).
        pass_env: Variables of the emulator's environment a session may see.
        extra_env: Variables set in every session.
        queue_seconds: Time a pushed version spends QUEUED.
        max_session_seconds: Kaggle's session limit (12 h for CPU and GPU sessions).
        layout: ``datasets`` mounts a dataset at ``/kaggle/input/datasets/<owner>/<slug>``
            (Kaggle today); ``legacy`` at ``/kaggle/input/<slug>`` (older attachments).
    """

    python: str = sys.executable
    pass_env: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    queue_seconds: float = 0.0
    max_session_seconds: float = 12 * 3600.0
    layout: Literal["datasets", "legacy"] = "datasets"


def _copy_read_only(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)
    for path in target.rglob("*"):
        if path.is_file():
            path.chmod(0o444)


def _pump(pipe: IO[bytes], version: KernelVersion, stream: str) -> None:
    for raw in iter(pipe.readline, b""):
        version._append(stream, raw.decode("utf-8", errors="replace"))
    pipe.close()


def _failure_message(version: KernelVersion, returncode: int) -> str:
    with version.lock:
        stderr = "".join(r["data"] for r in version.records if r["stream_name"] == "stderr")
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    message = f"The kernel script exited with code {returncode}"
    return f"{message}: {last}" if last else message


def prepare(version: KernelVersion, mounts: Mapping[str, Path]) -> Path:
    """Lay out the sandbox and write the source; returns the script path.

    Args:
        version: The version to lay out.
        mounts: Path under ``/kaggle/input`` (``datasets/<owner>/<slug>``...) -> the folder
            whose files it gets.

    Raises:
        ValueError: If the source cannot run (a notebook with magics, a non-Python kernel).
    """
    for sub in ("kaggle/input", "kaggle/working", "kaggle/src", "home", "tmp"):
        (version.dir / sub).mkdir(parents=True, exist_ok=True)
    for name, source in mounts.items():
        _copy_read_only(source, version.kaggle_dir / "input" / name)
    text = version.request.get("text", "")
    language = version.request.get("language", "python")
    if language != "python":
        raise ValueError(f"the emulator runs Python kernels only, not language {language!r}")
    if version.request.get("kernelType") == "notebook":
        (version.kaggle_dir / "src" / "script.ipynb").write_text(text, encoding="utf-8")
        text = notebook_to_script(text)
    script = version.kaggle_dir / "src" / "script.py"
    script.write_text(text, encoding="utf-8")
    return script


def run_session(
    version: KernelVersion,
    mounts: Mapping[str, Path],
    settings: SessionSettings,
    fault: KernelFault | None = None,
    on_end: Callable[[KernelVersion], None] | None = None,
) -> None:
    """Run one version's session to its end (the body of the session's thread)."""
    try:
        _run(version, mounts, settings, fault)
    except Exception as e:  # a bug here must still end the session visibly
        log.exception("kaggle emulator: session %s v%d crashed", version.ref, version.number)
        with version.lock:
            version.status, version.failure_message = Status.ERROR, f"emulator error: {e}"
    finally:
        with version.lock:
            version.ended = version.ended or time.time()
        if not version.external:
            version.dir.mkdir(parents=True, exist_ok=True)
            (version.dir / f"{version.slug}.log").write_text(version.log_text(), encoding="utf-8")
        if on_end is not None:
            on_end(version)


def _run(
    version: KernelVersion,
    mounts: Mapping[str, Path],
    settings: SessionSettings,
    fault: KernelFault | None,
) -> None:
    try:
        prepare(version, mounts)
    except ValueError as e:
        with version.lock:
            version.status, version.failure_message = Status.ERROR, str(e)
        version._append("stderr", f"{e}\n")
        return
    replacement = fault_script(fault)
    if replacement is not None:  # an error/hang fault replaces the pushed source
        (version.kaggle_dir / "src" / "script.py").write_text(replacement, encoding="utf-8")
    time.sleep(settings.queue_seconds)
    env = sandbox_env(version.dir / "home", version.dir / "tmp", settings.pass_env,
                      settings.extra_env)
    internet = bool(version.request.get("enableInternet"))
    timeout = min(
        float(version.request.get("sessionTimeoutSeconds") or settings.max_session_seconds),
        settings.max_session_seconds,
    )
    with version.lock:
        if version.deleted:
            return
        version.process = subprocess.Popen(
            session_command(version.dir, settings.python, internet),
            cwd=version.dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        version.pid = version.process.pid
        version.started = time.time()
        version.status = Status.RUNNING
    log.info("kaggle emulator: %s v%d running (pid %d)", version.ref, version.number, version.pid)
    start_fault(version, fault)
    _wait(version, timeout=None if isinstance(fault, KernelHangFault) else timeout, fault=fault)


def _wait(version: KernelVersion, timeout: float | None, fault: KernelFault | None) -> None:
    """Pump the session's output into its log until it ends; then its final status."""
    process = version.process
    assert process is not None
    pumps = [
        threading.Thread(target=_pump, args=(pipe, version, name), daemon=True)
        for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
    ]
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    # the session ends with its script: nothing it started outlives it
    kill_session(process.pid, version.dir)
    process.wait()
    release_session(version.dir)
    for pump in pumps:
        pump.join(timeout=10)
    with version.lock:
        if version.deleted:
            return
        version.ended = time.time()
        if timed_out:
            version.status = Status.ERROR
            version.failure_message = f"The session exceeded its timeout of {timeout:g} seconds"
        else:
            version.status = Status.COMPLETE if process.returncode == 0 else Status.ERROR
    if version.status is Status.ERROR and not version.failure_message:
        message = fault.message if isinstance(fault, KernelErrorFault) else None
        message = message or _failure_message(version, process.returncode)
        with version.lock:
            version.failure_message = message
    log.info(
        "kaggle emulator: %s v%d %s%s", version.ref, version.number, version.status,
        f" ({version.failure_message})" if version.failure_message else "",
    )  # fmt: skip
