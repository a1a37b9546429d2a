"""``blobs.BlobApiService`` and ``datasets.DatasetApiService``: upload, version, download.

A dataset version holds the uploaded files as Kaggle shows them: an uploaded ``x.zip`` or
``x.tar[.gz]`` (what ``kaggle datasets create --dir-mode zip`` sends for a folder ``x``) is
extracted into ``x/``. Kernels that attach the dataset see those files under
``/kaggle/input/<slug>/``; DownloadDataset serves them zipped, through a redirect to a signed
URL, as the real service does.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaggle_emulator.state import (
    ApiError,
    Blob,
    Call,
    Dataset,
    DatasetVersion,
    EmulatorState,
    iso_time,
)

BLOB_TYPES = ("DATASET", "MODEL", "INBOX", "COMPETITION_SOLUTION")
_TAR = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tar\.xz)$")


@dataclass(frozen=True)
class Redirect:
    """A handler's answer that is an HTTP 302 to ``url``."""

    url: str


# --- blobs -------------------------------------------------------------------------------------


def start_blob_upload(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """StartBlobUpload: a token naming the upload and the URL to PUT its bytes to."""
    blob_type, name = body.get("type") or "", Path(body.get("name") or "").name
    if blob_type not in BLOB_TYPES:
        raise ApiError(400, f"Invalid blob type {blob_type!r}; expected one of {list(BLOB_TYPES)}")
    if not name:
        raise ApiError(400, "StartBlobUpload needs a file name")
    length = int(body.get("contentLength") or 0)
    if length < 0:
        raise ApiError(400, "contentLength must not be negative")
    token = secrets.token_urlsafe(18)
    path = state.root / "blobs" / token / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with state.lock:
        state.blobs[token] = Blob(token, name, length, path)
    return {"token": token, "createUrl": f"{call.base_url}/_emulator/upload/{token}"}


def put_blob(
    state: EmulatorState, token: str, content_range: str | None, data: bytes
) -> tuple[int, dict[str, str]]:
    """The PUT to a ``createUrl``: store (or resume) the bytes of an upload.

    Follows the resumable protocol the client speaks: ``Content-Range: bytes */N`` asks how far
    an upload got (200 if complete, 308 with ``Range: bytes=0-<last>`` otherwise), ``bytes
    a-b/N`` appends a chunk, no header sends the whole file.

    Returns:
        The HTTP status and headers to answer with.
    """
    with state.lock:
        blob = state.blobs.get(token)
    if blob is None:
        return 404, {}
    have = blob.path.stat().st_size
    match = re.fullmatch(r"bytes (\*|(\d+)-(\d+))/(\d+)", (content_range or "").strip())
    if content_range and match is None:
        return 400, {}
    if match is not None and match.group(1) == "*":
        data, start = b"", have
    else:
        start = int(match.group(2)) if match is not None else 0
    if start > have:
        return 400, {}
    if data:
        with blob.path.open("r+b") as handle:
            handle.seek(start)
            handle.write(data)
            handle.truncate()
        have = start + len(data)
    if have >= blob.content_length and (data or blob.complete or blob.content_length == 0):
        if not blob.complete:
            blob.complete = True
            state.recording.add_blob(token, blob.name, blob.path)
        return 200, {}
    return 308, ({"Range": f"bytes=0-{have - 1}"} if have else {})


# --- datasets ------------------------------------------------------------------------------------


def _extract(archive: Path, target: Path) -> None:
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)  # ZipFile drops absolute paths and ".." parts
    else:
        with tarfile.open(archive) as tarred:
            tarred.extractall(target, filter="data")


def _materialize(state: EmulatorState, dataset: Dataset, number: int, files: list[Any]) -> None:
    """Build version ``number`` of ``dataset`` from the uploads named in ``files``."""
    tokens = [f.get("token") if isinstance(f, dict) else None for f in files]
    if not tokens:
        raise ApiError(400, f"A version of dataset {dataset.ref} needs at least one file")
    with state.lock:
        blobs = [state.blobs.get(t or "") for t in tokens]
    missing = [t for t, b in zip(tokens, blobs, strict=True) if b is None or not b.complete]
    if missing:
        raise ApiError(400, f"Unknown or incomplete upload token(s): {missing}")
    files_dir = state.root / "datasets" / dataset.owner / dataset.slug / str(number) / "files"
    if files_dir.parent.exists():
        shutil.rmtree(files_dir.parent)
    files_dir.mkdir(parents=True)
    for blob in blobs:
        assert blob is not None
        tar = _TAR.search(blob.name)
        try:
            if blob.name.endswith(".zip") and zipfile.is_zipfile(blob.path):
                _extract(blob.path, files_dir / blob.name[: -len(".zip")])
            elif tar and tarfile.is_tarfile(blob.path):
                _extract(blob.path, files_dir / blob.name[: tar.start()])
            else:
                shutil.copy2(blob.path, files_dir / blob.name)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
            raise ApiError(400, f"Could not unpack {blob.name}: {e}") from e
    dataset.versions[number] = DatasetVersion(
        number, files_dir, processing_s=state.dataset_processing_s
    )


def _created(call: Call, dataset: Dataset) -> dict[str, Any]:
    return {
        "ref": dataset.ref,
        "url": f"{call.base_url}/datasets/{dataset.ref}",
        "status": "ok",
    }


def create_dataset(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """CreateDataset: a new dataset, version 1, from uploaded blobs."""
    owner, slug = body.get("ownerSlug") or call.user, body.get("slug") or ""
    title = body.get("title") or ""
    if owner.lower() != call.user.lower():
        raise ApiError(403, f"Permission denied: cannot create a dataset for {owner!r}")
    if not 6 <= len(slug) <= 50:
        raise ApiError(400, "The dataset slug must be between 6 and 50 characters")
    if not 6 <= len(title) <= 50:
        raise ApiError(400, "The dataset title must be between 6 and 50 characters")
    with state.lock:
        if (owner.lower(), slug.lower()) in state.datasets:
            return {
                "status": "error",
                "error": f'The requested title "{title}" is already in use by a dataset. '
                "Please choose another title.",
            }
    dataset = Dataset(
        state.next_id(),
        call.user,
        slug,
        title,
        body.get("licenseName") or "unknown",
        bool(body.get("isPrivate", False)),
        body.get("subtitle") or "",
        body.get("description") or "",
    )
    _materialize(state, dataset, 1, body.get("files") or [])
    with state.lock:
        state.datasets[(owner.lower(), slug.lower())] = dataset
    return _created(call, dataset)


def _new_version(
    state: EmulatorState, call: Call, dataset: Dataset, body: dict[str, Any]
) -> dict[str, Any]:
    if dataset.owner.lower() != call.user.lower():
        raise ApiError(403, f"Permission denied: {dataset.ref} belongs to another user")
    with state.lock:
        number = max(dataset.versions) + 1
    _materialize(state, dataset, number, body.get("files") or [])
    dataset.versions[number].notes = body.get("versionNotes") or ""
    if body.get("deleteOldVersions"):
        for old in [n for n in dataset.versions if n != number]:
            del dataset.versions[old]
    return _created(call, dataset)


def create_dataset_version(
    state: EmulatorState, call: Call, body: dict[str, Any]
) -> dict[str, Any]:
    """CreateDatasetVersion: a new version (its files replace the previous version's)."""
    dataset = state.dataset(body.get("ownerSlug") or call.user, body.get("datasetSlug") or "")
    return _new_version(state, call, dataset, body.get("body") or {})


def create_dataset_version_by_id(
    state: EmulatorState, call: Call, body: dict[str, Any]
) -> dict[str, Any]:
    """CreateDatasetVersionById: the same, naming the dataset by its numeric id."""
    with state.lock:
        found = [d for d in state.datasets.values() if d.id == int(body.get("id") or 0)]
    if not found:
        raise ApiError(404, f"Dataset id {body.get('id')} not found")
    return _new_version(state, call, found[0], body.get("body") or {})


def _dataset_from(state: EmulatorState, call: Call, body: dict[str, Any]) -> Dataset:
    return state.dataset(body.get("ownerSlug") or call.user, body.get("datasetSlug") or "")


def get_dataset_status(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """GetDatasetStatus: the newest version's processing state (READY once attachable), 404
    for a dataset that does not exist."""
    return {"status": _dataset_from(state, call, body).latest.status}


def get_dataset(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """GetDataset: the dataset's summary, with its current version number."""
    return _summary(_dataset_from(state, call, body), call)


def list_datasets(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """ListDatasets: ``group`` MY (the client's ``mine=True``) lists the caller's own datasets,
    private ones included; any other group only public ones (of ``user``, if given); ``search``
    matches the slug or title. 20 per page (``page`` from 1), newest first."""
    mine = "MY" in str(body.get("group") or "")
    user, search = (body.get("user") or "").lower(), (body.get("search") or "").lower()
    with state.lock:
        found = [
            d for d in state.datasets.values()
            if (d.owner.lower() == call.user.lower() if mine else not d.is_private)
            and (not user or d.owner.lower() == user)
            and (not search or search in d.slug.lower() or search in d.title.lower())
        ]  # fmt: skip
    found.sort(key=lambda d: d.latest.created, reverse=True)
    page = max(int(body.get("page") or 1), 1)
    return {"datasets": [_summary(d, call) for d in found[(page - 1) * 20 : page * 20]]}


def _summary(dataset: Dataset, call: Call) -> dict[str, Any]:
    latest = dataset.latest
    return {
        "id": dataset.id,
        "ref": dataset.ref,
        "title": dataset.title,
        "subtitle": dataset.subtitle,
        "description": dataset.description,
        "url": f"{call.base_url}/datasets/{dataset.ref}",
        "ownerName": dataset.owner,
        "ownerRef": dataset.owner,
        "creatorName": dataset.owner,
        "isPrivate": dataset.is_private,
        "licenseName": dataset.license_name,
        "lastUpdated": iso_time(latest.created),
        "currentVersionNumber": latest.number,
        "totalBytes": sum(p.stat().st_size for p in latest.files()),
    }


def get_dataset_metadata(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """GetDatasetMetadata: title, description and license (the download path reads it)."""
    dataset = _dataset_from(state, call, body)
    return {
        "info": {
            "datasetId": dataset.id,
            "datasetSlug": dataset.slug,
            "ownerUser": dataset.owner,
            "title": dataset.title,
            "subtitle": dataset.subtitle,
            "description": dataset.description,
            "isPrivate": dataset.is_private,
            "licenses": [{"name": dataset.license_name}],
        }
    }


def _version(dataset: Dataset, number: Any) -> DatasetVersion:
    if not number:
        return dataset.latest
    if int(number) not in dataset.versions:
        raise ApiError(404, f"Version {number} of dataset {dataset.ref} not found")
    return dataset.versions[int(number)]


def list_dataset_files(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """ListDatasetFiles: the files of a version (one page)."""
    dataset = _dataset_from(state, call, body)
    version = _version(dataset, body.get("datasetVersionNumber"))
    return {
        "datasetFiles": [
            {
                "name": p.relative_to(version.files_dir).as_posix(),
                "datasetRef": dataset.ref,
                "totalBytes": p.stat().st_size,
                "creationDate": iso_time(version.created),
            }
            for p in version.files()
        ]
    }


def delete_dataset(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """DeleteDataset: forget the dataset and its versions (404 if absent, 403 if not yours)."""
    dataset = _dataset_from(state, call, body)
    if dataset.owner.lower() != call.user.lower():
        raise ApiError(403, f"Permission denied: {dataset.ref} belongs to another user")
    with state.lock:
        state.datasets.pop((dataset.owner.lower(), dataset.slug.lower()), None)
    return {}


def download_dataset(state: EmulatorState, call: Call, body: dict[str, Any]) -> Redirect:
    """DownloadDataset: 302 to a signed URL of the version's zip, or of one file."""
    dataset = _dataset_from(state, call, body)
    version = _version(dataset, body.get("datasetVersionNumber"))
    name = body.get("fileName")
    if name:
        path = (version.files_dir / name).resolve()
        if not path.is_file() or not path.is_relative_to(version.files_dir.resolve()):
            raise ApiError(404, f"File {name!r} not found in dataset {dataset.ref}")
        return Redirect(state.signed_url(call, path))
    archive = version.files_dir.parent / f"{dataset.slug}.zip"
    with state.lock:
        if not archive.is_file():
            partial = archive.with_suffix(".zip.partial")
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zipped:
                for path in version.files():
                    zipped.write(path, path.relative_to(version.files_dir).as_posix())
            partial.rename(archive)
    return Redirect(state.signed_url(call, archive))
