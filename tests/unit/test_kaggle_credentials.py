"""Which Kaggle credential is used; the kagglesdk internals we rely on; the W&B switch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaggle_orchestrator.credentials import Credentials, KaggleAuthError, resolve_credentials


@pytest.fixture
def home(tmp_path, monkeypatch):
    """No credential anywhere but what a test puts there."""
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kaggle").mkdir()
    return tmp_path


def test_order_settings_token_env_token_file_token_then_legacy(home, monkeypatch):
    (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "j", "key": "k"}))
    assert resolve_credentials().source.endswith("kaggle.json")
    monkeypatch.setenv("KAGGLE_USERNAME", "env-user")
    monkeypatch.setenv("KAGGLE_KEY", "env-key")
    found = resolve_credentials()
    assert (found.source, found.username, found.key) == ("KAGGLE_USERNAME/KAGGLE_KEY",
                                                          "env-user", "env-key")
    assert resolve_credentials(None, "alice", "k2").source == "step operator username/key"
    (home / ".kaggle" / "access_token").write_text("KGAT_file\n")
    found = resolve_credentials(None, "alice", "k2")  # an ambient token wins over a key
    assert (found.token, found.source, found.username) == ("KGAT_file", "~/.kaggle/access_token",
                                                           "alice")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_env")
    assert resolve_credentials().token == "KGAT_env"
    token_file = home / "token.txt"
    token_file.write_text("KGAT_from_path")
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(token_file))  # a path to a file, as kagglesdk
    assert resolve_credentials().token == "KGAT_from_path"
    found = resolve_credentials("KGAT_settings")
    assert (found.token, found.source, found.kind) == ("KGAT_settings",
                                                       "step operator api_token", "API token")


def test_no_credential_says_where_it_looked(home):
    with pytest.raises(KaggleAuthError, match="KAGGLE_API_TOKEN or ~/.kaggle/access_token"):
        resolve_credentials()
    with pytest.raises(KaggleAuthError, match="not readable"):
        (home / ".kaggle" / "kaggle.json").write_text("{broken")
        resolve_credentials()


def test_credentials_never_show_the_secret():
    shown = repr(Credentials("alice", key="s3cr3t-key")) + repr(Credentials(None, token="KGAT_x"))
    assert "s3cr3t" not in shown and "KGAT_x" not in shown
    with pytest.raises(KaggleAuthError):
        Credentials("alice")


def test_the_kagglesdk_internals_we_use_are_where_we_expect_them():
    """If a kagglesdk upgrade moves these, timeouts or the endpoint would silently break."""
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    from kaggle_orchestrator import _sdk

    before = _sdk.set_local_endpoint("http://127.0.0.1:9/")
    try:
        assert _env_to_endpoint[KaggleEnv.LOCAL] == "http://127.0.0.1:9"
    finally:
        _sdk.set_local_endpoint(before)
    client = KaggleClient(env=KaggleEnv.LOCAL, username="u", password="p")
    session = _sdk.http_session(client)
    assert session is client.http_client()._session and hasattr(session, "mount")


def test_the_wandb_sync_command_targets_the_steps_run_id(tmp_path):
    from kaggle_orchestrator.step_operators.wandb_run import KernelWandbRun

    run = KernelWandbRun(id="abc123", name="run_train", project="nizami-1.7b", entity="team")
    command = run.sync_command(tmp_path / "offline-run-x-abc123")
    assert command == [sys.executable, "-m", "wandb", "sync", "--id", "abc123", "--project",
                       "nizami-1.7b", "--entity", "team", str(tmp_path / "offline-run-x-abc123")]
    assert "api_key" not in run.for_kernel() and "online" not in run.for_kernel()
    assert run.url == "https://wandb.ai/team/nizami-1.7b/runs/abc123"
    kernel_side = tmp_path / "kernel" / "wandb"
    (kernel_side / "offline-run-20260101_000000-abc123" / "files").mkdir(parents=True)
    (kernel_side / "offline-run-20260101_000000-other").mkdir()
    kept = run.bring_back(kernel_side, tmp_path / "local")  # offline: copied, not synced
    assert [p.name for p in kept] == ["offline-run-20260101_000000-abc123"]
    assert (tmp_path / "local" / "offline-run-20260101_000000-abc123" / "files").is_dir()


def _offline_wandb_run(tmp_path: Path) -> Path:
    """A real offline W&B run folder (what the kernel leaves), made by the wandb client."""
    done = subprocess.run(
        [sys.executable, "-c", "import wandb; r = wandb.init(mode='offline', id='abc123', "
         "project='p'); r.log({'loss': 1.0}); r.finish()"],
        cwd=tmp_path, env=os.environ | {"WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return next((tmp_path / "wandb").glob("offline-run-*-abc123"))


@pytest.mark.slow
@pytest.mark.parametrize("server", ["accepts and never answers", "refuses"])
def test_a_wandb_sync_with_wandb_unreachable_is_bounded_and_never_raises(tmp_path, monkeypatch,
                                                                         server):  # fmt: skip
    """Online with a key, W&B down: the sync gives up in its time and keeps the run folder."""
    from kaggle_orchestrator.step_operators.wandb_run import KernelWandbRun

    run_dir = _offline_wandb_run(tmp_path)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        if server == "accepts and never answers":
            listener.listen(16)  # connections complete in the backlog; nothing ever replies
        port = listener.getsockname()[1]
        if server == "refuses":
            listener.close()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        run = KernelWandbRun(id="abc123", name="r", project="p", online=True, api_key="k" * 40)
        started = time.monotonic()
        failure = run.sync(run_dir, timeout_s=8)
        elapsed = time.monotonic() - started
    assert failure is not None and elapsed < 30, (failure, elapsed)
    assert (run_dir / "files").is_dir() or any(run_dir.iterdir())  # the run is still here


def _http_error(status: int, retry_after: str | None = None):
    import requests

    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status} error", response=response)


def test_the_retry_policy_honours_both_retry_after_forms_and_is_bounded():
    import email.utils
    import time

    import requests

    from http_backoff import retry_after_s
    from kaggle_orchestrator.retry import call_with_retries

    assert retry_after_s(_http_error(429, "7")) == 7.0
    in_20s = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 17 <= retry_after_s(_http_error(503, in_20s)) <= 20
    assert retry_after_s(_http_error(429, "9999")) == 300.0  # capped
    assert retry_after_s(_http_error(500)) is None

    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise _http_error(429, "0.2")
        return "ok"

    assert call_with_retries("Probe", flaky, max_retries=3, backoff_s=5.0) == "ok"
    assert calls[2] - calls[1] < 2  # Retry-After (0.2 s) won over the 5 s backoff
    calls.clear()

    def always_500():
        calls.append(1)
        raise _http_error(500)

    with pytest.raises(requests.HTTPError):
        call_with_retries("Probe", always_500, max_retries=2, backoff_s=0.01)
    assert len(calls) == 3
    calls.clear()

    def forbidden():
        calls.append(1)
        raise _http_error(403)

    with pytest.raises(requests.HTTPError):
        call_with_retries("Probe", forbidden, max_retries=5, backoff_s=0.01)
    assert len(calls) == 1  # a 403 will not get better


def test_the_kaggle_client_is_imported_without_authenticating_over_the_network(tmp_path):
    """``import kaggle`` asks Kaggle who owns ``KAGGLE_API_TOKEN`` at import time, with no
    timeout: behind a proxy that accepts and never answers it hangs for ever. The operator's
    import of the client does not authenticate at all (it passes credentials per call)."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(16)  # connections complete in the backlog; nothing ever answers
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
        env |= {"KAGGLE_API_TOKEN": "KGAT_" + "0" * 32, "HOME": str(tmp_path),
                "HTTPS_PROXY": f"http://127.0.0.1:{proxy.getsockname()[1]}", "NO_PROXY": ""}
        with pytest.raises(subprocess.TimeoutExpired):  # the hazard, as the package has it
            subprocess.run([sys.executable, "-c", "import kaggle"], env=env, timeout=5,
                           capture_output=True)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", "from kaggle_orchestrator._sdk import import_kaggle_api\n"
             "api = import_kaggle_api()\nimport os\nprint(api.config_dir, "
             "os.environ['KAGGLE_API_TOKEN'][:5], os.environ['HOME'])"],
            env=env, timeout=60, capture_output=True, text=True,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / ".config" / "kaggle"), "KGAT_", str(tmp_path)]
    assert time.monotonic() - started < 30
