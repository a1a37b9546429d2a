"""Step inputs and outputs as files, written and read with the step's own ZenML materializers.

The same functions run on both sides: locally they write the inputs bundle and read the
outputs back; in the kernel they read the inputs and write the outputs. A ``manifest.json``
names, for each value, its materializer and data type as ZenML source paths. No ZenML store or
client is needed: the materializers get a local artifact store rooted at the bundle folder.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from zenml.artifact_stores import LocalArtifactStore, LocalArtifactStoreConfig
from zenml.enums import StackComponentType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.materializers.materializer_registry import materializer_registry
from zenml.utils import source_utils
from zenml.utils.materializer_utils import select_materializer

from kaggle_orchestrator import upload_guard

MANIFEST = "manifest.json"


def _store(root: Path) -> LocalArtifactStore:
    now = datetime.now()
    return LocalArtifactStore(
        name="kaggle-bundle",
        id=uuid.uuid4(),
        config=LocalArtifactStoreConfig(path=str(root)),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )


def import_path(cls: type) -> str:
    """``module.Class`` for ``source_utils.load``.

    Not ``source_utils.resolve``: for a class of the project's own (a typed document) that asks
    the ZenML store for code repositories, and a kernel has no store (nor ``zenml[local]``).
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def save_values(
    values: dict[str, Any],
    root: Path,
    materializers: dict[str, list[type[BaseMaterializer]]] | None = None,
) -> dict[str, dict[str, str]]:
    """Write each value to ``root/<name>/``; returns its manifest entries.

    Args:
        values: Name -> Python object.
        root: Folder to write into.
        materializers: Candidate materializers per name (a step output's configured ones);
            otherwise ZenML's registry picks by type, as it does for step inputs.
    """
    store = _store(root)
    entries = {}
    for name, value in values.items():
        candidates = (materializers or {}).get(name)
        if candidates:
            materializer_class = select_materializer(type(value), candidates)
        else:
            materializer_class = materializer_registry[type(value)]
        uri = root / name
        uri.mkdir(parents=True, exist_ok=True)
        materializer_class(str(uri), artifact_store=store).save(value)
        entries[name] = {
            "materializer": import_path(materializer_class),
            "type": import_path(type(value)),
        }
    return entries


def load_values(entries: dict[str, dict[str, str]], root: Path) -> dict[str, Any]:
    """Read back what ``save_values`` wrote under ``root``."""
    store = _store(root)
    values = {}
    for name, entry in entries.items():
        materializer_class = source_utils.load(entry["materializer"])
        data_type = source_utils.load(entry["type"])
        values[name] = materializer_class(str(root / name), artifact_store=store).load(data_type)
    return values


def write_manifest(root: Path, manifest: dict) -> None:
    """``root/manifest.json``."""
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def read_manifest(root: Path) -> dict:
    """``root/manifest.json``, with the file named if it is missing or broken."""
    path = root / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RuntimeError(f"{path}: cannot read the bundle manifest: {error}") from error


def pack(bundle_dir: Path, source_root: Path, archive: Path) -> int:
    """``archive`` = the bundle folder + the project's tracked code under ``code/``.

    Only what :func:`upload_guard.code_files` allows (tracked files of the project's packages),
    never an untracked file; the finished archive is checked for secrets before it can be
    uploaded (:func:`upload_guard.check_archive` raises, naming the member).

    Returns:
        The archive size in bytes.
    """
    with tarfile.open(archive, "w:gz") as out:
        out.add(bundle_dir, arcname=".")
        for path in upload_guard.code_files(source_root):
            out.add(source_root / path, arcname=f"code/{path.as_posix()}", recursive=False)
    upload_guard.check_archive(archive)
    return archive.stat().st_size
