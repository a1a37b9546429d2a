"""The service's front door on port 8000: API keys, body size, admission and draining.

One ASGI middleware (:class:`Guard`), added to the BentoML service, that every request passes
before BentoML's handlers and its reverse proxy to vLLM:

1. **API keys.** With keys configured, every path except the probes (``/health``, ``/livez``,
   ``/readyz``, ``/healthz``) and, by default, ``/metrics`` needs ``Authorization: Bearer
   <key>``; without it the answer is a 401 in the OpenAI error format (what the ``openai``
   client raises as ``AuthenticationError``). Keys come from the environment at run time,
   never from the bento or the image.
2. **Body size.** A model request whose body is over ``max_body_bytes`` gets a 413 before any
   of it reaches the engine.
3. **Admission.** At most ``max_concurrency`` model requests (``POST /v1/*``, ``/generate``) are
   in flight, streaming included; one more gets a 429 with ``Retry-After`` at once.
4. **Draining.** Once :meth:`Gate.drain` is called (SIGTERM), new model requests get a 503 with
   ``Retry-After`` and ``Connection: close`` while the ones in flight finish; :meth:`Gate.end`
   ends those still in flight (the grace period is over, the engine died): each client gets an
   OpenAI error, or an error event if it streams (:mod:`relay`).
5. **Start-up.** BentoML starts the engine inside the app's start-up (``lifespan``), and uvicorn
   answers nothing until that is over though the port accepts connections: requests would hang
   while the engine loads. The guard runs that start-up in the background and answers 503 with
   ``Retry-After`` until it is complete; if it fails, the worker exits 3, as uvicorn's does.
6. **Clients that go away.** A model request whose client disconnects is stopped, streamed or
   not: vLLM sees its connection close and frees the sequence (BentoML's proxy only notices for
   streams). Non-JSON bodies get a 400; errors reach clients in OpenAI's shape (:mod:`relay`).

Why not the stock facilities: BentoML's ``traffic.max_concurrency`` answers 429 without
``Retry-After``, not in OpenAI's shape; vLLM's ``--api-key`` covers only vLLM's routes (not
``/generate``, ``/metrics``); its ``--max-num-queued-reqs`` answers 503 without ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if __package__:  # the repository, where bento/ is a package
    from .relay import Ending, Exchange, failed, not_a_json_object, openai_error
else:  # inside the bento, src/ is the import root
    from relay import Ending, Exchange, failed, not_a_json_object, openai_error

log = logging.getLogger("bentoml.service.nizami")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBES = frozenset({"/health", "/livez", "/readyz", "/healthz"})
MIN_KEY_LENGTH = 16
STOP_S = 2  # a stream ended (client gone, shutdown) has this long to stop before it is cancelled
# Environment variable -> ServeSettings field (all read at run time, in the serving process).
ENV = {
    "NIZAMI_API_KEYS": "api_keys",
    "NIZAMI_API_KEYS_FILE": "api_keys_file",
    "NIZAMI_METRICS_REQUIRE_KEY": "metrics_require_key",
    "NIZAMI_MAX_CONCURRENCY": "max_concurrency",
    "NIZAMI_MAX_BODY_BYTES": "max_body_bytes",
    "NIZAMI_DRAIN_SECONDS": "drain_seconds",
}


class ServeSettings(BaseModel):
    """Run-time settings of the service, from ``NIZAMI_*`` environment variables.

    Attributes:
        api_keys: ``NIZAMI_API_KEYS``, comma-separated keys.
        api_keys_file: ``NIZAMI_API_KEYS_FILE``, a file with one key per line (a mounted
            secret; blank lines and ``#`` comments are skipped). Keys from both are accepted.
        metrics_require_key: ``NIZAMI_METRICS_REQUIRE_KEY``; by default ``/metrics`` is open
            (for a Prometheus inside the cluster).
        max_concurrency: ``NIZAMI_MAX_CONCURRENCY``, model requests in flight before a 429
            (default: twice the engine's ``max_num_seqs``).
        max_body_bytes: ``NIZAMI_MAX_BODY_BYTES``, largest request body (default 1 MiB).
        drain_seconds: ``NIZAMI_DRAIN_SECONDS``, grace period after SIGTERM for the requests in
            flight (also vLLM's ``--shutdown-timeout``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: str = ""
    api_keys_file: Path | None = None
    metrics_require_key: bool = False
    max_concurrency: int | None = Field(None, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    drain_seconds: int = Field(25, ge=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServeSettings:
        """Read and validate the ``NIZAMI_*`` variables; errors name the variable."""
        raw = {field: environ[name] for name, field in ENV.items() if environ.get(name, "")}
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            names = {field: name for name, field in ENV.items()}
            problems = "; ".join(
                f"{names.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
                for err in e.errors()
            )
            raise ValueError(f"invalid serving settings: {problems}") from None

    def keys(self) -> list[str]:
        """All configured API keys, checked; the errors never contain a key."""
        found = [
            (f"NIZAMI_API_KEYS item {i}", key.strip())
            for i, key in enumerate(self.api_keys.split(","), start=1)
            if key.strip()
        ]
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise ValueError(f"NIZAMI_API_KEYS_FILE={self.api_keys_file}: {e}") from None
            found += [
                (f"{self.api_keys_file}:{n}", line.strip())
                for n, line in enumerate(lines, start=1)
                if line.strip() and not line.lstrip().startswith("#")
            ]
            if not any(src.startswith(str(self.api_keys_file)) for src, _ in found):
                raise ValueError(f"NIZAMI_API_KEYS_FILE={self.api_keys_file}: no key in it")
        for source, key in found:
            if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
                raise ValueError(
                    f"{source}: an API key must be at least {MIN_KEY_LENGTH} characters "
                    "without spaces"
                )
        return [key for _, key in found]


class Gate:
    """What the middleware and the service share: requests in flight and the draining flag."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False
        self.starting = False  # the application's start-up (the engine's) is running
        self.ending: Ending | None = None
        self._enders: set[asyncio.Future[Ending]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def drain(self) -> None:
        """Refuse new model requests from now on."""
        self.draining = True

    async def wait_idle(self) -> None:
        """Return once no model request is in flight."""
        await self._idle.wait()

    def end(self, ending: Ending) -> None:
        """End every model request in flight now, telling each client ``ending``."""
        self.ending = ending
        for waiter in self._enders:
            if not waiter.done():
                waiter.set_result(ending)

    async def wait_ended(self) -> Ending:
        """Return once :meth:`end` is called, with its ending."""
        if self.ending is not None:
            return self.ending
        waiter = asyncio.get_running_loop().create_future()
        self._enders.add(waiter)
        try:
            return await waiter
        finally:
            self._enders.discard(waiter)


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


class Guard:
    """ASGI middleware: keys, body limit, admission and draining (see the module docstring).

    Args:
        app: the BentoML application behind it.
        gate: shared with the service (draining, requests in flight).
        default_concurrency: ``max_concurrency`` when ``NIZAMI_MAX_CONCURRENCY`` is not set.
        settings: defaults to :meth:`ServeSettings.from_env`, read when the worker starts.
    """

    def __init__(
        self,
        app: ASGIApp,
        gate: Gate,
        default_concurrency: int,
        settings: ServeSettings | None = None,
    ) -> None:
        self.app, self.gate = app, gate
        self.settings = settings or ServeSettings.from_env()
        self.limit = self.settings.max_concurrency or default_concurrency
        self._keys = [_digest(key) for key in self.settings.keys()]
        if not self._keys:
            log.warning(
                "no API key configured (NIZAMI_API_KEYS or NIZAMI_API_KEYS_FILE): this service "
                "is UNAUTHENTICATED, anyone who reaches its port can use the model"
            )
        else:
            log.info("API keys: %d configured; /metrics open: %s", len(self._keys),
                     not self.settings.metrics_require_key)  # fmt: skip
        log.info("at most %d model requests in flight, bodies up to %d bytes, %d s to drain",
                 self.limit, self.settings.max_body_bytes, self.settings.drain_seconds)  # fmt: skip

    def _open(self, path: str) -> bool:
        return path in PROBES or (path == "/metrics" and not self.settings.metrics_require_key)

    def _authorized(self, scope: Scope) -> bool | None:
        """True for a valid key, False for a wrong one, None when none was sent."""
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        presented = _digest(token.strip())
        return any([hmac.compare_digest(presented, key) for key in self._keys])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(scope, receive, send)
        if scope["type"] == "http" and self.gate.starting:
            return await openai_error(
                503, "The model is still loading; retry in a few seconds.", "server_error",
                "model_loading", {"Retry-After": "5"},
            )(send)  # fmt: skip
        if scope["type"] == "websocket" and self._keys and not self._authorized(scope):
            return await send({"type": "websocket.close", "code": 1008})  # the server says 403
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self._keys and not self._open(path) and not (ok := self._authorized(scope)):
            message = (
                "Incorrect API key provided." if ok is False else
                "You didn't provide an API key. Send it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY)."
            )  # fmt: skip
            code = "invalid_api_key" if ok is False else None
            bearer = {"WWW-Authenticate": "Bearer"}
            return await openai_error(401, message, "invalid_request_error", code, bearer)(send)
        if scope["method"] == "POST" and path.startswith(("/v1/", "/generate")):
            return await self._model_request(scope, receive, send)
        return await self.app(scope, receive, Exchange(send) if path.startswith("/v1/") else send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's start-up in the background (see the module docstring), its shutdown as is."""
        events: asyncio.Queue[Message] = asyncio.Queue()
        outcome: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def app_send(message: Message) -> None:
            if message["type"].startswith("lifespan.startup"):
                self.gate.starting = False
                outcome.set_result(message)
            else:
                await send(message)  # the shutdown's outcome

        await events.put(await receive())  # lifespan.startup
        self.gate.starting = True
        app = asyncio.ensure_future(self.app(scope, events.get, app_send))
        app.add_done_callback(lambda _: outcome.done() or outcome.set_result({"type": "none"}))
        await send({"type": "lifespan.startup.complete"})
        outcome.add_done_callback(_exit_if_failed)
        message = await receive()  # lifespan.shutdown
        if not outcome.done():  # stopped while starting: nothing to drain
            log.warning("stopping during start-up: the engine's start is abandoned")
            app.cancel()
            _kill_children()
            return await send({"type": "lifespan.shutdown.complete"})
        await events.put(message)
        await app

    async def _model_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        retry = {"Retry-After": "1"}
        if self.gate.draining:
            headers = retry | {"Connection": "close"}
            return await openai_error(
                503, "The server is shutting down; retry on another instance.",
                "server_shutting_down", "server_shutting_down", headers,
            )(send)  # fmt: skip
        if self.gate.in_flight >= self.limit:
            return await openai_error(
                429, f"Too many requests in flight (limit {self.limit}); retry shortly.",
                "requests", "rate_limit_exceeded", retry,
            )(send)  # fmt: skip
        self.gate.enter()
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return await openai_error(
                    413, f"Request body over {self.settings.max_body_bytes} bytes.",
                    "invalid_request_error", "request_too_large",
                )(send)  # fmt: skip
            if (problem := not_a_json_object(body)) is not None:
                return await openai_error(
                    400, problem, "invalid_request_error", "invalid_json"
                )(send)  # fmt: skip
            await self._relay(scope, body, receive, send)
        finally:
            self.gate.leave()

    async def _relay(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """The app answers; a client that goes away or :meth:`Gate.end` cancels its work."""
        exchange, gone = Exchange(send), asyncio.Event()
        app = asyncio.ensure_future(self.app(scope, _replay(body, gone.wait), exchange))
        left = asyncio.ensure_future(receive())  # after the body, only a disconnect comes
        ended = asyncio.ensure_future(self.gate.wait_ended())
        try:
            await asyncio.wait({app, left, ended}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # uvicorn gave up on this request: so does the app
            app.cancel()
            raise
        finally:
            client_gone, ending = left.done(), ended.result() if ended.done() else None
            left.cancel(), ended.cancel()  # fmt: skip
        gone.set()  # a started stream stops on its own and BentoML's proxy closes its upstream
        if not app.done() and exchange.started:
            await asyncio.wait({app}, timeout=STOP_S)
        app.cancel()  # else (waiting for vLLM's answer) cancelled: aiohttp closes the connection
        with contextlib.suppress(asyncio.CancelledError):
            await app  # either way vLLM sees its client go and aborts the request
        failure = None if app.cancelled() else app.exception()
        if failure is not None:
            log.error("model request %s failed: %r", scope["path"], failure)
        if ending is not None and not client_gone:
            await exchange.fail(ending)
        elif failure is not None and not client_gone:
            await exchange.fail(failed(type(failure).__name__))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to be over the limit."""
        limit = self.settings.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, gone: Callable[[], Awaitable[Any]]) -> Receive:
    """A ``receive`` that gives the buffered body once, then a disconnect once ``gone()``."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone()
        return {"type": "http.disconnect"}

    return replayed


def _exit_if_failed(outcome: asyncio.Future[Message]) -> None:
    """Exit with status 3 (uvicorn's) when the application's start-up failed."""
    message = outcome.result()
    if message["type"] != "lifespan.startup.complete":
        log.error("start-up failed (%s): exiting with status 3", message.get("message") or
                  "the application stopped")  # fmt: skip
        _kill_children()
        logging.shutdown()
        os._exit(3)


def _kill_children() -> None:
    """SIGKILL this process's children and their process groups (the engine's, see service)."""
    for child in psutil.Process().children():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, 9)
            child.kill()
