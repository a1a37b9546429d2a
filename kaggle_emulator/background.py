"""An ASGI app served by uvicorn in a background thread: the emulator's and the test Hub's.

The socket is bound before the thread starts (so port 0 gives a known free port), ``start``
returns once a health URL answers, and ``log_config=None`` keeps uvicorn from running
``logging.config.dictConfig`` in the host process: that closes every existing handler, and
absl's (rouge_score imports absl) closes ``sys.stderr`` with it.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from starlette.types import ASGIApp


class BackgroundServer:
    """Serve ``app`` on ``host:port`` in a daemon thread.

    Args:
        app: The ASGI app.
        host: Interface to bind.
        port: Port (0: any free one; ``port`` holds the real one once bound).
        name: The thread's name.
        health_path: A path that answers (any status) once the server is up.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0,
                 name: str = "asgi-server", health_path: str = "/") -> None:
        self.app, self.host, self.port = app, host, port
        self.name, self.health_path = name, health_path
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def bind(self) -> socket.socket:
        """A listening socket on ``host:port`` (fills in ``port``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)  # uvicorn's backlog: connections wait from now, not from server.run()
        self.port = sock.getsockname()[1]
        return sock

    def server(self, log_level: str = "warning", embedded: bool = True) -> uvicorn.Server:
        """A uvicorn server for the app (``embedded``: leaves the host's logging alone)."""
        extra = {"log_config": None} if embedded else {}
        config = uvicorn.Config(self.app, log_level=log_level, access_log=False, lifespan="off",
                                **extra)
        self._server = uvicorn.Server(config)
        return self._server

    def start(self, timeout: float = 30.0) -> str:
        """Serve in the background; returns the URL once ``health_path`` answers.

        Raises:
            RuntimeError: It did not come up within ``timeout`` seconds.
        """
        sock = self.bind()
        server = self.server()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        daemon=True, name=self.name)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.started:
                try:
                    httpx.get(f"{self.url}{self.health_path}", timeout=2.0)
                    return self.url
                except httpx.HTTPError:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name}: did not start on {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
