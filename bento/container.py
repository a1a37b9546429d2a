"""Build the image with the engine this machine has, and check it the way a user runs it.

``python -m bento.container`` is ``make image``: it finds a Docker engine or starts one
(:func:`bento.engine.ensure_engine`), builds the bento's image with the same code as the package
step (:func:`bento.image.make_image`), prints the image, its size and the command that runs it,
and with ``--smoke`` runs that command and checks the container (:func:`smoke_test`), as CI does
before it pushes an image and as ``tests/integration/test_image.py`` does.

The documented run commands are :data:`RUN_FLAGS` (the README shows them verbatim; a test keeps
them equal). Checks run the container on the host's network with the service on a loopback
port, never through Docker's bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass

import httpx

from bento.engine import DATA_ROOT, OWN_SOCKET, Engine, EngineError, ensure_engine
from bento.image import ImageBuildError, make_image

log = logging.getLogger(__name__)

# What each image needs besides the port (README "Image"): vLLM on CPU needs more than Docker's
# 64 MiB /dev/shm, a drain needs more than Docker's 10 s stop timeout, and the CUDA image sees a
# GPU only when it is given one.
RUN_FLAGS = {
    "cpu": ["--shm-size", "1g", "--stop-timeout", "40"],
    "gpu": ["--gpus", "all", "--shm-size", "1g", "--stop-timeout", "40"],
}
START_TIMEOUT_S = 300  # run -> /health 200 (README); measured 40-65 s on 2 cores
STOP_TIMEOUT_S = 40  # the --stop-timeout above


def documented_command(image: str, variant: str = "cpu") -> str:
    """The ``docker run`` line the README gives for ``image``."""
    return " ".join(["docker", "run", "-p", "8000:8000", *RUN_FLAGS[variant], image])


def free_port() -> int:
    """A free TCP port on loopback (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmokeReport:
    """What :func:`smoke_test` measured."""

    image: str
    start_s: float  # docker run -> /health 200
    healthy_s: float  # docker run -> `docker inspect` health status "healthy"
    completion_tokens: int
    user: str
    stop_s: float
    exit_code: int


class SmokeError(AssertionError):
    """The container did not behave as documented; the message has its last log lines."""


def run_container(
    engine: Engine,
    image: str,
    port: int,
    env: dict[str, str],
    variant: str = "cpu",
    name: str | None = None,
) -> str:
    """``docker run -d`` ``image`` with the documented flags, serving on ``127.0.0.1:port``.

    ``env`` values are passed through the client's environment (``-e NAME``), so a key never
    appears on a command line.
    """
    name = name or f"nizami-check-{uuid.uuid4().hex[:8]}"
    loopback = {
        "BENTOML_HOST": "127.0.0.1",
        "BENTOML_PORT": str(port),
        "NIZAMI_ENGINE_PORT": str(free_port()),
    }
    names = [x for key in {**loopback, **env} for x in ("-e", key)]
    done = engine.run(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        *names,
        *RUN_FLAGS[variant],
        image,
        env={**loopback, **env},
    )
    log.info("started container %s (%s) on %s", name, done.stdout.strip()[:12], port)
    return name


def _state(engine: Engine, name: str) -> dict:
    return json.loads(engine.run("inspect", "-f", "{{json .State}}", name).stdout)


def _fail(engine: Engine, name: str, message: str) -> SmokeError:
    logs = engine.run("logs", "--tail", "60", name, check=False)
    return SmokeError(f"{message}\n--- last lines of {name} ---\n{logs.stdout}{logs.stderr}")


def smoke_test(
    engine: Engine,
    image: str,
    key: str,
    variant: str = "cpu",
    start_timeout: float = START_TIMEOUT_S,
) -> SmokeReport:
    """Run ``image`` as documented with API key ``key`` and check it; always removes it.

    Checks: ``/health`` 200 within ``start_timeout``; a chat completion through the official
    ``openai`` client with the key, 401 without it; Docker's health status turns healthy (the
    image's HEALTHCHECK); the process runs as a non-root user; ``docker stop`` drains and the
    container exits 0 within the stop timeout.
    """
    from openai import AuthenticationError, OpenAI

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    name = run_container(engine, image, port, {"NIZAMI_API_KEYS": key}, variant)
    try:
        start_s = _wait(engine, name, lambda: _health(base) == 200, start_timeout, "/health 200")
        reply = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)
        chat = reply.chat.completions.create(
            model="nizami-1.7b",
            max_tokens=8,
            temperature=0,
            messages=[{"role": "user", "content": "Bakı nəyin paytaxtıdır?"}],
        )
        if not chat.usage or chat.usage.completion_tokens < 1:
            raise _fail(engine, name, f"no tokens generated: {chat}")
        with contextlib.suppress(AuthenticationError):
            OpenAI(base_url=f"{base}/v1", api_key="not-a-key", max_retries=0).models.list()
            raise _fail(engine, name, "a request with a wrong API key was not refused (401)")

        def healthy() -> bool:
            return (_state(engine, name).get("Health") or {}).get("Status") == "healthy"

        healthy_s = _wait(engine, name, healthy, 120, "health status healthy")
        user = engine.run("exec", name, "id", "-un").stdout.strip()
        if user in {"root", ""}:
            raise _fail(engine, name, f"the service runs as {user or '?'}, not a non-root user")
        stop_begun = time.monotonic()
        engine.run("stop", name, timeout=STOP_TIMEOUT_S + 30)
        stop_s = time.monotonic() - stop_begun
        exit_code = int(_state(engine, name)["ExitCode"])
        if exit_code != 0 or stop_s > STOP_TIMEOUT_S:
            raise _fail(engine, name, f"docker stop: exit {exit_code} after {stop_s:.0f} s")
        return SmokeReport(
            image,
            round(start_s, 1),
            round(healthy_s, 1),
            chat.usage.completion_tokens,
            user,
            round(stop_s, 1),
            exit_code,
        )
    finally:
        engine.run("rm", "-f", name, check=False)


def _health(base: str) -> int | None:
    try:
        return httpx.get(f"{base}/health", timeout=5).status_code
    except httpx.HTTPError:
        return None


def _wait(engine: Engine, name: str, ready, timeout: float, what: str) -> float:
    """Seconds since the container started until ``ready()``; fails if it exits first."""
    started = time.monotonic() - _age_s(engine, name)
    while time.monotonic() - started < timeout:
        if not _state(engine, name)["Running"]:
            raise _fail(engine, name, f"the container exited before {what}")
        if ready():
            return time.monotonic() - started
        time.sleep(1)
    raise _fail(engine, name, f"no {what} within {timeout:.0f} s")


def _age_s(engine: Engine, name: str) -> float:
    from datetime import UTC, datetime

    started_at = _state(engine, name)["StartedAt"][:26].rstrip("Z")
    begun = datetime.fromisoformat(started_at).replace(tzinfo=UTC).timestamp()
    return max(0.0, time.time() - begun)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bento.container", description=__doc__)
    parser.add_argument("--bento", default="nizami-1.7b-cpu:latest", help="bento to containerize")
    parser.add_argument("--version", help="image tag (default: the bento's model version)")
    parser.add_argument("--tag", action="append", default=[], help="another tag (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="run the image and check it")
    parser.add_argument("--smoke-only", metavar="IMAGE", help="check IMAGE (a CPU image), no build")
    parser.add_argument(
        "--builder-arg",
        action="append",
        default=[],
        help="passed to docker build as is, e.g. --cache-from=type=gha",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.smoke_only:
        return _smoke(ensure_engine(), args.smoke_only, "cpu")
    import bentoml

    try:
        bento = bentoml.get(args.bento)
    except bentoml.exceptions.NotFound:
        print(f"error: no bento {args.bento} in the BentoML store (`bentoml list`); `make demo` "
              "builds one", file=sys.stderr)  # fmt: skip
        return 1
    variant = bento.info.labels.get("variant", "cpu")
    version = args.version or bento.info.labels.get("zenml_version") or "latest"
    try:
        engine = ensure_engine()
        result = make_image(str(bento.tag), version, extra_tags=args.tag, extra=args.builder_arg)
    except (EngineError, ImageBuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not result.image_tags:
        print(f"error: no image built: {result.reason}", file=sys.stderr)
        return 1
    image = result.image_tags[0]
    size = f"{(result.size_bytes or 0) / 1e9:.2f} GB"
    print(f"\nimage   {', '.join(result.image_tags)}  ({size}, {(result.image_id or '')[:19]})")
    own = engine.host == f"unix://{OWN_SOCKET}"  # the engine this project started
    command = documented_command(image, variant)
    if own:  # it has no bridge: the service on the host's port 8000 instead of -p
        command = f"DOCKER_HOST={engine.host} " + command.replace("-p 8000:8000", "--network host")
    print(f"run     {command}")
    if own:
        print(
            f"engine  the project's own dockerd ({engine.host}; data under {DATA_ROOT}); "
            f"stop it with: kill $(cat {OWN_SOCKET.parent}/dockerd.pid)"
        )
    return _smoke(engine, image, variant) if args.smoke else 0


def _smoke(engine: Engine, image: str, variant: str) -> int:
    key = os.environ.get("NIZAMI_SMOKE_KEY") or uuid.uuid4().hex
    try:
        report = smoke_test(engine, image, key, variant)
    except (SmokeError, EngineError) as error:
        print(f"smoke test of {image} FAILED: {error}", file=sys.stderr)
        return 1
    print("smoke   " + json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
