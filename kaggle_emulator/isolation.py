"""Isolate a kernel session: the real ``/kaggle`` in its own namespaces, and no secret.

``session_command`` builds the argv of one session: ``unshare`` (util-linux) makes a private
mount namespace, plus a network namespace when the kernel's internet is off, plus a user
namespace when the emulator does not run as root. How depends on what the machine allows
(``isolation_mode``, chosen once and logged): as root, ``unshare`` directly; as a normal user, in a
user namespace where unprivileged ones are allowed, else through passwordless ``sudo`` (GitHub's
hosted runners: Ubuntu 24.04's AppArmor refuses unprivileged user namespaces, and the ``runner``
user has ``sudo``), the session dropping back to the user before the kernel runs. Where neither
works, ``NamespaceError`` says what to run. Inside it a short ``sh`` script

1. bind-mounts the session folder on ``/kaggle`` and remounts ``/kaggle/input`` read-only;
2. overlays the interpreter's environment (its ``sys.prefix``) with a per-session upper folder,
   so ``pip install`` in the kernel changes this session's view only; binds a per-session
   folder on ``/app`` (a Kaggle session's root filesystem is its own, and ZenML's step
   entrypoint, which server-mode kernels run, works in ``/app``);
3. brings up loopback when the network is off, writes its pid to the session folder (under
   ``sudo`` the kernel leads its own process group: ``kill_session`` stops that one too),
   ``cd /kaggle/working``, and ``exec``s Python on ``/kaggle/src/script.py`` (through
   ``setpriv``, as the emulator's user, under ``sudo``).

Nothing outside the session sees these mounts; the session's files stay readable on the host
under the session folder. ``/kaggle`` itself must exist on the host as an (empty) mount point;
so must ``/app`` for sessions to get their own (created when possible; else sessions have none).

``sandbox_env`` is the session's whole environment: nothing that looks like a credential.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

BASE_ENV_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_SECRET_WORDS = frozenset(
    {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "KEY", "APIKEY"}
)
_SECRET_PREFIXES = ("KAGGLE_", "AWS_", "AZURE_", "GOOGLE_APPLICATION_")
KAGGLE_DIR = Path("/kaggle")
APP_DIR = Path("/app")
PID_FILE = "session.pid"

_SETUP = r"""set -e
mount --bind "$1" /kaggle
mount --bind /kaggle/input /kaggle/input
mount -o remount,bind,ro /kaggle/input
mount -t overlay overlay -o "lowerdir=$3,$4" "$3"
if [ -d /app ]; then mount --bind "$6" /app; fi
if [ "$5" = offline ]; then ip link set lo up 2>/dev/null || true; fi
echo $$ > "$7"
cd /kaggle/working
if [ -n "$8" ]; then exec setpriv --reuid="${8%:*}" --regid="${8#*:}" --init-groups \
    "$2" /kaggle/src/script.py; fi
exec "$2" /kaggle/src/script.py
"""


def looks_like_secret(name: str) -> bool:
    """Whether a variable name looks like a credential: ``HF_TOKEN``, ``WANDB_API_KEY``,
    ``KAGGLE_*``... (word by word, so ``TOKENIZERS_PARALLELISM`` is not one)."""
    upper = name.upper()
    words = set(re.split(r"[^A-Z0-9]+", upper))
    return upper.startswith(_SECRET_PREFIXES) or bool(words & _SECRET_WORDS)


def check_env_names(pass_env: Iterable[str], extra_env: Mapping[str, str]) -> None:
    """Refuse to hand a kernel anything that looks like a secret.

    Raises:
        ValueError: If a name in ``pass_env`` or ``extra_env`` looks like a credential.
    """
    bad = sorted({n for n in [*pass_env, *extra_env] if looks_like_secret(n)})
    if bad:
        raise ValueError(
            f"kaggle emulator: refusing to pass {', '.join(bad)} into kernel sandboxes: the names "
            "look like credentials, and no credential may reach a kernel"
        )


def sandbox_env(
    home: Path,
    tmp: Path,
    pass_env: Iterable[str] = (),
    extra_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a kernel session (see the module docstring)."""
    extra_env = dict(extra_env or {})
    pass_env = list(pass_env)
    check_env_names(pass_env, extra_env)
    environ = os.environ if environ is None else environ
    env = {n: environ[n] for n in (*BASE_ENV_NAMES, *pass_env) if n in environ}
    env.update(extra_env)
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",
            "KAGGLE_KERNEL_RUN_TYPE": "Batch",
        }
    )
    return env


class NamespaceError(RuntimeError):
    """Sessions cannot be isolated on this machine (no ``unshare``, no ``/kaggle``...)."""


class Isolation(enum.Enum):
    """How sessions get their namespaces (see the module docstring)."""

    ROOT = "as root"
    USERNS = "in an unprivileged user namespace"
    SUDO = "through passwordless sudo, dropping back to the user for the kernel"


_HOW_TO_ALLOW = (
    "Either allow unprivileged user namespaces (Ubuntu 23.10 and later restrict them by "
    "default: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; elsewhere check "
    "`sysctl user.max_user_namespaces` and `kernel.unprivileged_userns_clone`), give this user "
    "passwordless sudo (as GitHub's hosted runners do), or run the emulator as root."
)


def _tried(argv: list[str]) -> str:
    """'' when ``argv`` succeeds, else what it said (its last line)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode == 0:
        return ""
    said = (done.stderr or done.stdout).strip().splitlines()
    return said[-1] if said else f"exit status {done.returncode}"


@functools.cache
def isolation_mode() -> Isolation:
    """What this machine allows, tried once per process: a real mount in a new namespace.

    Raises:
        NamespaceError: Not root, user namespaces refused and no passwordless sudo.
    """
    if shutil.which("unshare") is None:
        raise NamespaceError("the kaggle emulator needs `unshare` (util-linux) to run kernels")
    if os.geteuid() == 0:
        mode = Isolation.ROOT
    else:
        with tempfile.TemporaryDirectory(prefix="kaggle-emu-probe-") as probe:
            refused = _tried(["unshare", "--user", "--map-root-user", "--mount", "--propagation",
                              "private", "--", "mount", "-t", "tmpfs", "tmpfs", probe])
        if not refused:
            mode = Isolation.USERNS
        elif shutil.which("sudo") and not _tried(["sudo", "-n", "unshare", "--mount", "true"]):
            mode = Isolation.SUDO
        else:
            raise NamespaceError(
                f"the kaggle emulator cannot isolate kernel sessions as user {os.geteuid()}: "
                f"unprivileged user namespaces are refused here (`unshare --user` said: "
                f"{refused}) and there is no passwordless sudo. {_HOW_TO_ALLOW}"
            )
    log.info("kaggle emulator: kernel sessions run %s", mode.value)
    return mode


def ensure_kaggle_mountpoint() -> None:
    """Check that sessions can be isolated, and create ``/kaggle`` (and ``/app``) if missing.

    The mount points need root once: the emulator creates them as root or through ``sudo``.

    Raises:
        NamespaceError: Sessions cannot be isolated, or ``/kaggle`` is missing and cannot be made.
    """
    mode = isolation_mode()
    missing = [d for d in (KAGGLE_DIR, APP_DIR) if not d.is_dir()]
    if not missing:
        return
    if mode is Isolation.SUDO:
        _tried(["sudo", "-n", "mkdir", "-p", *map(str, missing)])
    else:
        for folder in missing:
            try:  # /app is not required: only ZenML's entrypoint (server mode) needs its own
                folder.mkdir()
            except OSError:
                pass
    if not KAGGLE_DIR.is_dir():
        raise NamespaceError(
            f"the kaggle emulator runs kernels at the real {KAGGLE_DIR}, which does not exist "
            f"and cannot be created by user {os.geteuid()}: run `sudo mkdir {KAGGLE_DIR} "
            f"{APP_DIR}` once"
        )


def release_session(session_dir: Path) -> None:
    """After a session, the overlay's work folder goes: overlayfs makes ``work/`` in it with
    mode 000, owned by root under ``sudo`` and by the user in a user namespace, so the user
    could not delete the session folder (``make team-down`` failed on it in both set-ups)."""
    work = session_dir / "image-work"
    mode = isolation_mode()
    if mode is Isolation.SUDO and work.exists():
        _tried(["sudo", "-n", "rm", "-rf", "--", str(work)])
    elif mode is Isolation.USERNS and work.exists():
        work.chmod(0o700)
        for parent, folders, _ in os.walk(work):  # top-down: opened before it is entered
            for path in (os.path.join(parent, name) for name in folders):
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
        shutil.rmtree(work, ignore_errors=True)


def kill_session(pid: int, session_dir: Path) -> None:
    """SIGKILL a session's process group, and the kernel's own group when it leads one.

    (``sudo`` with ``use_pty``, the default of Debian and Ubuntu, runs the command in a new
    session: its group is not the one ``pid`` leads. The session wrote its pid to ``PID_FILE``.)
    """
    groups = [pid]
    try:
        groups.append(int((session_dir / PID_FILE).read_text().strip()))
    except (OSError, ValueError):
        pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@functools.cache
def interpreter_prefix(python: str) -> Path:
    """``sys.prefix`` of an interpreter: the folder a kernel's ``pip install`` writes into."""
    out = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True,
                         text=True, timeout=60, check=True)
    return Path(out.stdout.strip()).resolve()


def session_command(session_dir: Path, python: str, internet: bool) -> list[str]:
    """The argv that runs ``<session_dir>/kaggle/src/script.py`` as a Kaggle session.

    Args:
        session_dir: The version's folder; ``kaggle/`` in it becomes ``/kaggle``, and the
            overlay's upper and work folders are made in it.
        python: The kernel's interpreter (its environment is overlaid).
        internet: False gives the session a network namespace with loopback only.
    """
    prefix = interpreter_prefix(python)
    upper, work = session_dir / "image-changes", session_dir / "image-work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (session_dir / "app").mkdir(parents=True, exist_ok=True)
    mode = isolation_mode()
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if not internet:
        unshare.append("--net")
    if mode is Isolation.USERNS:
        unshare += ["--user", "--map-root-user"]
    if mode is Isolation.SUDO:  # --preserve-env: the session's environment, not sudo's
        unshare = ["sudo", "-n", "--preserve-env", *unshare]
    drop_to = f"{os.getuid()}:{os.getgid()}" if mode is Isolation.SUDO else ""
    overlay = f"upperdir={upper},workdir={work}"
    if mode is Isolation.USERNS:
        # In a user namespace overlayfs cannot write its trusted.* attributes: without
        # `userxattr` (Linux 5.11+) copying a directory up fails with EIO, e.g. pip's
        # "Input/output error: 'licenses'" installing into the overlaid environment.
        overlay += ",userxattr"
    (session_dir / PID_FILE).unlink(missing_ok=True)
    return [
        *unshare, "--", "sh", "-c", _SETUP, "kaggle-session",
        str(session_dir / "kaggle"), python, str(prefix), overlay,
        "online" if internet else "offline", str(session_dir / "app"),
        str(session_dir / PID_FILE), drop_to,
    ]
