"""A W&B key set, W&B unreachable: the run goes on offline, with one warning, in bounded time.

With ``WANDB_API_KEY`` set (a user with a key: the run would go online), the tiny pipeline runs
on the local stack with ``WANDB_BASE_URL`` at a loopback port that accepts connections and never
answers (a W&B behind a dead proxy) and at one that refuses them. Before the init hook
(``pipelines.tracker.current``), ``wandb.init`` failed the train step with
``CommError`` after 90 s.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import pytest
from helpers import answering_server, refused_port, register_stack, run_pipeline, write_config

from pipelines.tracker import DECISION_ENV, wandb_unreachable

pytestmark = pytest.mark.e2e


def _silent() -> socket.socket:
    """A loopback port whose connections complete in the backlog and never get a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


def test_the_probe_tells_silent_refusing_and_answering_apart():
    with _silent() as silent:
        started = time.monotonic()
        reason = wandb_unreachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=1)
        assert reason and "Timeout" in reason and time.monotonic() - started < 5
    assert "ConnectError" in (wandb_unreachable(f"http://127.0.0.1:{refused_port()}", 1) or "")
    with answering_server(404) as url:  # any answer at all: W&B is there
        assert wandb_unreachable(url, 1) is None


@pytest.fixture(scope="module")
def local_stack():
    done = register_stack("local")
    assert done.returncode == 0, done.stdout + done.stderr
    from zenml.client import Client

    Client().activate_stack("local")


@pytest.fixture
def a_key_set(local_stack, monkeypatch):
    """A user with a W&B key in the shell, and no WANDB_MODE (the suite's default is offline)."""
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv(DECISION_ENV, raising=False)


@pytest.mark.parametrize("wandb_server", ["accepts and never answers", "refuses"])
def test_the_pipeline_runs_on_offline_when_wandb_does_not_answer(
    a_key_set, tmp_path, monkeypatch, caplog, wandb_server
):
    # logging.config calls (default disable_existing_loggers=True, e.g. BentoML's CLI logging)
    # disable loggers that exist at that moment; this test reads this one's records.
    logging.getLogger("pipelines.tracker").disabled = False
    with _silent() as silent:
        port = silent.getsockname()[1] if wandb_server != "refuses" else refused_port()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("WANDB_MODE", raising=False)
        wandb_dir = Path(os.environ["WANDB_DIR"]) / "wandb"
        before = set(wandb_dir.glob("offline-run-*"))
        config = write_config(tmp_path / "tiny.yaml", output_dir=str(tmp_path / "out"),
                              model_name=f"nizami-wandb-{wandb_server[:7]}")  # fmt: skip
        started = time.monotonic()
        with caplog.at_level("WARNING", logger="pipelines.tracker"):
            run = run_pipeline(config)
        elapsed = time.monotonic() - started
    assert run.status.value == "completed", elapsed
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and "does not answer" in r.getMessage()]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0], warnings
    assert "key from WANDB_API_KEY" in warnings[0] and "k" * 40 not in caplog.text
    assert set(wandb_dir.glob("offline-run-*")) - before  # the run's W&B data, kept offline
