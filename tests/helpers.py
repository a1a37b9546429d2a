"""What several test modules need: the checkout, stack registration, configs, pipeline runs.

Imported as a top-level module (``from helpers import ...``), like ``hub_server``: pytest puts
tests/ on ``sys.path`` to import tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]  # the checkout (tests are never installed)
TINY_CONFIG = ROOT / "pipelines" / "configs" / "tiny.yaml"
LOCAL_RUN_CONFIG = ROOT / "stacks" / "run-configs" / "local.yaml"


def env() -> dict[str, str]:
    """This process's environment with the venv's ``bin`` first (``zenml``, ``dvc``)."""
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def register_stack(name: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``stacks/register.sh <name>``, the project's own idempotent script, in the checkout."""
    return subprocess.run(
        ["bash", "stacks/register.sh", name], cwd=ROOT, env=env(),
        capture_output=True, text=True, timeout=timeout,
    )


def write_config(path: Path, **changes: Any) -> Path:
    """tiny.yaml with ``changes``: a mapping is merged into its section, anything else replaces
    the top-level value."""
    raw = yaml.safe_load(TINY_CONFIG.read_text())
    for key, value in changes.items():
        raw[key] = raw.get(key, {}) | value if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def run_pipeline(config: Path, run_config: Path = LOCAL_RUN_CONFIG, allow_failure: bool = False):
    """Run the training pipeline in this process; the run as the store has it afterwards.

    A failed run raises ZenML's ``RuntimeError``, unless ``allow_failure``: then the failed run
    is returned (this run, by its name, not the store's newest).
    """
    import uuid

    from zenml.client import Client

    from pipelines.training import training_pipeline

    name = f"nizami_training-test-{uuid.uuid4().hex[:12]}"  # found by name, also on failure
    try:
        training_pipeline.with_options(config_path=str(run_config), run_name=name)(
            config_path=str(config)
        )
    except RuntimeError:
        if not allow_failure:
            raise
    return Client().get_pipeline_run(name)


def registration(run):
    """The ``registration`` artifact (a ``Registration``) of a run's register step."""
    return run.steps["register"].outputs["registration"][0].load()


@contextlib.contextmanager
def answering_server(status: int = 200) -> Iterator[str]:
    """A loopback HTTP server answering every GET with ``status`` (a service that is there);
    yields its base URL."""

    class Answers(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def refused_port() -> int:
    """A loopback port nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again
