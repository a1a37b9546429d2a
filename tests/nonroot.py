"""Run a command as a normal user, the way GitHub's hosted runners run a job (root only).

``python tests/nonroot.py --state DIR --user NAME [--sudo] [--refuse-userns] -- ARGV...`` runs
as root inside a private mount namespace (the caller starts it under ``unshare --mount``), so
nothing it changes is seen by any other process or outlives the command:

- the user exists only here: copies of ``/etc/passwd``, ``/etc/group`` and ``/etc/shadow`` with
  the user added are bind-mounted over the originals; with ``--sudo`` a sudoers folder giving it
  passwordless sudo (``NOPASSWD: ALL``, as the ``runner`` user has) is mounted on
  ``/etc/sudoers.d``;
- ``/root`` becomes an empty tmpfs holding only a read-only ``.pyenv``: the interpreters a
  runner's ``setup-python`` would provide (this machine builds its venvs from pyenv's Python
  under ``/root``, which no other user can enter);
- ``--refuse-userns`` loads a seccomp filter (libseccomp, through ``pyseccomp``) that answers
  ``EPERM`` to every request for a new user namespace (``unshare``/``clone`` with
  ``CLONE_NEWUSER``; ``clone3`` answers ``ENOSYS`` so that libc falls back to ``clone``), as
  Ubuntu 24.04's ``kernel.apparmor_restrict_unprivileged_userns=1`` does for unprivileged
  processes. ``no_new_privs`` stays off, so ``sudo`` still works, as it does on the runners.
  (AppArmor lets the ``unshare`` call succeed and refuses the ``uid_map`` write or the first
  mount instead; both reach the emulator as a failed ``unshare --user``.)

Then it drops to the user (``setpriv``) with a clean environment and ``exec``s ARGV.
"""

from __future__ import annotations

import argparse
import errno
import os
import pwd
import shutil
import subprocess
from pathlib import Path

CLONE_NEWUSER = 0x10000000
UID = 4242
ENV_KEEP = ("LANG", "LC_ALL", "TZ", "PIP_FIND_LINKS", "PIP_CERT", "PIP_DEFAULT_TIMEOUT")


def _bind(source: Path, target: Path, read_only: bool = False) -> None:
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)


def add_user(state: Path, name: str, uid: int, home: Path, sudo: bool) -> None:
    """The user in this namespace's passwd/group/shadow (and sudoers with ``sudo``)."""
    etc = state / f"etc-{name}"
    etc.mkdir(parents=True, exist_ok=True)
    lines = {
        "passwd": f"{name}:x:{uid}:{uid}:nizami test user:{home}:/bin/bash\n",
        "group": f"{name}:x:{uid}:\n",
        "shadow": f"{name}:*:20000:0:99999:7:::\n",
    }
    for file, line in lines.items():
        copy = etc / file
        copy.write_text(Path("/etc", file).read_text() + line)
        copy.chmod(0o640 if file == "shadow" else 0o644)
        _bind(copy, Path("/etc", file))
    if sudo:
        sudoers = etc / "sudoers.d"
        sudoers.mkdir(exist_ok=True)
        rule = sudoers / "nizami-runner"
        rule.write_text(f"{name} ALL=(ALL) NOPASSWD: ALL\n")
        rule.chmod(0o440)
        _bind(sudoers, Path("/etc/sudoers.d"))


def expose_interpreters(state: Path) -> None:
    """``/root`` replaced by a tmpfs holding a read-only bind of ``/root/.pyenv``."""
    pyenv = Path("/root/.pyenv")
    if not pyenv.is_dir():
        return
    held = state / "pyenv-held"
    held.mkdir(exist_ok=True)
    _bind(pyenv, held)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/root"], check=True)
    pyenv.mkdir()
    _bind(held, pyenv, read_only=True)
    subprocess.run(["umount", str(held)], check=True)


def refuse_user_namespaces() -> None:
    """The seccomp filter of the module docstring, for this process and all it starts."""
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.CTL_NNP, 0)  # root may load it without no_new_privs
    newuser = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "unshare", newuser)
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", newuser)
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True, help="a folder for the copies")
    parser.add_argument("--user", required=True)
    parser.add_argument("--uid", type=int, default=UID)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--sudo", action="store_true", help="passwordless sudo, as on GitHub")
    parser.add_argument("--refuse-userns", action="store_true")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the user")
    parser.add_argument("argv", nargs="+")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root, inside `unshare --mount --propagation private`")
    add_user(args.state, args.user, args.uid, args.home, args.sudo)
    expose_interpreters(args.state)
    assert pwd.getpwnam(args.user).pw_uid == args.uid
    env = {name: os.environ[name] for name in ENV_KEEP if name in os.environ}
    env.update(
        HOME=str(args.home), USER=args.user, LOGNAME=args.user, PATH="/usr/local/bin:/usr/bin:/bin"
    )
    env.update(dict(item.split("=", 1) for item in args.env))
    if args.refuse_userns:
        refuse_user_namespaces()
    setpriv = shutil.which("setpriv") or "setpriv"
    os.execve(
        setpriv,
        [setpriv, f"--reuid={args.uid}", f"--regid={args.uid}", "--init-groups", "--", *args.argv],
        env,
    )


if __name__ == "__main__":
    main()
