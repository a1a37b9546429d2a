"""Processes that ``make team-up`` starts and ``make team-down`` stops (``team_local.py``).

A ``Service`` is a server started in its own session with its log in the state folder; its pid
and start time are recorded, so that it is stopped by pid later, and never a process that merely
reuses the pid. ``_wait_healthy`` names the log's tail when a server does not come up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


class TeamLocalError(RuntimeError):
    """Something the user can act on; printed without a traceback."""


@dataclass(frozen=True)
class Service:
    """One server process: how to start it and how to tell it answers."""

    name: str
    title: str
    port: int
    command: list[str]
    env: dict[str, str]
    health_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def say(message: str) -> None:
    print(f"team-up: {message}", flush=True)


# --- state ------------------------------------------------------------------------------------


def _state_file(state: Path) -> Path:
    return state / "state.json"


def _load_state(state: Path) -> dict:
    path = _state_file(state)
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(state: Path, data: dict) -> None:
    path = _state_file(state)
    path.write_text(json.dumps(data, indent=2))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (it holds credentials)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


# --- processes --------------------------------------------------------------------------------


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when it is gone or a zombie.

    A pid with the recorded start time is the process team-up started, not a reused pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return None if fields[0] in ("Z", "X") else int(fields[19])


def is_running(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` is alive and (when ``started`` is given) is the process started then."""
    ticks = _start_ticks(pid)
    return ticks is not None and (started is None or ticks == started)


def _stop(
    pid: int, started: int | None, title: str, grace_s: float = 20.0, group: bool = True
) -> str:
    """SIGTERM the process group led by ``pid`` (or only ``pid``), SIGKILL it after ``grace_s``;
    what happened."""
    send = os.killpg if group else os.kill
    if not is_running(pid, started):
        return f"{title} (pid {pid}) was not running"
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and is_running(pid, started):
        time.sleep(0.2)
    if not is_running(pid, started):
        return f"stopped {title} (pid {pid})"
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_running(pid, started):
        time.sleep(0.2)
    if is_running(pid, started):
        raise TeamLocalError(f"{title} (pid {pid}) survived SIGKILL; stop it yourself")
    return f"killed {title} (pid {pid}; it ignored SIGTERM for {grace_s:.0f} s)"


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text) or "    (empty log)"


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (connections in TIME_WAIT do not count: the servers
    bind with SO_REUSEADDR, as this probe does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start(service: Service, state: Path, data: dict) -> None:
    log = state / "logs" / f"{service.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            service.command,
            env=service.env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: down stops it all
        )
    data["services"][service.name] = {
        "title": service.title,
        "pid": process.pid,
        "port": service.port,
        "url": service.url,
        "command": service.command,
        "started": _start_ticks(process.pid),
        "log": str(log),
    }
    _save_state(state, data)  # recorded at once: a failed `up` is cleaned by `down`
    say(f"started {service.title} on {service.url} (pid {process.pid}, log {log})")


def _wait_healthy(service: Service, state: Path, data: dict, timeout_s: float) -> None:
    record = data["services"][service.name]
    started = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.url + service.health_path, timeout=5).status_code < 500:
                say(f"{service.title} answers ({time.monotonic() - started:.0f} s)")
                return
        log = Path(record["log"])
        if not record.get("started") or not is_running(record["pid"], record["started"]):
            raise TeamLocalError(
                f"{service.title} exited before answering on {service.url}; the end of "
                f"{log}:\n{_log_tail(log)}"
            )
        if time.monotonic() - started > timeout_s:
            raise TeamLocalError(
                f"{service.title} did not answer on {service.url}{service.health_path} within "
                f"{timeout_s:.0f} s (TEAM_TIMEOUT=<s> or --timeout to wait longer); the end of "
                f"{log}:\n{_log_tail(log)}"
            )
        time.sleep(0.5)


# --- environments -----------------------------------------------------------------------------


def _run(
    args: list[str],
    env: dict[str, str],
    what: str,
    timeout_s: float = 300,
    stdin: str | None = None,
) -> str:
    """Run a setup command; its output on success, a TeamLocalError with its tail otherwise."""
    try:
        done = subprocess.run(
            args, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as error:
        raise TeamLocalError(f"{what}: no answer after {timeout_s:.0f} s") from error
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise TeamLocalError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _leftovers(state: Path) -> list[int]:
    """Pids of processes still working in the emulator's folder (kernel sessions and their
    children: their command lines name their sandbox under it), other than this one."""
    marker = str(state / "kaggle") + os.sep
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
    return found
