"""The dashboard path end to end: a local ZenML server, a run against it, read back over HTTP.

``stacks/dashboard.sh`` (what ``make dashboard`` runs) starts a local ZenML server daemon on a
free loopback port with its own throwaway ZenML config, connects that config to it and registers
the ``local`` stack there. The tiny pipeline then runs in a subprocess against the server, and
everything the dashboard shows is read back through the server's REST API with plain HTTP (the
local server is NO_AUTH): the run, its five steps, the evaluate step's metrics metadata and the
eval report visualization. The server is always shut down, and nothing touches the user's
ZenML config.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUN_CONFIG = ROOT / "stacks" / "run-configs" / "local.yaml"
STEPS = ["load_data", "train", "evaluate", "register", "package"]
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str, **params) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{base}/api/v1{path}{query}", timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def _stop_server(env: dict[str, str], config: Path) -> None:
    """``zenml logout --local``; then make sure the daemon is gone (kill its process group)."""
    subprocess.run(["zenml", "logout", "--local"], cwd=ROOT, env=env, capture_output=True,
                   timeout=120)
    pid_file = config / "zen_server" / "daemon" / "service.pid"
    if pid_file.is_file():
        try:
            pid = int(pid_file.read_text().strip())
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local ZenML server on a free port, started by stacks/dashboard.sh: (url, env)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    config = tmp / "zenml"
    port = _free_port()
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ZENML_CONFIG_PATH": str(config),  # server store and client config: all in tmp
        "ZENML_AUTO_OPEN_DASHBOARD": "false",
        "ZENML_ANALYTICS_OPT_IN": "false",
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "BENTOML_HOME": str(tmp / "bentoml"),
        "NIZAMI_CACHE": os.environ.get("NIZAMI_CACHE", str(tmp / "cache")),
        "PORT": str(port),
    }
    url = f"http://127.0.0.1:{port}"
    try:
        done = subprocess.run(["bash", "stacks/dashboard.sh"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"ZenML dashboard: {url}" in done.stdout
        stored = yaml.safe_load((config / "config.yaml").read_text())
        assert stored["store"]["url"] == url  # the client talks to the server, not to SQLite
        yield url, env
    finally:
        _stop_server(env, config)


@pytest.fixture(scope="module")
def run_id(server, tmp_path_factory) -> str:
    """The tiny pipeline, run against the server in a subprocess; the id of its run."""
    url, env = server
    out = tmp_path_factory.mktemp("outputs")
    raw = yaml.safe_load((ROOT / "pipelines" / "configs" / "tiny.yaml").read_text())
    raw["output_dir"] = str(out)
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.run", "--config", str(config),
         "--run-config", str(RUN_CONFIG)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = _get(url, "/runs", sort_by="desc:created", size=1)
    assert runs["total"] == 1
    run = runs["items"][0]
    assert f"ZenML run      {run['name']}  status=completed" in done.stdout
    return run["id"]


def test_server_is_up_local_and_no_auth(server):
    url, _ = server
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        assert response.status == 200
    info = _get(url, "/info")
    assert info["deployment_type"] == "local" and info["auth_scheme"] == "NO_AUTH"
    assert _get(url, "/settings")["body"]["active"] is True  # no activation page
    stacks = _get(url, "/stacks", name="local")
    assert stacks["total"] == 1


def test_run_and_its_five_steps_are_completed_on_the_server(server, run_id):
    url, _ = server
    run = _get(url, f"/runs/{run_id}")
    assert run["body"]["status"] == "completed"
    steps = _get(url, f"/runs/{run_id}/steps", size=20)["items"]
    assert sorted(s["name"] for s in steps) == sorted(STEPS)
    assert {s["body"]["status"] for s in steps} == {"completed"}
    dag = _get(url, f"/runs/{run_id}/dag")
    assert {n["name"] for n in dag["nodes"] if n["type"] == "step"} == set(STEPS)


def test_evaluate_metrics_and_eval_report_are_served(server, run_id):
    url, _ = server
    (evaluate,) = _get(url, f"/runs/{run_id}/steps", name="evaluate")["items"]
    step = _get(url, f"/steps/{evaluate['id']}", hydrate="true")
    metrics = step["metadata"]["run_metadata"]["metrics"]
    for model in ("base", "tuned"):
        assert isinstance(metrics[model]["bleu"], (int, float))
    (report,) = step["resources"]["outputs"]["eval_report"]
    visualization = _get(url, f"/artifact_versions/{report['id']}/visualize")
    assert visualization["type"] == "html"
    assert "<table>" in visualization["value"] and metrics["data_hash"] in visualization["value"]
