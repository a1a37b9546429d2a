"""What the train bundle may carry to Kaggle: tracked project code, never an untracked file or a
secret (kaggle_orchestrator/upload_guard.py, bundle.pack)."""

from __future__ import annotations

import base64
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
from helpers import ROOT

from kaggle_orchestrator import bundle, upload_guard
from kaggle_orchestrator.upload_guard import SecretInBundleError, check_archive

KEY = "nz-planted-secret-5f0c1d2e3a4b"


@pytest.fixture
def project(tmp_path) -> Path:
    """A git checkout with tracked code, and the untracked files a user's folder has."""
    root = tmp_path / "project"
    (root / "steps").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "nizami"\n')
    (root / "steps" / "train.py").write_text("def train(): ...\n")
    (root / "README.md").write_text("not code\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "code"], check=True)
    # What the README once had users create, and what people keep beside their code.
    (root / "nizami_api_keys").write_text(KEY + "\n")
    (root / ".env").write_text(f"WANDB_API_KEY={KEY}\n")
    (root / "steps" / "scratch.py").write_text(f"TOKEN = '{KEY}'\n")  # untracked, unignored
    return root


def _pack(project: Path, tmp_path: Path) -> list[str]:
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    bundle.write_manifest(bundle_dir, {"step_source": "steps.train.train"})
    archive = tmp_path / "bundle.tar.gz"
    bundle.pack(bundle_dir, project, archive)
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_only_tracked_code_of_the_packages_is_packed(project, tmp_path):
    names = _pack(project, tmp_path)
    code = sorted(n for n in names if n.startswith("code/"))
    assert code == ["code/pyproject.toml", "code/steps/train.py"]
    assert not any(KEY in n or "api_keys" in n or ".env" in n for n in names)


def test_a_tracked_file_holding_a_credential_is_refused_before_upload(
    project, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", KEY)
    (project / "steps" / "train.py").write_text(f"TOKEN = '{KEY}'\n")  # tracked, edited
    with pytest.raises(
        SecretInBundleError, match=r"code/steps/train.py holds the value of \$HF_TOKEN"
    ):
        _pack(project, tmp_path)


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_a_base64_encoded_credential_is_found_at_any_alignment(tmp_path, shift):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "config.json").write_bytes(base64.b64encode(b"x" * shift + KEY.encode() + b"!"))
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
    with pytest.raises(
        SecretInBundleError, match=r"config.json holds the value of \$WANDB_API_KEY \(base64\)"
    ):
        check_archive(archive, {"WANDB_API_KEY": KEY})
    check_archive(archive, {})  # without the key set, nothing to find


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("steps/.env", b"A=1", "looks like a credential file"),
        ("steps/kaggle.json", b"{}", "looks like a credential file"),
        ("steps/prod_api_keys.txt", b"", "looks like a credential file"),
        ("steps/x.py", b"t = 'hf_" + b"a" * 34 + b"'", "holds a Hugging Face token"),
        ("steps/y.py", b"-----BEGIN OPENSSH PRIVATE KEY-----", "holds a private key"),
    ],
)
def test_secret_names_and_token_shapes_are_refused(project, tmp_path, name, content, why):
    (project / name).write_bytes(content)
    subprocess.run(["git", "-C", str(project), "add", "-f", name], check=True)
    with pytest.raises(SecretInBundleError, match=why):
        _pack(project, tmp_path)


def test_the_allow_list_is_the_projects_packages():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {p.rstrip("*") for p in packages} - {"kaggle_emulator"}  # never runs in a kernel
    assert set(upload_guard.CODE_PATHS) == shipped | {"pyproject.toml"}


def test_without_git_the_code_files_of_the_packages_are_packed(tmp_path):
    root = tmp_path / "release"
    (root / "steps" / "__pycache__").mkdir(parents=True)
    (root / "steps" / "train.py").write_text("x = 1\n")
    (root / "steps" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (root / "steps" / "model.safetensors").write_bytes(b"\0")
    (root / "nizami_api_keys").write_text(KEY)
    assert upload_guard.code_files(root) == [Path("steps/train.py")]
