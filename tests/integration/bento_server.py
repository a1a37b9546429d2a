"""Run a bento with ``bentoml serve`` from the serving environment, for the serving tests.

``bentoml serve`` runs as a supervisor (circus) with one worker, which starts vLLM's OpenAI server
and its engine; :func:`serve_bento` starts it in its own session and always stops the whole tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from bento.container import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVE_VENV = Path(os.environ.get("NIZAMI_SERVE_VENV", ROOT / ".venv-serve"))
MODEL = "nizami-1.7b"
needs_serve_venv = pytest.mark.skipif(
    not (SERVE_VENV / "bin" / "bentoml").exists(),
    reason=f"no serving environment at {SERVE_VENV} (make serve-env)",
)


@dataclass
class Served:
    """A running ``bentoml serve``: its URL, supervisor process and log."""

    base: str
    proc: subprocess.Popen
    log_path: Path
    starting: list[str] = field(default_factory=list)  # what probes got before it was ready

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        """The supervisor and everything under it (worker, vLLM server, engine)."""
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def engine_core(self) -> psutil.Process:
        return next(p for p in self.tree() if "EngineCor" in p.name())

    def metric(self, name: str) -> float:
        """One vLLM gauge or counter from ``/metrics`` (summed over its series)."""
        text = httpx.get(f"{self.base}/metrics", timeout=30).text
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(name + "{")]  # fmt: skip
        assert values, f"{name} not in /metrics"
        return sum(values)


def _answer(call) -> str:
    """``"<status> retry-after=<value>"`` of an answer, or the name of the error instead."""
    try:
        reply = call()
    except httpx.HTTPError as e:
        return type(e).__name__
    return f"{reply.status_code} retry-after={reply.headers.get('retry-after')}"


def wait_ready(served: Served, timeout: float) -> list[str]:
    """Probe ``/readyz`` and send a chat request until ready; what each got before is returned.

    Each call may take 20 s: an answer that takes longer is a hang (``ReadTimeout``).
    """
    deadline, answers = time.monotonic() + timeout, []
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            pytest.fail(f"bentoml serve exited ({served.proc.returncode}):\n{served.log()[-4000:]}")
        probe = _answer(lambda: httpx.get(f"{served.base}/readyz", timeout=20))
        if probe.startswith("200"):
            return answers
        post = lambda: httpx.post(f"{served.base}/v1/chat/completions", json=chat, timeout=20)  # noqa: E731
        answers += [f"GET /readyz: {probe}", f"POST /v1/chat/completions: {_answer(post)}"]
        time.sleep(1)
    pytest.fail(f"not ready after {timeout:.0f} s:\n{served.log()[-4000:]}")


def stop(served: Served) -> None:
    """SIGTERM the supervisor (as ``docker stop`` does), then SIGKILL whatever is left."""
    if served.proc.poll() is not None and not _alive(served.proc.pid):
        return
    try:
        tree = served.tree()
    except psutil.NoSuchProcess:
        tree = []
    with contextlib.suppress(ProcessLookupError):
        os.kill(served.proc.pid, signal.SIGTERM)
    try:
        served.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pass
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


@contextlib.contextmanager
def serve_bento(tag: str, log_path: Path, **env: str) -> Iterator[Served]:
    """``bentoml serve <tag>`` on loopback with ``env`` added; stopped (tree and all) on exit."""
    port = free_port()
    environ = os.environ | {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NIZAMI_ENGINE_PORT": str(free_port()),
    } | env  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(SERVE_VENV / "bin" / "bentoml"), "serve", tag,
             "--host", "127.0.0.1", "--port", str(port)],
            env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        served.starting = wait_ready(served, timeout=600)
        yield served
    finally:
        stop(served)
