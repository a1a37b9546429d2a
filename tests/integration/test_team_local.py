"""``make team-up``, the tiny pipeline on it, a cached rerun that never reaches Kaggle, ``make
team-down`` — as a user runs them (README, team mode).

``make team-up`` starts the real servers (ZenML, moto's S3, the Kaggle emulator) and registers
the ``team`` stack; the pipeline runs with the command it prints (only the domain config is a
copy whose ``output_dir`` is this test's folder); ``make team-down`` must leave no process of
the ones it recorded and no state. Its state folder and ports are this test's own, so a
``make team-up`` of the user's own in this checkout is not disturbed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ["-m", "pipelines.team_local"]
CACHED = "cached steps   load_data, train, evaluate, register"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """Nothing listens there (TIME_WAIT connections of the stopped servers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int, started: int | None) -> bool:
    """The process team-up recorded still runs (same pid and start time, not a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X") and (started is None or int(fields[19]) == started)


def _processes_naming(folder: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, UnicodeDecodeError):
                continue
            if str(folder) in cmdline:
                found.append((int(entry.name), cmdline))
    return found


def _output(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


@pytest.fixture
def team_env(tmp_path: Path) -> dict[str, str]:
    """``make``'s environment: this test's state folder and free ports."""
    return os.environ | {
        "TEAM_STATE": str(tmp_path / "team-local"),
        "TEAM_ZENML_PORT": str(_free_port()),
        "TEAM_S3_PORT": str(_free_port()),
        "TEAM_KAGGLE_PORT": str(_free_port()),
    }


def _force_down(state_dir: Path) -> None:
    """After a failed test: `make team-down`'s job, by the recorded pids, whatever happened."""
    state_file = state_dir / "state.json"
    if not state_file.is_file():
        return
    subprocess.run(
        [sys.executable, *SCRIPT, "down", "--state", str(state_dir)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    if state_file.is_file():
        for record in json.loads(state_file.read_text())["services"].values():
            if _alive(record["pid"], record.get("started")):
                os.killpg(record["pid"], signal.SIGKILL)


@pytest.mark.e2e
def test_team_up_runs_the_pipeline_caches_it_and_team_down_leaves_nothing(
    team_env: dict[str, str], tmp_path: Path
) -> None:
    state_dir = Path(team_env["TEAM_STATE"])
    clock, took = time.monotonic(), {}

    def lap(name: str) -> None:
        nonlocal clock
        took[name], clock = round(time.monotonic() - clock), time.monotonic()

    try:
        up = subprocess.run(
            ["make", "team-up"], cwd=ROOT, env=team_env, capture_output=True, text=True, timeout=600
        )
        assert up.returncode == 0, _output(up)[-6000:]
        state = json.loads((state_dir / "state.json").read_text())
        credentials = json.loads((state_dir / "credentials.json").read_text())
        assert (state_dir / "credentials.json").stat().st_mode & 0o077 == 0
        services = state["services"]
        assert set(services) == {"zenml", "s3", "kaggle"}
        zenml_url, kaggle_url = services["zenml"]["url"], services["kaggle"]["url"]
        assert zenml_url == f"http://127.0.0.1:{team_env['TEAM_ZENML_PORT']}"
        # What it prints: the dashboard, and the one command that runs the pipeline there.
        assert f"ZenML dashboard  {zenml_url}" in up.stdout
        assert httpx.get(zenml_url, timeout=30).status_code == 200  # the dashboard's page
        command = state["run_command"]
        assert f"\n  {command}\n" in up.stdout, up.stdout[-2000:]
        assert "--run-config stacks/run-configs/team.yaml" in command

        config = yaml.safe_load((ROOT / "pipelines" / "configs" / "tiny.yaml").read_text())
        config["output_dir"] = str(tmp_path / "out")
        config_file = tmp_path / "tiny.yaml"
        config_file.write_text(yaml.safe_dump(config, allow_unicode=True))
        assert command.count("pipelines/configs/tiny.yaml") == 1
        command = command.replace("pipelines/configs/tiny.yaml", str(config_file))

        def run() -> subprocess.CompletedProcess:
            return subprocess.run(
                ["bash", "-c", command],
                cwd=ROOT,
                env=os.environ,
                capture_output=True,
                text=True,
                timeout=900,
            )

        def received() -> dict:
            answer = httpx.get(
                f"{kaggle_url}/_emulator/received",
                timeout=30,
                headers={"Authorization": f"Bearer {credentials['kaggle_api_token']}"},
            )
            answer.raise_for_status()
            return answer.json()

        lap("team-up")
        first = run()
        lap("run")
        said = _output(first)
        assert first.returncode == 0 and "status=completed" in said, said[-6000:]
        assert "cached steps   none" in said
        assert "[kaggle running" in said  # the train step's kernel log, streamed here
        calls = received()["requests"]
        pushes = [c for c in calls if c["method"] == "SaveKernel"]
        assert len(pushes) == 1 and pushes[0]["authScheme"].lower() == "bearer"
        assert "server mode" in said  # kaggle_server, in server mode, against this server
        # The kernel's token was the kernels' own account's (team_setup.KERNEL_ACCOUNT).
        assert "has no kernel_api_key" not in said
        # The run is on the server, with the admin's login (as the dashboard shows it).
        token = httpx.post(
            f"{zenml_url}/api/v1/login",
            timeout=60,
            data={"username": "admin", "password": credentials["zenml_admin_password"]},
        ).json()["access_token"]
        runs = httpx.get(
            f"{zenml_url}/api/v1/runs",
            timeout=60,
            params={"hydrate": True},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["items"]
        assert [r["body"]["status"] for r in runs] == ["completed"]

        rerun = run()
        lap("cached rerun")
        said = _output(rerun)
        assert rerun.returncode == 0 and "status=completed" in said, said[-6000:]
        assert CACHED in said
        assert received()["requests"] == calls  # no Kaggle call at all, not even a quota check

        down = subprocess.run(
            ["make", "team-down"],
            cwd=ROOT,
            env=team_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert down.returncode == 0, _output(down)
        assert "killed" not in down.stdout, down.stdout  # each stopped on SIGTERM
        lap("team-down")
        print(f"seconds: {took}\n{down.stdout}")  # shown with -s or -rP
        left = [
            f"{r['title']} (pid {r['pid']})"
            for r in services.values()
            if _alive(r["pid"], r.get("started"))
        ]
        # Kernel sessions and anything else started there name the state folder.
        left += [f"pid {pid}: {cmd[:200]}" for pid, cmd in _processes_naming(state_dir)]
        assert left == [], left
        assert not state_dir.exists()  # the server's database with it: nothing registered
        assert all(
            _port_free(int(team_env[k]))
            for k in ("TEAM_ZENML_PORT", "TEAM_S3_PORT", "TEAM_KAGGLE_PORT")
        )
        again = subprocess.run(
            ["make", "team-down"],
            cwd=ROOT,
            env=team_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0 and "nothing to stop" in again.stdout
    finally:
        _force_down(state_dir)


def test_team_up_refuses_a_port_in_use_and_starts_nothing(team_env: dict[str, str]) -> None:
    state_dir = Path(team_env["TEAM_STATE"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = team_env | {"TEAM_S3_PORT": str(port)}
        done = subprocess.run(
            [sys.executable, *SCRIPT, "up"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port} (for the S3 server) is in use" in done.stderr
    assert "TEAM_S3_PORT" in done.stderr and "Traceback" not in done.stderr
    assert not state_dir.exists()
