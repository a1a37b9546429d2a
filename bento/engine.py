"""A Docker engine to build and run the images: the one that runs, or one the project starts.

:func:`find_engine` only looks (the package step uses it: it never starts a daemon).
:func:`ensure_engine` (``make image``, the image test) starts one where none answers: as root it
installs Debian's ``docker.io`` if ``dockerd`` is missing and runs ``dockerd`` with its own data
root (``~/.cache/nizami/docker``) and socket (``/run/nizami-docker/docker.sock``), without
iptables or a bridge (containers use the host's network or none).

:func:`ensure_base_image` makes ``python:3.11-slim`` from Debian packages where it cannot be
pulled (no registry reachable): ``debootstrap`` of bookworm, Python 3.11, pip, the machine's CA
bundle, then ``docker import``. It is made once and stays in the engine's image store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

OWN_SOCKET = Path(os.environ.get("NIZAMI_DOCKER_RUN", "/run/nizami-docker")) / "docker.sock"
DATA_ROOT = Path(os.environ.get("NIZAMI_DOCKER_ROOT", Path.home() / ".cache" / "nizami" / "docker"))
DOCKERD_FLAGS = [
    "--storage-driver",
    "overlay2",
    "--iptables=false",
    "--ip-masq=false",
    "--bridge=none",
]
# Clients to try, in order: the first on PATH, then Debian's (20.10 builds with BuildKit itself).
CLIENTS = ("docker", "/usr/bin/docker")
# Base images this module can make from Debian packages, and the Debian release each follows.
DEBIAN_BASES = {"python:3.11-slim": "bookworm"}
BASE_PACKAGES = ["python3", "python3-pip", "python3-venv", "ca-certificates"]


class EngineError(RuntimeError):
    """No Docker engine can be found or started; the message says what to do."""


class BaseImageError(EngineError):
    """The Dockerfile's base image can be neither found, pulled nor made here."""


@dataclass(frozen=True)
class Engine:
    """A Docker daemon that answers, and the environment that reaches it."""

    host: str | None  # DOCKER_HOST, or None for the client's default
    clients: list[str] = field(default_factory=list)  # client paths that reach it
    started_pid: int | None = None  # the dockerd this module started, if any

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env

    def run(self, *args: str, timeout: float = 120, check: bool = True,
            client: str | None = None, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run ``docker <args>`` against this engine (output captured; ``env`` added)."""
        command = [client or self.clients[0], *args]
        done = subprocess.run(command, env=self.env | (env or {}), capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip
        if check and done.returncode != 0:
            raise EngineError(f"`docker {' '.join(args)}` failed: {done.stderr.strip()[-2000:]}")
        return done


def _clients() -> list[str]:
    found = [shutil.which(name) for name in CLIENTS]
    return list(dict.fromkeys(path for path in found if path))


def _answers(client: str, host: str | None) -> bool:
    env = dict(os.environ) | ({"DOCKER_HOST": host} if host else {})
    try:
        done = subprocess.run(
            [client, "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def find_engine() -> Engine | None:
    """The Docker engine that answers (``$DOCKER_HOST``/the default, then the project's own)."""
    clients = _clients()
    hosts: list[str | None] = [os.environ.get("DOCKER_HOST") or None]
    if OWN_SOCKET.exists():
        hosts.append(f"unix://{OWN_SOCKET}")
    for host in hosts:
        reaching = [client for client in clients if _answers(client, host)]
        if reaching:
            return Engine(host=host, clients=reaching)
    return None


def ensure_engine(wait_s: float = 60) -> Engine:
    """The engine that answers, else one started here (as root; installs ``docker.io`` first).

    Raises:
        EngineError: not root and no engine answers, or ``dockerd`` did not come up.
    """
    engine = find_engine()
    if engine is not None:
        return engine
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers and only root can start one here: start Docker "
            "(e.g. `sudo systemctl start docker`) or run this as root"
        )
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    if dockerd is None or not Path("/usr/bin/docker").exists():
        _apt_install(["docker.io"])
        dockerd = "/usr/sbin/dockerd"
    run_dir = OWN_SOCKET.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    log_path = DATA_ROOT / "dockerd.log"
    command = [
        dockerd,
        "--data-root",
        str(DATA_ROOT / "data"),
        "--exec-root",
        str(run_dir / "exec"),
        "--pidfile",
        str(run_dir / "dockerd.pid"),
        "-H",
        f"unix://{OWN_SOCKET}",
        *DOCKERD_FLAGS,
    ]
    log.info(
        "no Docker engine answers: starting %s (data root %s, log %s)",
        dockerd,
        DATA_ROOT / "data",
        log_path,
    )
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise EngineError(f"dockerd exited with {proc.returncode}:\n{tail}")
        engine = find_engine()
        if engine is not None and engine.host == f"unix://{OWN_SOCKET}":
            return Engine(host=engine.host, clients=engine.clients, started_pid=proc.pid)
        time.sleep(0.5)
    proc.terminate()
    raise EngineError(f"dockerd did not answer within {wait_s:.0f} s (log: {log_path})")


def stop_engine(engine: Engine, timeout: float = 60) -> None:
    """Stop the ``dockerd`` that :func:`ensure_engine` started (no-op for any other)."""
    if engine.started_pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(engine.started_pid, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{engine.started_pid}").exists():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(engine.started_pid, os.WNOHANG)
            time.sleep(0.2)


def _apt_install(packages: list[str]) -> None:
    log.info("installing Debian packages: %s", " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineError(f"`{' '.join(command)}` failed:\n{done.stderr[-2000:]}")


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The Debian mirror this machine's apt uses (deb822 ``URIs:`` or a ``deb`` line)."""
    candidates = [sources, Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.exists():
            continue
        text = path.read_text()
        match = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", text, re.M
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image(engine: Engine, name: str) -> str:
    """Make sure image ``name`` exists: present, pulled, or made from Debian packages.

    Returns how it was had: ``present``, ``pulled`` or ``debootstrap``.

    Raises:
        BaseImageError: it can be neither pulled nor made here.
    """
    if engine.run("image", "inspect", name, check=False).returncode == 0:
        return "present"
    pulled = engine.run("pull", name, check=False, timeout=300)
    if pulled.returncode == 0:
        return "pulled"
    if name not in DEBIAN_BASES:
        raise BaseImageError(
            f"base image {name} cannot be pulled ({pulled.stderr.strip()}) and "
            "is not one this project can make from Debian packages"
        )
    log.info(
        "base image %s cannot be pulled (%s): making it from Debian packages, once",
        name,
        pulled.stderr.strip().splitlines()[-1:],
    )
    _make_debian_base(engine, name, DEBIAN_BASES[name])
    return "debootstrap"


def _make_debian_base(engine: Engine, name: str, release: str) -> None:
    """``debootstrap`` ``release`` with Python and pip into a folder, then ``docker import``.

    Like the official ``python:*-slim`` images: ``python``/``pip`` on PATH and pip allowed to
    install into the system Python (no EXTERNALLY-MANAGED marker).
    """
    if shutil.which("debootstrap") is None:
        try:
            _apt_install(["debootstrap"])
        except EngineError as error:
            raise BaseImageError(f"cannot make {name}: {error}") from error
    with tempfile.TemporaryDirectory(prefix="nizami-rootfs-", dir=DATA_ROOT) as scratch:
        rootfs = Path(scratch) / "rootfs"
        started = time.monotonic()
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            release,
            str(rootfs),
            debian_mirror(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BaseImageError(f"`{' '.join(command)}` failed:\n{done.stdout[-2000:]}")
        ca_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if ca_bundle.exists():  # the machine's trust store (a TLS proxy's CA included)
            shutil.copy2(ca_bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
        for marker in (rootfs / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for alias, target in (("python", "python3"), ("pip", "pip3")):
            with contextlib.suppress(FileExistsError):
                (rootfs / "usr/local/bin" / alias).symlink_to(f"/usr/bin/{target}")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
            lists.unlink()
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            f"LABEL org.nizami.base=debootstrap-{release}",
        ]
        imported = subprocess.run(
            [
                engine.clients[0],
                "import",
                *(x for c in changes for x in ("--change", c)),
                "-",
                name,
            ],
            stdin=tar.stdout,
            env=engine.env,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise BaseImageError(f"`docker import` of {name} failed: {imported.stderr.strip()}")
    log.info(
        "made base image %s from Debian %s in %.0f s", name, release, time.monotonic() - started
    )
