"""``KaggleEmulator``: the emulator on a local port, in a background thread or in the foreground."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

from kaggle_emulator.app import build_app
from kaggle_emulator.background import BackgroundServer
from kaggle_emulator.faults import Faults
from kaggle_emulator.isolation import check_env_names, ensure_kaggle_mountpoint
from kaggle_emulator.recording import Recording
from kaggle_emulator.redirect import client_env
from kaggle_emulator.sandbox import TERMINAL, KernelVersion, SessionSettings, Status
from kaggle_emulator.state import GPU_QUOTA_SECONDS, GPU_SESSION_LIMIT, EmulatorState

log = logging.getLogger(__name__)

DEFAULT_USERNAME = "emulator"
DEFAULT_KEY = "emulator-key"


class KaggleEmulator:
    """A local Kaggle API server that runs pushed kernels in sandboxes.

    Usage::

        with KaggleEmulator(root=tmp_path, username="tester", key="k") as kaggle:
            env = kaggle.client_env(home=tmp_path / "home")   # for a `kaggle` CLI subprocess
            kaggle.faults.rate_limit("SaveKernel", retry_after=1)
            ...
            assert not kaggle.recording.find(secret)

    Args:
        root: Where sandboxes, datasets, uploads and received bodies go (default: a new
            temporary folder).
        username: The one account the emulator knows.
        key: Its API key.
        host: The interface to listen on.
        port: The port (0: a free one).
        tokens: Extra access tokens (``Bearer``) and their users.
        pass_env: Names of variables of this process a kernel session may see (secret-looking
            names are refused).
        extra_env: Variables to set in every kernel session (same rule).
        queue_seconds: How long a pushed version stays QUEUED before it runs.
        gpu_session_limit: Concurrent GPU sessions allowed (Kaggle: 2).
        gpu_quota_hours: The weekly GPU quota (Kaggle: 30).
        python: The kernels' interpreter (default: this one; ``image.prepare_image()`` gives
            a Python 3.12 environment prepared like Kaggle's image).
        layout: Where datasets mount: ``datasets`` (``/kaggle/input/datasets/<owner>/<slug>``,
            Kaggle today) or ``legacy`` (``/kaggle/input/<slug>``).
        dataset_processing_s: How long a new dataset version is processed before it is ready.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        username: str = DEFAULT_USERNAME,
        key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Mapping[str, str] | None = None,
        pass_env: Iterable[str] = (),
        extra_env: Mapping[str, str] | None = None,
        queue_seconds: float = 0.0,
        gpu_session_limit: int = GPU_SESSION_LIMIT,
        gpu_quota_hours: float = GPU_QUOTA_SECONDS / 3600,
        python: str | None = None,
        layout: Literal["datasets", "legacy"] = "datasets",
        dataset_processing_s: float = 1.0,
    ) -> None:
        pass_env, extra_env = tuple(pass_env), dict(extra_env or {})
        check_env_names(pass_env, extra_env)
        ensure_kaggle_mountpoint()
        root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="kaggle-emu-"))
        self.state = EmulatorState(
            root,
            username,
            key,
            tokens=dict(tokens or {}),
            settings=SessionSettings(
                python=python or sys.executable, pass_env=pass_env, extra_env=extra_env,
                queue_seconds=queue_seconds, layout=layout,
            ),
            gpu_session_limit=gpu_session_limit,
            gpu_quota_seconds=gpu_quota_hours * 3600,
            dataset_processing_s=dataset_processing_s,
        )
        self.app = build_app(self.state)
        self.host = host
        self.port = port
        self.url_root: str | None = None
        self._background = BackgroundServer(self.app, host, port, "kaggle-emu",
                                            "/_emulator/health")

    # --- what tests use --------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The folder everything is written under."""
        return self.state.root

    @property
    def username(self) -> str:
        """The account name."""
        return self.state.username

    @property
    def key(self) -> str:
        """The account's API key."""
        return self.state.key

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        if self.url_root is None:
            raise RuntimeError("the kaggle emulator is not started")
        return self.url_root

    @property
    def faults(self) -> Faults:
        """The fault injector (see ``kaggle_emulator.faults``)."""
        return self.state.faults

    @property
    def recording(self) -> Recording:
        """Everything received (see ``kaggle_emulator.recording``)."""
        return self.state.recording

    @property
    def deleted_kernels(self) -> list[str]:
        """``owner/slug`` of every kernel deleted so far."""
        with self.state.lock:
            return list(self.state.deleted_kernels)

    def client_env(
        self, home: Path | None = None, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment of a subprocess whose kaggle client talks to this emulator
        (see ``redirect.client_env``)."""
        return client_env(self.url, self.username, self.key, home=home, base=base)

    def kernel_version(self, ref: str, number: int | None = None) -> KernelVersion:
        """A pushed version (default: the newest) of ``owner/slug``, to inspect its session:
        ``status``, ``failure_message``, ``pid``, ``log_text()``, ``working_dir``...

        Raises:
            KeyError: If the kernel or version does not exist (or was deleted).
        """
        owner, _, slug = ref.partition("/")
        with self.state.lock:
            kernel = self.state.kernels.get((owner.lower(), slug.lower()))
        if kernel is None or (number is not None and number not in kernel.versions):
            raise KeyError(f"kaggle emulator: no kernel version {ref} v{number or 'latest'}")
        return kernel.latest if number is None else kernel.versions[number]

    def wait(
        self,
        ref: str,
        number: int | None = None,
        *,
        until: Iterable[Status] = TERMINAL,
        timeout: float = 120.0,
    ) -> KernelVersion:
        """Wait until a version's status is one of ``until`` (default: ended).

        Raises:
            TimeoutError: If it is not within ``timeout`` seconds.
        """
        wanted = set(until)
        deadline = time.monotonic() + timeout
        while True:
            version = self.kernel_version(ref, number)
            if version.status in wanted:
                return version
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"kaggle emulator: {ref} v{version.number} is still {version.status} after "
                    f"{timeout:g} s (waiting for {sorted(wanted)})"
                )
            time.sleep(0.05)

    # --- running -------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> KaggleEmulator:
        """Serve in a background thread; returns once the server answers."""
        self.url_root = self._background.start(timeout)
        self.port = self._background.port
        log.info("kaggle emulator: serving %s (root %s)", self.url, self.root)
        return self

    def serve_forever(
        self, log_level: str = "info", on_ready: Callable[[str], None] | None = None
    ) -> None:
        """Serve in the foreground until interrupted (the CLI); ``on_ready`` gets the URL once
        the port is bound."""
        sock = self._background.bind()
        self.port = self._background.port
        self.url_root = self._background.url
        server = self._background.server(log_level, embedded=False)
        if on_ready is not None:
            on_ready(self.url)
        try:
            server.run(sockets=[sock])
        finally:
            self.state.shutdown()

    def stop(self) -> None:
        """Kill running sessions and stop serving."""
        self.state.shutdown()
        self._background.stop()

    def __enter__(self) -> KaggleEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["DEFAULT_KEY", "DEFAULT_USERNAME", "KaggleEmulator", "Status"]
