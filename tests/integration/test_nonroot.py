"""The Kaggle tests as a normal user, as GitHub's hosted runners run them (needs root to set up).

Every other test here runs as whoever runs ``make test``, which on these machines is root. On
GitHub's ``ubuntu-latest`` the job runs as ``runner`` (passwordless sudo) and Ubuntu 24.04's
AppArmor refuses unprivileged user namespaces; on a laptop a user may have no sudo at all. Each
set-up below runs, in a copy of the working tree, as a user that exists only in a private mount
namespace (``tests/nonroot.py``: no change to this machine outlives the test):

- ``runner``: passwordless sudo, user namespaces refused (a seccomp filter) → the emulator's
  kernel-running e2e tests and one Kaggle-stack pipeline run pass, sessions isolated through sudo;
- ``laptop``: no sudo, user namespaces allowed → the same emulator tests pass in a user namespace;
- ``locked``: no sudo, user namespaces refused → the emulator refuses to start and says which
  ``sysctl`` to run.

The user builds its own Kaggle-like environment, as a runner would (kept between runs under
``/var/tmp/nizami-nonroot``, as the workflow caches it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="already a normal user: the suite is the check"),
]

UID = 4242
CACHE = Path("/var/tmp/nizami-nonroot")
LAUNCH = ROOT / "tests" / "nonroot.py"
# The emulator tests that run kernels (the rest speak HTTP only, whoever runs them).
EMULATOR_TESTS = [
    "tests/integration/test_emulator.py::test_a_kaggle_notebook_runs_unchanged_through_the_cli",
    "tests/integration/test_emulator.py::test_input_is_read_only_and_internet_off_means_no_network",
    "tests/integration/test_emulator.py::test_kernel_error_has_failure_message_and_log",
    "tests/integration/test_emulator.py::"
    "test_a_kernel_changes_its_environment_as_pip_does_and_the_next_session_starts_clean",
    "tests/integration/test_emulator.py::test_hanging_kernel_runs_until_deleted",
    "tests/integration/test_emulator.py::test_sandbox_env_has_no_secret_and_recording_finds_what_was_sent",
]
PIPELINE_TEST = (
    "tests/integration/test_kaggle_stack.py::test_pipeline_runs_with_train_in_the_kernel"
)


def _ensure_sudo() -> None:
    if shutil.which("sudo"):
        return
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", "sudo"],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert done.returncode == 0, f"apt-get install sudo failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    """A copy of the working tree (tracked and untracked, not ignored), one commit, that the
    user owns; the project's ``.venv`` linked in."""
    _ensure_sudo()
    base = CACHE / f"run-{os.getpid()}"  # pytest's temporary folders are private to root
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    CACHE.chmod(0o755)
    repo = base / "repo"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in [n for n in listed if n] + ["data/nizami.jsonl"]:
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git = ["git", "-c", "user.name=nizami", "-c", "user.email=nizami@localhost"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the working tree"]):
        subprocess.run([*git, *step], cwd=repo, check=True, capture_output=True)  # DVC needs git
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (base / "home").mkdir()
    (CACHE / "kaggle-image").mkdir(exist_ok=True)
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(base)], check=True)
    os.chown(CACHE / "kaggle-image", UID, UID)  # the user fills it
    yield base
    shutil.rmtree(base, ignore_errors=True)


def as_user(
    workspace: Path,
    name: str,
    argv: list[str],
    *,
    sudo: bool,
    refuse_userns: bool,
    timeout: float = 1500,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run in the copy as ``name`` (uid 4242), in its own mount namespace."""
    repo = workspace / "repo"
    # Python 3.12 on PATH for the Kaggle-like environment, as setup-python would put it there
    python312 = sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin"))
    env = {
        "PATH": ":".join([str(repo / ".venv" / "bin"), *map(str, python312[-1:]), "/usr/bin:/bin"]),
        "NIZAMI_KAGGLE_IMAGE_CACHE": str(CACHE / "kaggle-image"),
        "TMPDIR": str(workspace / "home"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [
        "unshare", "--mount", "--propagation", "private", "--", sys.executable, str(LAUNCH),
        "--state", str(workspace / f"state-{name}"), "--user", name, "--uid", str(UID),
        "--home", str(workspace / "home"), *(["--sudo"] if sudo else []),
        *(["--refuse-userns"] if refuse_userns else []),
        *[f"--env={k}={v}" for k, v in env.items()], "--", "sh", "-c", 'cd "$0" && exec "$@"',
        str(repo), *argv,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _mode(workspace: Path, name: str, **how: bool) -> subprocess.CompletedProcess[str]:
    probe = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "from kaggle_emulator.isolation import ensure_kaggle_mountpoint\n"
        "ensure_kaggle_mountpoint()"
    )
    return as_user(workspace, name, [".venv/bin/python", "-c", probe], timeout=120, **how)


def _pytest(workspace: Path, name: str, tests: list[str], **how: bool) -> None:
    done = as_user(
        workspace,
        name,
        [
            ".venv/bin/python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            *tests,
        ],
        **how,
    )
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"as {name}:\n{tail}"
    assert f"{len(tests)} passed" in done.stdout, tail


def test_a_runner_with_sudo_and_no_user_namespaces_runs_kernels_through_sudo(workspace):
    how = {"sudo": True, "refuse_userns": True}
    said = _mode(workspace, "runner", **how)
    assert said.returncode == 0, said.stderr
    assert "kernel sessions run through passwordless sudo" in said.stderr
    _pytest(workspace, "runner", [*EMULATOR_TESTS, PIPELINE_TEST], **how)
    # nothing of root's is left in the user's folders: the user can delete its sessions
    # (overlayfs makes its work folder as root, mode 000, under sudo)
    owned_by_root = subprocess.run(["find", str(workspace / "home"), "-uid", "0", "-type", "d"],
                                   capture_output=True, text=True).stdout.split()
    assert owned_by_root == [], owned_by_root[:10]
    _assert_no_overlay_work_left(workspace)


def test_a_user_without_sudo_runs_kernels_in_a_user_namespace(workspace):
    how = {"sudo": False, "refuse_userns": False}
    said = _mode(workspace, "laptop", **how)
    assert said.returncode == 0, said.stderr
    assert "kernel sessions run in an unprivileged user namespace" in said.stderr
    _pytest(workspace, "laptop", EMULATOR_TESTS, **how)
    # overlayfs's work folder (mode 000, the user's here) is gone: the user can delete its
    # sessions (`make team-down` could not before)
    _assert_no_overlay_work_left(workspace)


def _assert_no_overlay_work_left(workspace: Path) -> None:
    left = subprocess.run(["find", str(workspace / "home"), "-type", "d", "-name", "image-work"],
                          capture_output=True, text=True).stdout.split()
    assert left == [], left[:10]


def test_without_either_the_emulator_says_what_to_run(workspace):
    said = _mode(workspace, "locked", sudo=False, refuse_userns=True)
    assert said.returncode != 0
    assert "NamespaceError" in said.stderr
    assert "unprivileged user namespaces are refused here" in said.stderr
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in said.stderr
