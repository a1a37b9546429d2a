"""Everything the emulator received, kept for tests that look for leaked secrets.

Every request that reaches the emulator is recorded before authentication, faults or
validation: its method, path, body and the *scheme* of its ``Authorization`` header (``Basic``
or ``Bearer``; the credential itself is not kept: it legitimately goes to Kaggle). Request
bodies are also written to ``<root>/received/<seq>-<method>.json`` and uploaded blobs to
``<root>/blobs/<token>/<name>``, so a test that runs the emulator in another process can scan
the folder.

``Recording.find(needle)`` searches request bodies (raw, and every string inside the JSON, so
an escaped value is found too), uploaded blobs, and the members of uploaded zip/tar archives.
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaggle_orchestrator.upload_guard import encodings


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the emulator received it."""

    seq: int
    time: float
    http_method: str
    path: str
    method: str  # the RPC method name, or "upload" / "download" / "admin"
    body: bytes
    auth_scheme: str = ""  # "Basic", "Bearer" or "" (never the credential)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``None`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view of this request."""
        return {
            "seq": self.seq,
            "time": self.time,
            "httpMethod": self.http_method,
            "path": self.path,
            "method": self.method,
            "authScheme": self.auth_scheme,
            "body": self.text,
        }


@dataclass(frozen=True)
class ReceivedBlob:
    """One uploaded file (the bytes of a blob upload's PUT)."""

    token: str
    name: str
    path: Path

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view of this blob."""
        return {"token": self.token, "name": self.name, "path": str(self.path)}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _archive_members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of each regular member of a zip or tar archive; [] for anything else."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return [(i.filename, archive.read(i)) for i in archive.infolist() if not i.is_dir()]
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                members = []
                for info in archive.getmembers():
                    handle = archive.extractfile(info) if info.isfile() else None
                    if handle is not None:
                        members.append((info.name, handle.read()))
                return members
    except (OSError, zipfile.BadZipFile, tarfile.TarError):
        return []
    return []


class Recording:
    """The requests and blobs one emulator received; thread-safe.

    Args:
        folder: Where request bodies are written (``<root>/received``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._blobs: list[ReceivedBlob] = []

    def add_request(
        self, http_method: str, path: str, method: str, body: bytes, authorization: str = ""
    ) -> None:
        """Record one request (called by the emulator for every request it gets)."""
        scheme = (authorization or "").partition(" ")[0]
        with self._lock:
            seq = len(self._requests) + 1
            request = ReceivedRequest(seq, time.time(), http_method, path, method, body, scheme)
            self._requests.append(request)
        if body:
            (self.folder / f"{seq:05d}-{method}.json").write_bytes(body)

    def add_blob(self, token: str, name: str, path: Path) -> None:
        """Record an uploaded file (stored at ``path``)."""
        with self._lock:
            self._blobs.append(ReceivedBlob(token, name, path))

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def blobs(self) -> list[ReceivedBlob]:
        """The files uploaded so far, oldest first."""
        with self._lock:
            return list(self._blobs)

    def calls(self, method: str) -> list[ReceivedRequest]:
        """The requests to one RPC method (e.g. ``"SaveKernel"``)."""
        return [r for r in self.requests if r.method == method]

    def find(self, needle: str) -> list[str]:
        """Where ``needle`` occurs in anything received; [] if nowhere.

        Returns:
            One description per hit, e.g. ``"request 3 SaveKernel body"`` or
            ``"blob code.zip member steps/x.py"``.
        """
        if not needle:
            raise ValueError("find() needs a non-empty needle")
        forms = encodings(needle.encode())  # plain, and base64 at each alignment
        hits: list[str] = []

        def found(data: bytes) -> bool:
            return any(form in data for form in forms)

        for request in self.requests:
            if found(request.body) or any(found(s.encode()) for s in _strings(request.json())):
                hits.append(f"request {request.seq} {request.method} {request.path} body")
        for blob in self.blobs:
            if found(blob.path.read_bytes() if blob.path.is_file() else b""):
                hits.append(f"blob {blob.name} ({blob.token})")
            for member, content in _archive_members(blob.path):
                if found(content):
                    hits.append(f"blob {blob.name} ({blob.token}) member {member}")
        return hits

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view: every request and blob."""
        return {
            "requests": [r.to_json() for r in self.requests],
            "blobs": [b.to_json() for b in self.blobs],
        }
