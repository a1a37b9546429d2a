"""Isolate a kernel session: the real ``/kaggle`` in its own namespaces, and no secret.

``session_command`` builds the argv of one session: ``unshare`` (util-linux) makes a private
mount namespace, plus a network namespace when the kernel's internet is off, plus a user
namespace when the emulator does not run as root. Inside it a short ``sh`` script

1. bind-mounts the session folder on ``/kaggle`` and remounts ``/kaggle/input`` read-only;
2. overlays the interpreter's environment (its ``sys.prefix``) with a per-session upper folder,
   so ``pip install`` in the kernel changes this session's view only; binds a per-session
   folder on ``/app`` (a Kaggle session's root filesystem is its own, and ZenML's step
   entrypoint, which server-mode kernels run, works in ``/app``);
3. brings up loopback when the network is off, ``cd /kaggle/working``, and ``exec``s Python on
   ``/kaggle/src/script.py``.

Nothing outside the session sees these mounts; the session's files stay readable on the host
under the session folder. ``/kaggle`` itself must exist on the host as an (empty) mount point;
so must ``/app`` for sessions to get their own (created when possible; else sessions have none).

``sandbox_env`` is the session's whole environment: nothing that looks like a credential.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

BASE_ENV_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_SECRET_WORDS = frozenset(
    {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "KEY", "APIKEY"}
)
_SECRET_PREFIXES = ("KAGGLE_", "AWS_", "AZURE_", "GOOGLE_APPLICATION_")
KAGGLE_DIR = Path("/kaggle")
APP_DIR = Path("/app")

_SETUP = r"""set -e
mount --bind "$1" /kaggle
mount --bind /kaggle/input /kaggle/input
mount -o remount,bind,ro /kaggle/input
mount -t overlay overlay -o "lowerdir=$3,upperdir=$4,workdir=$5" "$3"
if [ -d /app ]; then mount --bind "$7" /app; fi
if [ "$6" = offline ]; then ip link set lo up 2>/dev/null || true; fi
cd /kaggle/working
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


def ensure_kaggle_mountpoint() -> None:
    """Create the empty ``/kaggle`` mount point if it is missing (needs root once).

    Raises:
        NamespaceError: It is missing and cannot be created, or ``unshare`` is not installed.
    """
    if shutil.which("unshare") is None:
        raise NamespaceError("the kaggle emulator needs `unshare` (util-linux) to run kernels")
    try:  # not required: only ZenML's entrypoint (server mode) needs a private /app
        APP_DIR.mkdir(exist_ok=True)
    except OSError:
        pass
    if KAGGLE_DIR.is_dir():
        return
    try:
        KAGGLE_DIR.mkdir()
    except OSError as error:
        raise NamespaceError(
            f"the kaggle emulator runs kernels at the real {KAGGLE_DIR}, which does not exist "
            f"and cannot be created ({error}): run `sudo mkdir {KAGGLE_DIR}` once"
        ) from error


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
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if not internet:
        unshare.append("--net")
    if os.geteuid() != 0:
        unshare += ["--user", "--map-root-user"]
    return [
        *unshare, "--", "sh", "-c", _SETUP, "kaggle-session",
        str(session_dir / "kaggle"), python, str(prefix), str(upper), str(work),
        "online" if internet else "offline", str(session_dir / "app"),
    ]
