"""One model request between the client and the app behind the guard, and how it may end.

:class:`Exchange` is the ``send`` the app gets for a model request. It passes the answer on,
and on the way:

- **rewrites errors** a user cannot act on into OpenAI's shape (``{"error": {message, type,
  param, code}}``): vLLM's ``EngineCore encountered an issue. See stack trace (above)...``
  (a 500, or an error event inside a stream), BentoML's ``{"error": "..."}`` of ``/generate``
  and the proxy's plain-text 503 when the engine does not answer;
- can **end the request early** (:meth:`Exchange.fail`): an OpenAI error before the answer
  started, an error event then ``[DONE]`` inside a stream. The guard does so when the drain's
  grace period is over or the engine died, after cancelling the app's work on it.

:class:`Ending` is why the requests in flight are ended: what each client is told.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

# vLLM's message when its engine core died (vllm.v1.engine.exceptions.EngineDeadError).
ENGINE_DEAD = b"EngineCore encountered an issue"
RETRY_ENGINE_S = 5


def error_body(message: str, kind: str, code: str | None) -> bytes:
    """OpenAI's error object, as JSON."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})\
        .encode()  # fmt: skip


def openai_error(
    status: int, message: str, kind: str, code: str | None, headers: Mapping[str, str] | None = None
) -> Callable[[Send], Awaitable[None]]:
    """An ASGI response sender for ``{"error": {message, type, param, code}}`` (OpenAI's shape)."""
    body = error_body(message, kind, code)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def respond(send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    return respond


@dataclass(frozen=True)
class Ending:
    """Why a request is ended before its answer is complete, and what the client is told."""

    status: int
    message: str
    kind: str
    code: str | None
    retry_after_s: int

    def respond(self, send: Send) -> Awaitable[None]:
        return openai_error(self.status, self.message, self.kind, self.code,
                            {"Retry-After": str(self.retry_after_s)})(send)  # fmt: skip

    def event(self) -> bytes:
        return b"data: " + error_body(self.message, self.kind, self.code) + b"\n\n"


ENGINE_GONE = Ending(
    503, "The model engine stopped unexpectedly and the service is restarting it; retry the "
    f"request in {RETRY_ENGINE_S} seconds.", "server_error", "engine_unavailable", RETRY_ENGINE_S,
)  # fmt: skip
SHUTTING_DOWN = Ending(
    503, "The server shut down before this request finished (its grace period for requests in "
    "flight is over); retry it, on another instance if there is one.", "server_error",
    "server_shutting_down", 1,
)  # fmt: skip


def failed(what: str) -> Ending:
    """The ending of a request that failed inside the server with exception ``what``."""
    return Ending(500, f"The request failed inside the server ({what}); retry it.",
                  "server_error", None, 1)  # fmt: skip


ENGINE_DEAD_EVENT = re.compile(rb"data: [^\n]*" + re.escape(ENGINE_DEAD) + rb"[^\n]*")


def rewritten_error(status: int, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    """An error answer in OpenAI's shape, with a message a user can act on.

    Returns the status, the body and headers to add (``Retry-After`` when retrying helps).
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if ENGINE_DEAD in body or (status in (502, 503, 504) and error is None):
        gone = ENGINE_GONE
        return gone.status, error_body(gone.message, gone.kind, gone.code), \
            {"Retry-After": str(gone.retry_after_s)}  # fmt: skip
    if isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error):
        return status, body, {}  # vLLM's own, already in the shape
    if isinstance(error, dict):
        message = str(error.get("message") or body.decode(errors="replace"))
    elif isinstance(error, str):  # BentoML's {"error": "...", "detail": [pydantic's errors]}
        details = [d for d in parsed.get("detail") or [] if isinstance(d, dict)]
        message = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                            for d in details) or error  # fmt: skip
    else:
        message = body.decode(errors="replace").strip() or f"HTTP {status}"
    kind = "invalid_request_error" if status < 500 else "server_error"
    return status, error_body(message, kind, None), {}


def not_a_json_object(body: bytes) -> str | None:
    """What is wrong with a model request's body, or None for a JSON object."""
    try:
        parsed = json.loads(body)
    except ValueError as e:
        where = f" ({e.msg} at line {e.lineno} column {e.colno})" if hasattr(e, "msg") else ""
        return (f"The request body is not valid JSON{where}: send one JSON object, "
                "with Content-Type: application/json.")  # fmt: skip
    if not isinstance(parsed, dict):
        return f"The request body must be a JSON object, not a JSON {type(parsed).__name__}."
    return None


class Exchange:
    """The app's ``send`` for one model request (see the module docstring)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False  # the client has the status line
        self.streaming = False
        self.done = False  # the client has the whole answer
        self._held: Message | None = None  # an error answer's start, sent once rewritten
        self._chunks: list[bytes] = []
        self._pending = b""  # a stream's event not complete yet

    async def __call__(self, message: Message) -> None:
        if self.done:
            return
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            self.streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            if message["status"] >= 400 and not self.streaming:
                self._held = message
                return
            self.started = True
            await self._send(message)
            return
        body, more = message.get("body", b""), message.get("more_body", False)
        if self._held is not None:
            self._chunks.append(body)
            if not more:
                await self._send_rewritten(self._held, b"".join(self._chunks))
            return
        if self.streaming:
            body = self._events(body, more)
        await self._send({"type": "http.response.body", "body": body, "more_body": more})
        self.done = not more

    def _events(self, body: bytes, more: bool) -> bytes:
        """The complete events so far, vLLM's engine-death error replaced (rest kept back)."""
        data = self._pending + body
        end = data.rfind(b"\n\n")
        cut = (end + 2 if end >= 0 else 0) if more else len(data)
        ready, self._pending = data[:cut], data[cut:]
        if ENGINE_DEAD in ready:
            ready = ENGINE_DEAD_EVENT.sub(ENGINE_GONE.event().rstrip(b"\n"), ready)
        return ready

    async def _send_rewritten(self, start: Message, body: bytes) -> None:
        status, body, extra = rewritten_error(start["status"], body)
        keep = [(k, v) for k, v in start.get("headers", [])
                if k.lower() not in (b"content-length", b"content-type")]  # fmt: skip
        keep += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        keep += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": keep})
        await self._send({"type": "http.response.body", "body": body})
        self.done = True

    async def fail(self, ending: Ending) -> None:
        """End the answer now with ``ending``: an error response, or an error event if streaming."""
        if self.done:
            return
        self.done = True
        if not self.started:
            await ending.respond(self._send)
        elif self.streaming:
            tail = self._pending + ending.event() + b"data: [DONE]\n\n"
            await self._send({"type": "http.response.body", "body": tail, "more_body": False})
        else:  # a plain answer half sent (not one vLLM makes): it can only be cut short
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
