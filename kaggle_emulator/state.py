"""What the emulator holds: kernels and their versions, datasets, blob uploads, the GPU quota.

Everything lives in memory (a restarted emulator starts empty) with files under one root
folder: kernel sandboxes in ``kernels/``, dataset versions in ``datasets/``, uploads in
``blobs/``, received request bodies in ``received/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from kaggle_emulator.faults import Faults
from kaggle_emulator.recording import Recording
from kaggle_emulator.sandbox import KernelVersion, SessionSettings, Status

GPU_SESSION_LIMIT = 2  # Kaggle's concurrent batch GPU sessions per account
GPU_QUOTA_SECONDS = 30 * 3600  # Kaggle's weekly GPU quota
TPU_QUOTA_SECONDS = 20 * 3600
SIGNED_URL_SECONDS = 3600


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as Kaggle's wire format writes it (``2026-05-01T12:00:00.000Z``)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ApiError(Exception):
    """An error answered as Kaggle does: HTTP ``status`` and ``{"code": status, "message"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Call:
    """Who is calling, and the base URL they reached the emulator at (for URLs handed out)."""

    user: str
    base_url: str


@dataclass
class Kernel:
    """A kernel (notebook or script) and its versions."""

    id: int
    owner: str
    slug: str
    title: str
    versions: dict[int, KernelVersion] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``owner/slug``."""
        return f"{self.owner}/{self.slug}"

    @property
    def latest(self) -> KernelVersion:
        """The newest version."""
        return self.versions[max(self.versions)]

    def version(self, label: str | None) -> KernelVersion:
        """The version a ``versionLabel`` names (``"v3"``), or the newest for none.

        Raises:
            ApiError: 404 for an unknown version or a label that is not ``v<N>`` (the real
                service answers a bare ``"3"`` with 404 too).
        """
        if not label:
            return self.latest
        number = label[1:] if label.startswith("v") else ""
        if not number.isdigit() or int(number) not in self.versions:
            raise ApiError(404, f"Notebook version {label!r} of {self.ref} not found")
        return self.versions[int(number)]


@dataclass
class Blob:
    """A blob upload started with StartBlobUpload; ``complete`` once its bytes arrived."""

    token: str
    name: str
    content_length: int
    path: Path
    complete: bool = False


# The processing states a new dataset version goes through (kagglesdk DatabundleVersionStatus).
DATASET_STATES = ("BLOBS_RECEIVED", "BLOBS_DECOMPRESSED", "BLOBS_COPIED_TO_SDS", "READY")


@dataclass
class DatasetVersion:
    """One version of a dataset: its files, extracted as Kaggle shows them.

    A new version is being processed for ``processing_s`` seconds (its status walks through
    ``DATASET_STATES``); until it is ``READY`` a kernel cannot attach it.
    """

    number: int
    files_dir: Path
    notes: str = ""
    created: float = field(default_factory=time.time)
    processing_s: float = 0.0

    @property
    def status(self) -> str:
        """Where processing is now."""
        if self.processing_s <= 0:
            return DATASET_STATES[-1]
        done = (time.time() - self.created) / self.processing_s
        return DATASET_STATES[min(int(done * (len(DATASET_STATES) - 1)), len(DATASET_STATES) - 1)]

    @property
    def ready(self) -> bool:
        """Processed: attachable and downloadable."""
        return self.status == DATASET_STATES[-1]

    def files(self) -> list[Path]:
        """The version's files, sorted."""
        return sorted(p for p in self.files_dir.rglob("*") if p.is_file())


@dataclass
class Dataset:
    """A dataset and its versions."""

    id: int
    owner: str
    slug: str
    title: str
    license_name: str
    is_private: bool
    subtitle: str = ""
    description: str = ""
    versions: dict[int, DatasetVersion] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``owner/slug``."""
        return f"{self.owner}/{self.slug}"

    @property
    def latest(self) -> DatasetVersion:
        """The newest version."""
        return self.versions[max(self.versions)]


class EmulatorState:
    """Kernels, datasets, uploads, quota, faults and the recording of one emulator.

    Args:
        root: The folder everything is written under.
        username: The one account the emulator knows.
        key: Its API key (HTTP Basic auth password).
        tokens: Extra access tokens (``Authorization: Bearer``) and the user each stands for.
        settings: How kernel sessions run.
        gpu_session_limit: Concurrent GPU sessions allowed (Kaggle: 2).
        gpu_quota_seconds: Weekly GPU quota (Kaggle: 30 h).
        dataset_processing_s: How long a new dataset version is processed before it is ready.
    """

    def __init__(
        self,
        root: Path,
        username: str,
        key: str,
        *,
        tokens: dict[str, str] | None = None,
        settings: SessionSettings | None = None,
        gpu_session_limit: int = GPU_SESSION_LIMIT,
        gpu_quota_seconds: float = GPU_QUOTA_SECONDS,
        dataset_processing_s: float = 1.0,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.key = key
        self.tokens = dict(tokens or {})
        self.settings = settings or SessionSettings()
        self.gpu_session_limit = gpu_session_limit
        self.gpu_quota_seconds = gpu_quota_seconds
        self.gpu_seconds_used = 0.0
        self.dataset_processing_s = dataset_processing_s
        self.lock = threading.RLock()
        self.kernels: dict[tuple[str, str], Kernel] = {}
        self.deleted_kernels: list[str] = []
        self.datasets: dict[tuple[str, str], Dataset] = {}
        self.blobs: dict[str, Blob] = {}
        self.faults = Faults(on_gpu_sessions=self.start_phantom_gpu_sessions)
        self.recording = Recording(self.root / "received")
        self.threads: list[threading.Thread] = []
        self._ids = itertools.count(1000)
        self._url_key = secrets.token_bytes(16)

    # --- identity --------------------------------------------------------------------------

    def next_id(self) -> int:
        """A fresh numeric id (kernels and datasets share the sequence)."""
        with self.lock:
            return next(self._ids)

    def authenticate(self, authorization: str | None) -> str | None:
        """The user an ``Authorization`` header stands for, or None if it is missing or wrong."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self.tokens.get(value.strip())
        if scheme.lower() != "basic":
            return None
        try:
            user, _, key = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        ok = hmac.compare_digest(user, self.username) and hmac.compare_digest(key, self.key)
        return user if ok else None

    # --- signed URLs (files are served without auth, like GCS signed URLs) -------------------

    def _signature(self, relpath: str, expires: int) -> str:
        message = f"{relpath}\n{expires}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()[:32]

    def signed_url(self, call: Call, path: Path, ttl: int = SIGNED_URL_SECONDS) -> str:
        """A URL that serves ``path`` (under the root) to anyone for ``ttl`` seconds."""
        relpath = path.relative_to(self.root).as_posix()
        expires = int(time.time()) + ttl
        sig = self._signature(relpath, expires)
        return f"{call.base_url}/_emulator/files/{quote(relpath)}?Expires={expires}&Signature={sig}"

    def check_signature(self, relpath: str, expires: str, signature: str) -> bool:
        """Whether a signed URL's parameters are genuine and not expired."""
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(self._signature(relpath, int(expires)), signature)

    # --- lookups -----------------------------------------------------------------------------

    def kernel(self, owner: str, slug: str) -> Kernel:
        """The kernel ``owner/slug``.

        Raises:
            ApiError: 403 if it does not exist (or is another user's private kernel): Kaggle
                answers a missing kernel as a denied permission (the official client's
                messages for 401/403 on kernel calls: "Permission 'kernels.get' was denied.
                The most likely cause is a wrong kernel slug").
        """
        with self.lock:
            kernel = self.kernels.get((owner.lower(), slug.lower()))
        if kernel is None:
            raise ApiError(403, f"Permission 'kernels.get' was denied for {owner}/{slug}")
        return kernel

    def dataset(self, owner: str, slug: str) -> Dataset:
        """The dataset ``owner/slug``.

        Raises:
            ApiError: 404 if it does not exist.
        """
        with self.lock:
            dataset = self.datasets.get((owner.lower(), slug.lower()))
        if dataset is None:
            raise ApiError(404, f"Dataset {owner}/{slug} not found")
        return dataset

    # --- GPU sessions and quota ----------------------------------------------------------------

    def running_gpu_sessions(self) -> int:
        """GPU sessions queued or running now (phantom ones included)."""
        with self.lock:
            versions = [v for k in self.kernels.values() for v in k.versions.values()]
        return sum(1 for v in versions if v.gpu and v.active)

    def gpu_seconds(self) -> float:
        """GPU time used this week: ended sessions plus the running ones so far."""
        now = time.time()
        with self.lock:
            versions = [v for k in self.kernels.values() for v in k.versions.values()]
            used = self.gpu_seconds_used
        running = sum(now - v.started for v in versions if v.gpu and v.active and v.started)
        return used + running

    def gpu_seconds_reserved(self) -> float:
        """Quota reserved by the GPU sessions queued or running now: at least a minute each
        (Kaggle books a session's time when it ends; while it runs, it is reserved)."""
        now = time.time()
        with self.lock:
            versions = [v for k in self.kernels.values() for v in k.versions.values()]
        return sum(max(60.0, now - (v.started or now)) for v in versions if v.gpu and v.active)

    def session_ended(self, version: KernelVersion) -> None:
        """Book an ended session's GPU time."""
        if version.gpu and version.started:
            with self.lock:
                self.gpu_seconds_used += (version.ended or time.time()) - version.started

    def start_phantom_gpu_sessions(self, count: int) -> None:
        """Start ``count`` GPU sessions with no process behind them (the gpu_sessions fault)."""
        with self.lock:
            for _ in range(count):
                n = next(n for n in itertools.count(1) if self._free_busy_slug(n))
                slug = f"busy-gpu-session-{n}"
                kernel = Kernel(self.next_id(), self.username, slug, f"Busy GPU session {n}")
                version = KernelVersion(
                    self.username,
                    slug,
                    1,
                    {"language": "python", "kernelType": "script", "enableGpu": True,
                     "machineShape": "NvidiaTeslaT4", "isPrivate": True},
                    self.root / "kernels" / self.username / slug / "1",
                    gpu=True,
                    external=True,
                    status=Status.RUNNING,
                    started=time.time(),
                )  # fmt: skip
                kernel.versions[1] = version
                self.kernels[(self.username.lower(), slug)] = kernel

    def _free_busy_slug(self, n: int) -> bool:
        return (self.username.lower(), f"busy-gpu-session-{n}") not in self.kernels

    # --- sessions ---------------------------------------------------------------------------------

    def start_thread(self, target: Callable[[], None], name: str) -> None:
        """Run ``target`` in a daemon thread the emulator waits for on shutdown."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def shutdown(self) -> None:
        """Kill every running session and wait for their threads."""
        with self.lock:
            versions = [v for k in self.kernels.values() for v in k.versions.values()]
            threads = list(self.threads)
        for version in versions:
            if version.active:
                version.kill()
        for thread in threads:
            thread.join(timeout=10)
