"""The sandbox a pushed kernel version runs in, laid out like a Kaggle session.

Each version gets ``<root>/kernels/<owner>/<slug>/<version>/``::

    kaggle/input/<dataset-slug>/...   attached datasets (their extracted files, read-only files)
    kaggle/input/<kernel-slug>/...    attached kernels' outputs
    kaggle/working/                   the current directory; what is left here is the output
    kaggle/src/script.py              the pushed source (a notebook's code cells, joined)
    home/, tmp/                       HOME and TMPDIR of the session
    <slug>.log                        the session log once it ended (Kaggle's JSON format)

The script runs as ``sys.executable script.py`` in a new process group, with a minimal
environment: ``PATH`` and locale variables, ``HOME``/``TMPDIR`` inside the sandbox,
``PYTHONUNBUFFERED=1``, ``KAGGLE_KERNEL_RUN_TYPE=Batch`` (as on Kaggle) and
``NIZAMI_KAGGLE_ROOT=<sandbox>/kaggle`` — the one setting a kernel script reads to find its
folders (``os.environ.get("NIZAMI_KAGGLE_ROOT", "/kaggle")``). Nothing else of the emulator's
environment is inherited: no ``KAGGLE_*``, ``HF_TOKEN``, ``WANDB_API_KEY``... Extra variables
must be allow-listed by name (``pass_env``) or given (``extra_env``); names that look like
secrets are refused.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from kaggle_orchestrator.emulator.faults import KernelErrorFault, KernelHangFault

log = logging.getLogger(__name__)

KAGGLE_ROOT_ENV = "NIZAMI_KAGGLE_ROOT"
BASE_ENV_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_SECRET_WORDS = frozenset(
    {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "KEY", "APIKEY"}
)
_SECRET_PREFIXES = ("KAGGLE_", "AWS_", "AZURE_", "GOOGLE_APPLICATION_")
_MAGIC_LINE = re.compile(r"^\s*[!%]", re.M)

_HANG_SCRIPT = """\
import time
print("session started; it will not finish until the kernel is deleted (emulator fault)")
while True:
    time.sleep(60)
"""
_ERROR_SCRIPT = """\
import sys
sys.stderr.write({log!r})
sys.exit(1)
"""


class Status(StrEnum):
    """``KernelWorkerStatus`` names, as Kaggle sends them."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    CANCEL_ACKNOWLEDGED = "CANCEL_ACKNOWLEDGED"


TERMINAL = frozenset({Status.COMPLETE, Status.ERROR, Status.CANCEL_ACKNOWLEDGED})


def looks_like_secret(name: str) -> bool:
    """Whether a variable name looks like a credential: ``HF_TOKEN``, ``WANDB_API_KEY``,
    ``KAGGLE_*``... (word by word, so ``TOKENIZERS_PARALLELISM`` is not one)."""
    upper = name.upper()
    words = set(re.split(r"[^A-Z0-9]+", upper))
    return upper.startswith(_SECRET_PREFIXES) or bool(words & _SECRET_WORDS)


def check_env_names(pass_env: Iterable[str], extra_env: Mapping[str, str]) -> None:
    """Refuse to hand a kernel anything that looks like a secret.

    Raises:
        ValueError: If a name in ``pass_env`` or ``extra_env`` looks like a credential.
    """
    bad = sorted({n for n in [*pass_env, *extra_env] if looks_like_secret(n)})
    if bad:
        raise ValueError(
            f"kaggle emulator: refusing to pass {', '.join(bad)} into kernel sandboxes: the names "
            "look like credentials, and no credential may reach a kernel"
        )


def sandbox_env(
    kaggle_dir: Path,
    home: Path,
    tmp: Path,
    pass_env: Iterable[str] = (),
    extra_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a kernel session (see the module docstring)."""
    extra_env = dict(extra_env or {})
    pass_env = list(pass_env)
    check_env_names(pass_env, extra_env)
    environ = os.environ if environ is None else environ
    env = {n: environ[n] for n in (*BASE_ENV_NAMES, *pass_env) if n in environ}
    env.update(extra_env)
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",
            "KAGGLE_KERNEL_RUN_TYPE": "Batch",
            KAGGLE_ROOT_ENV: str(kaggle_dir),
        }
    )
    return env


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
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)

    def _append(self, stream: str, data: str) -> None:
        with self.lock:
            elapsed = time.time() - (self.started or self.created)
            self.records.append({"stream_name": stream, "time": round(elapsed, 3), "data": data})


@dataclass
class SessionSettings:
    """How the emulator runs sessions (shared by all versions)."""

    python: str = sys.executable
    pass_env: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    queue_seconds: float = 0.0
    max_session_seconds: float = 12 * 3600.0  # Kaggle's limit for CPU/GPU sessions


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
        mounts: ``/kaggle/input`` folder name -> the folder whose files it gets.

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
    fault: KernelErrorFault | KernelHangFault | None = None,
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
    fault: KernelErrorFault | KernelHangFault | None,
) -> None:
    try:
        script = prepare(version, mounts)
    except ValueError as e:
        with version.lock:
            version.status, version.failure_message = Status.ERROR, str(e)
        version._append("stderr", f"{e}\n")
        return
    if fault is not None:
        script = version.dir / "emulator-fault.py"
        code = _HANG_SCRIPT if isinstance(fault, KernelHangFault) else _ERROR_SCRIPT
        script.write_text(code.format(log=getattr(fault, "log", "")), encoding="utf-8")
    time.sleep(settings.queue_seconds)

    env = sandbox_env(
        version.kaggle_dir, version.dir / "home", version.dir / "tmp",
        settings.pass_env, settings.extra_env,
    )  # fmt: skip
    timeout = min(
        float(version.request.get("sessionTimeoutSeconds") or settings.max_session_seconds),
        settings.max_session_seconds,
    )
    with version.lock:
        if version.deleted:
            return
        version.process = subprocess.Popen(
            [settings.python, str(script)],
            cwd=version.working_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        version.pid = version.process.pid
        version.started = time.time()
        version.status = Status.RUNNING
    process = version.process
    log.info("kaggle emulator: %s v%d running (pid %d)", version.ref, version.number, process.pid)
    pumps = [
        threading.Thread(target=_pump, args=(pipe, version, name), daemon=True)
        for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
    ]
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        process.wait(timeout=None if isinstance(fault, KernelHangFault) else timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.kill()
        process.wait()
    try:  # the session ends with its script: nothing it started outlives it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pump in pumps:
        pump.join(timeout=10)

    with version.lock:
        if version.deleted:
            return
        version.ended = time.time()
        if timed_out:
            version.status = Status.ERROR
            version.failure_message = f"The session exceeded its timeout of {timeout:g} seconds"
        elif process.returncode == 0:
            version.status = Status.COMPLETE
        else:
            version.status = Status.ERROR
    if version.status is Status.ERROR and not version.failure_message:
        message = fault.message if isinstance(fault, KernelErrorFault) else None
        message = message or _failure_message(version, process.returncode)
        with version.lock:
            version.failure_message = message
    log.info(
        "kaggle emulator: %s v%d %s%s", version.ref, version.number, version.status,
        f" ({version.failure_message})" if version.failure_message else "",
    )  # fmt: skip
