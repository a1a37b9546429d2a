"""What may leave this machine for Kaggle: tracked project code only, and never a secret.

The train bundle is uploaded to a third party's service and stays on the account, so it is built
from an allow-list, not from "whatever ``.gitignore`` lets through": the files git tracks under
the project's Python packages and ``pyproject.toml`` (:data:`CODE_PATHS`). An untracked file in
the project folder (a keys file, ``.env``, a notebook with a token) is never packed.

Before anything is uploaded, :func:`check_archive` reads every member of the archive and refuses
it, naming the member, when a name looks like a credential file or a content holds a secret: the
current value of a credential variable (plain or base64) or a well-known token shape.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tarfile
from pathlib import Path

# The project's packages (pyproject.toml's [tool.setuptools.packages.find] include) and its
# metadata: what a step running in a kernel imports. A test keeps this equal to pyproject's list,
# less ``kaggle_emulator`` (a local Kaggle for dry runs: nothing that runs in a kernel imports it).
CODE_PATHS = ("pyproject.toml", "pipelines", "steps", "bento", "kaggle_orchestrator", "hf_registry",
              "http_backoff")
CODE_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".json", ".md", ".j2", ".txt", ".cfg", ".sh"}
SECRET_ENV = (
    "WANDB_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "KAGGLE_KEY",
    "KAGGLE_API_TOKEN",
    "NIZAMI_API_KEYS",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ZENML_STORE_API_KEY",
    "OPENAI_API_KEY",
)
SECRET_NAME = re.compile(
    r"(^|/)(\.env(\.[^/]*)?|\.netrc|kaggle\.json|[^/]*api[_-]?keys?[^/]*|[^/]*\.pem|id_(rsa|ed25519)"
    r"[^/]*|credentials(\.json)?|secrets?\.(ya?ml|json|toml))$",
    re.IGNORECASE,
)
TOKEN_SHAPES = {
    "a Hugging Face token": re.compile(rb"\bhf_[A-Za-z0-9]{30,}\b"),
    "a Kaggle API token": re.compile(rb"\bKGAT_[A-Za-z0-9]{20,}\b"),
    "an AWS access key id": re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),
    "a private key": re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


class SecretInBundleError(RuntimeError):
    """A member of the bundle looks like or holds a secret; nothing was uploaded."""


def code_files(root: Path) -> list[Path]:
    """The files git tracks under :data:`CODE_PATHS` (relative to ``root``).

    Without a git checkout (an unpacked release), the code files under :data:`CODE_PATHS`.
    """
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--", *CODE_PATHS],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        )
        listed = [Path(p) for p in done.stdout.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        listed = [
            path.relative_to(root)
            for top in CODE_PATHS
            for path in (
                [root / top] if (root / top).is_file() else sorted((root / top).rglob("*"))
            )
            if path.is_file() and path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts
        ]
    return [path for path in listed if (root / path).is_file()]  # deleted but not yet staged


def encodings(value: bytes) -> list[bytes]:
    """``value`` and the base64 text it becomes at each alignment inside a longer text."""
    forms = [value]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + value)[4 * shift // 3 + 1 : -4]
        if len(encoded) >= 8:  # the characters that depend on the value alone
            forms.append(encoded)
    return forms


def _secret_values(environ: dict[str, str]) -> dict[bytes, str]:
    """Each credential value now set (a key list split), and its base64 forms, by variable."""
    values: dict[bytes, str] = {}
    for name in SECRET_ENV:
        for value in re.split(r"[,\s]+", environ.get(name, "")):
            if len(value) < 8:  # too short to be a key, too common to scan for
                continue
            plain, *encoded = encodings(value.encode())
            values[plain] = f"${name}"
            values.update(dict.fromkeys(encoded, f"${name} (base64)"))
    return values


def check_archive(archive: Path, environ: dict[str, str] | None = None) -> None:
    """Refuse ``archive`` (a .tar.gz) if a member's name or content is a secret.

    Raises:
        SecretInBundleError: naming the member and what it holds (never the value).
    """
    values = _secret_values(dict(os.environ) if environ is None else environ)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if member.isfile() and SECRET_NAME.search(name):
                raise SecretInBundleError(
                    f"{archive.name}: {name} looks like a credential file; not uploaded. "
                    "Keep keys outside the project folder (README, Secrets)"
                )
            handle = tar.extractfile(member) if member.isfile() else None
            content = handle.read() if handle else b""
            for value, what in values.items():
                if value in content:
                    raise SecretInBundleError(
                        f"{archive.name}: {name} holds the value of {what}; not uploaded"
                    )
            for what, shape in TOKEN_SHAPES.items():
                if shape.search(content):
                    raise SecretInBundleError(f"{archive.name}: {name} holds {what}; not uploaded")
