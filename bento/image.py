"""Build a bento's container image with a builder that works, and say exactly what happened.

``bentoml.container.build`` logs a failed build and returns as if it had worked, so the image is
built here from the context BentoML generates (:func:`bento.build.write_build_context`, the
same Dockerfile ``bentoml containerize`` builds), with the first usable builder:

- ``buildx``: a client with the buildx plugin;
- ``buildkit``: a client with BuildKit built in (Debian's ``docker`` 20.10, ``DOCKER_BUILDKIT=1``);
- ``legacy``: the classic builder, with a Dockerfile generated without BuildKit syntax.

Each is checked by a tiny probe build, not trusted because ``docker info`` answers. A build
that fails raises :class:`ImageBuildError` with the builder's own last lines; where no engine or
no builder exists, no image is claimed and the complete build context is left instead.

The CPU image installs torch's CPU build from the index in the build argument
``UV_EXTRA_INDEX_URL`` (default: PyTorch's public CPU index). Where this machine's pip takes that
wheel from a local folder (``find-links``), :func:`torch_index` serves the folder on loopback as
a package index for the build (``--network host``), as ``make install`` takes it from there.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bento.build import BENTO_DIR, default_context_root, write_build_context
from bento.engine import BaseImageError, Engine, ensure_base_image, find_engine

log = logging.getLogger(__name__)

BuilderKind = Literal["buildx", "buildkit", "legacy"]
TORCH_INDEX_ARG = "UV_EXTRA_INDEX_URL"
# A fixed port keeps the build argument, and so the build cache, the same from build to build.
WHEEL_INDEX_PORT = int(os.environ.get("NIZAMI_WHEEL_INDEX_PORT", "38917"))


class ImageBuildError(RuntimeError):
    """``docker build`` failed; the message carries the builder's last lines."""


@dataclass(frozen=True)
class Builder:
    """A client of ``engine`` that can build images, and how (see the module docstring)."""

    engine: Engine
    client: str
    kind: BuilderKind

    @property
    def env(self) -> dict[str, str]:
        return self.engine.env | {"DOCKER_BUILDKIT": "0" if self.kind == "legacy" else "1"}

    def build_command(
        self, context: Path, tags: list[str], build_args: dict[str, str], extra: list[str] = ()
    ) -> list[str]:
        verb = ["buildx", "build", "--load"] if self.kind == "buildx" else ["build"]
        progress = [] if self.kind == "legacy" else ["--progress", "plain"]
        return [
            self.client,
            *verb,
            *progress,
            "--network",
            "host",
            "-f",
            str(context / "env" / "docker" / "Dockerfile"),
            *(x for tag in tags for x in ("-t", tag)),
            *(x for k, v in build_args.items() for x in ("--build-arg", f"{k}={v}")),
            *extra,
            str(context),
        ]


@dataclass(frozen=True)
class ImageResult:
    """What :func:`make_image` did: the image it built, or the context it left and why."""

    image_tags: list[str]
    build_context: Path | None
    image_id: str | None = None
    size_bytes: int | None = None
    reason: str | None = None  # why no image was built


def _probe(builder: Builder) -> str | None:
    """Build a two-line Dockerfile with ``builder``; None if it works, else its error."""
    if builder.kind == "buildx":
        plugin = subprocess.run(
            [builder.client, "buildx", "version"],
            env=builder.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if plugin.returncode != 0:
            return "no buildx plugin"
    with tempfile.TemporaryDirectory(prefix="nizami-probe-") as tmp:
        context = Path(tmp)
        (context / "probe").write_text("probe\n")
        # COPY --chmod is BuildKit-only: the probe fails where BuildKit is asked for and absent.
        copy = "COPY probe /probe" if builder.kind == "legacy" else "COPY --chmod=644 probe /p"
        (context / "Dockerfile").write_text(f"FROM scratch\n{copy}\n")
        if builder.kind == "legacy":
            command = [builder.client, "build", "-q", "-t", "nizami-builder-probe", str(context)]
        else:
            verb = ["buildx", "build"] if builder.kind == "buildx" else ["build"]
            command = [builder.client, *verb, "--output", "type=tar,dest=/dev/null", str(context)]
        try:
            done = subprocess.run(
                command, env=builder.env, capture_output=True, text=True, timeout=120, check=False
            )
        except subprocess.TimeoutExpired:
            return "the probe build did not finish in 120 s"
        if builder.kind == "legacy" and done.returncode == 0:
            builder.engine.run("rmi", "nizami-builder-probe", check=False, client=builder.client)
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None if done.returncode == 0 else (lines[0] if lines else f"exit {done.returncode}")


def find_builder(engine: Engine, allow_legacy: bool = True) -> tuple[Builder | None, list[str]]:
    """The first builder of ``engine`` whose probe build works, and why the others failed."""
    kinds: list[BuilderKind] = ["buildx", "buildkit"] + (["legacy"] if allow_legacy else [])
    failures = []
    for kind in kinds:
        for client in engine.clients:
            builder = Builder(engine, client, kind)
            error = _probe(builder)
            if error is None:
                log.info("image builder: %s (%s)", kind, client)
                return builder, failures
            failures.append(f"{kind} with {client}: {error}")
    return None, failures


def _local_torch_wheels(requirements: Path) -> list[Path]:
    """The lock's torch wheel in a folder this machine's pip finds links in, if any."""
    pinned = re.search(r"^torch==(\S+)$", requirements.read_text(), re.M)
    if pinned is None:
        return []
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["pip", "config", "list"], capture_output=True, text=True, timeout=30, check=False
        )
        for line in done.stdout.splitlines():
            if ".find-links=" in line:
                folders += line.split("=", 1)[1].strip("'\"").split()
    found: dict[str, Path] = {}  # by file name: the first folder that has it
    for folder in dict.fromkeys(folders):
        for wheel in sorted(Path(folder).glob(f"torch-{pinned.group(1)}-*.whl")):
            found.setdefault(wheel.name, wheel)
    return list(found.values())


@contextlib.contextmanager
def torch_index(requirements: Path = BENTO_DIR / "requirements-cpu.txt") -> Iterator[str | None]:
    """A loopback package index of the local torch wheel while the build runs, else None.

    Explicitly chosen with ``NIZAMI_TORCH_INDEX`` (an index URL), yielded as is.
    """
    if os.environ.get("NIZAMI_TORCH_INDEX"):
        yield os.environ["NIZAMI_TORCH_INDEX"]
        return
    wheels = _local_torch_wheels(requirements)
    if not wheels:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="nizami-index-") as tmp:
        project = Path(tmp) / "simple" / "torch"
        project.mkdir(parents=True)
        links = []
        for wheel in wheels:
            (project / wheel.name).symlink_to(wheel)
            links.append(f'<a href="{wheel.name}">{wheel.name}</a>')
        (project / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
        handler = functools.partial(_QuietHandler, directory=tmp)
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_INDEX_PORT), handler)
        except OSError:  # the fixed port is taken: any port (the install layer is rebuilt)
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/simple"
        log.info("torch for the image: %s from %s", wheels[0].name, url)
        try:
            yield url
        finally:
            server.shutdown()
            server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug(format, *args)


def inspect_image(engine: Engine, tag: str) -> dict[str, object]:
    """``docker image inspect``'s Id, Size and RepoTags of ``tag``."""
    raw = json.loads(engine.run("image", "inspect", tag).stdout)[0]
    return {"id": raw["Id"], "size_bytes": raw["Size"], "tags": raw["RepoTags"]}


def build_image(
    builder: Builder,
    tags: list[str],
    context: Path,
    build_args: dict[str, str] | None = None,
    extra: list[str] = (),
) -> dict:
    """Build the image of the build context ``context`` as ``tags``; its inspected metadata.

    The builder's output is logged line by line. Raises:
        ImageBuildError: the build failed (the context is left for a rerun by hand).
        BaseImageError: the Dockerfile's base image can be neither found, pulled nor made.
    """
    base = re.search(r"^FROM\s+(\S+)", (context / "env/docker/Dockerfile").read_text(), re.M)
    if base:
        ensure_base_image(builder.engine, base.group(1))
    command = builder.build_command(context, tags, build_args or {}, extra)
    log.info("building image %s: %s", tags[0], " ".join(command))
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(
        command,
        env=builder.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                tail.append(line.rstrip())
                log.info("[docker build] %s", line.rstrip())
    if proc.returncode != 0:
        raise ImageBuildError(
            f"docker build of {tags[0]} failed (exit {proc.returncode}); context left at "
            f"{context}. Last lines:\n" + "\n".join(tail)
        )
    info = inspect_image(builder.engine, tags[0])
    missing = set(tags) - set(info["tags"])
    if missing:
        raise ImageBuildError(f"docker build reported success but {sorted(missing)} are missing")
    shutil.rmtree(context, ignore_errors=True)  # a copy of the bento, model included
    log.info(
        "built image %s (%s, %.2f GB)", ", ".join(tags), info["id"][:19], info["size_bytes"] / 1e9
    )
    return info


def make_image(
    bento_tag: str,
    version: str,
    context_root: Path | None = None,
    build: bool = True,
    extra_tags: list[str] = (),
    extra: list[str] = (),
) -> ImageResult:
    """Containerize the bento as ``<name>:<version>`` and ``:latest`` with the engine that runs.

    No image is built, and the complete build context is left under ``context_root`` (default
    :func:`default_context_root`), when ``build`` is false, ``NIZAMI_CONTAINERIZE=never``, no
    Docker engine answers, no builder works or the base image cannot be had; ``reason`` says
    which. A build that fails raises :class:`ImageBuildError`.
    """
    name = bento_tag.split(":")[0]
    tags = list(dict.fromkeys([f"{name}:{version}", f"{name}:latest", *extra_tags]))
    context = (context_root or default_context_root()) / bento_tag.replace(":", "-")
    reason, engine, builder = None, None, None
    if not build:
        reason = "the package config does not containerize this variant (package.images)"
    elif os.environ.get("NIZAMI_CONTAINERIZE", "auto") == "never":
        reason = "NIZAMI_CONTAINERIZE=never"
    elif (engine := find_engine()) is None:
        reason = "no Docker engine answers (`make image` starts one)"
    else:
        builder, failures = find_builder(engine)
        if builder is None:
            reason = "no working image builder: " + "; ".join(failures)
    # One context, written once: built, or left behind with the reason.
    write_build_context(
        bento_tag, context, enable_buildkit=builder is None or builder.kind != "legacy"
    )
    if builder is not None:
        try:
            with torch_index() as index:
                args = {TORCH_INDEX_ARG: index} if index else {}
                info = build_image(builder, tags, context, args, extra)
            return ImageResult(tags, None, info["id"], info["size_bytes"])
        except BaseImageError as error:  # e.g. nvidia/cuda with no registry reachable
            reason = str(error)
    log.warning(
        "image %s NOT built: %s. Its complete build context is %s; build it with `make image` "
        "(or DOCKER_BUILDKIT=1 docker build -t %s -f %s/env/docker/Dockerfile %s)",
        tags[0],
        reason,
        context,
        tags[0],
        context,
        context,
    )
    return ImageResult([], context, reason=reason)
