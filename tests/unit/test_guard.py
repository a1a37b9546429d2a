"""The service's front door without a server: keys, body limit, admission, draining.

:class:`bento.guard.Guard` is plain ASGI, so these drive it with hand-made ASGI events and an
application that records what reaches it (the served bento is tested in
tests/integration/test_serve*.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bento.guard import Gate, Guard, ServeSettings
from bento.relay import ENGINE_GONE, SHUTTING_DOWN

KEY = "nz-test-0123456789abcdef"
OTHER = "nz-other-0123456789abcdef"


class Engine:
    """The application behind the guard: records requests, can hold them in flight."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        if self.hold and scope["method"] == "POST":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _guard(engine: Engine, gate: Gate | None = None, **settings) -> Guard:
    return Guard(engine, gate or Gate(), default_concurrency=4, settings=ServeSettings(**settings))


async def _call(guard, path="/v1/chat/completions", method="POST", body=b"{}", headers=None,
                chunks=None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw}
    parts = chunks if chunks is not None else [body]
    events = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
              for i, p in enumerate(parts)]  # fmt: skip
    sent: list[dict] = []

    async def receive():  # as uvicorn's: after the body, waits until the client goes away
        if events:
            return events.pop(0)
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    await guard(scope, receive, send)
    start = sent[0]
    heads = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], heads, b"".join(m.get("body", b"") for m in sent[1:])


def _run(coro):
    return asyncio.run(coro)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_keys_everything_passes_and_a_warning_says_so(caplog) -> None:
    engine = Engine()
    with caplog.at_level("WARNING", logger="bentoml.service.nizami"):
        guard = _guard(engine)
    assert "UNAUTHENTICATED" in caplog.text
    assert _run(_call(guard))[0] == 200
    assert _run(_call(guard, "/v1/models", "GET"))[0] == 200


def test_model_routes_need_a_valid_key_in_openais_error_shape() -> None:
    engine = Engine()
    guard = _guard(engine, api_keys=f"{KEY},{OTHER}")
    for path in ("/v1/chat/completions", "/v1/completions", "/generate"):
        status, heads, body = _run(_call(guard, path))
        error = json.loads(body)["error"]
        assert status == 401 and heads["www-authenticate"] == "Bearer"
        assert error["type"] == "invalid_request_error" and error["code"] is None
        assert set(error) == {"message", "type", "param", "code"}
    status, _, body = _run(_call(guard, headers=_bearer("nz-wrong-0123456789abcdef")))
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    assert _run(_call(guard, headers={"Authorization": KEY}))[0] == 401  # no "Bearer"
    assert _run(_call(guard, "/v1/models", "GET"))[0] == 401
    assert engine.bodies == []
    for key in (KEY, OTHER):
        assert _run(_call(guard, headers=_bearer(key)))[0] == 200
    assert _run(_call(guard, headers={"authorization": f"bearer  {KEY}"}))[0] == 200


def test_a_websocket_without_the_key_is_closed_before_it_opens() -> None:
    async def scenario(headers):
        sent, reached = [], []

        async def app(scope, receive, send):
            reached.append(scope["path"])

        async def send(message):
            sent.append(message)

        guard = Guard(app, Gate(), default_concurrency=4, settings=ServeSettings(api_keys=KEY))
        scope = {"type": "websocket", "path": "/v1/realtime", "headers": headers}
        await guard(scope, None, send)
        return sent, reached

    sent, reached = _run(scenario([]))
    assert sent == [{"type": "websocket.close", "code": 1008}] and reached == []
    sent, reached = _run(scenario([(b"authorization", f"Bearer {KEY}".encode())]))
    assert sent == [] and reached == ["/v1/realtime"]


def test_probes_stay_open_and_metrics_auth_is_a_setting() -> None:
    guard = _guard(Engine(), api_keys=KEY)
    for path in ("/health", "/livez", "/readyz", "/healthz", "/metrics"):
        assert _run(_call(guard, path, "GET"))[0] == 200, path
    locked = _guard(Engine(), api_keys=KEY, metrics_require_key=True)
    assert _run(_call(locked, "/metrics", "GET"))[0] == 401
    assert _run(_call(locked, "/metrics", "GET", headers=_bearer(KEY)))[0] == 200
    assert _run(_call(locked, "/readyz", "GET"))[0] == 200


def test_a_body_over_the_limit_is_413_declared_or_streamed() -> None:
    engine = Engine()
    guard = _guard(engine, max_body_bytes=2048)
    declared = {"Content-Length": "4096"}
    status, _, body = _run(_call(guard, headers=declared, body=b"x" * 4096))
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    assert _run(_call(guard, chunks=[b"x" * 1500, b"x" * 1500]))[0] == 413
    assert engine.bodies == []
    chunks = [b'{"a": "' + b"a" * 1000, b"b" * 1000 + b'"}']
    assert _run(_call(guard, chunks=chunks))[0] == 200
    assert engine.bodies == [b"".join(chunks)]  # the app reads the body it was sent


def test_past_the_limit_429_with_retry_after_at_once_and_the_slot_comes_back() -> None:
    async def scenario():
        engine, gate = Engine(), Gate()
        engine.hold = True
        guard = Guard(engine, gate, default_concurrency=2, settings=ServeSettings())
        held = [asyncio.create_task(_call(guard)) for _ in range(2)]
        while gate.in_flight < 2:
            await asyncio.sleep(0)
        status, heads, body = await asyncio.wait_for(_call(guard), timeout=1)
        assert status == 429 and heads["retry-after"] == "1"
        assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
        assert (await _call(guard, "/v1/models", "GET"))[0] != 429  # only model requests count
        engine.release.set()
        assert [r[0] for r in await asyncio.gather(*held)] == [200, 200]
        assert gate.in_flight == 0
        assert (await _call(guard))[0] == 200

    _run(scenario())


def test_draining_refuses_new_requests_and_waits_for_the_ones_in_flight() -> None:
    async def scenario():
        engine, gate = Engine(), Gate()
        engine.hold = True
        guard = Guard(engine, gate, default_concurrency=8, settings=ServeSettings())
        held = asyncio.create_task(_call(guard))
        while gate.in_flight < 1:
            await asyncio.sleep(0)
        gate.drain()
        status, heads, _ = await _call(guard)
        assert status == 503 and heads["retry-after"] == "1" and heads["connection"] == "close"
        idle = asyncio.create_task(gate.wait_idle())
        await asyncio.sleep(0.01)
        assert not idle.done()
        engine.release.set()
        assert (await held)[0] == 200
        await asyncio.wait_for(idle, timeout=1)

    _run(scenario())


def test_settings_come_from_the_environment_and_errors_name_the_variable(tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# rotated 2026-11\n{KEY}\n\n{OTHER}\n")
    settings = ServeSettings.from_env(
        {"NIZAMI_API_KEYS_FILE": str(keys), "NIZAMI_MAX_CONCURRENCY": "12",
         "NIZAMI_DRAIN_SECONDS": "40", "NIZAMI_METRICS_REQUIRE_KEY": "true"}
    )  # fmt: skip
    assert settings.keys() == [KEY, OTHER] and settings.max_concurrency == 12
    assert settings.drain_seconds == 40 and settings.metrics_require_key
    assert ServeSettings.from_env({}).keys() == []
    with pytest.raises(ValueError, match="NIZAMI_MAX_CONCURRENCY"):
        ServeSettings.from_env({"NIZAMI_MAX_CONCURRENCY": "lots"})
    with pytest.raises(ValueError, match="NIZAMI_DRAIN_SECONDS"):
        ServeSettings.from_env({"NIZAMI_DRAIN_SECONDS": "0"})


@pytest.mark.parametrize(
    ("env", "says", "secret"),
    [
        (
            {"NIZAMI_API_KEYS": "short-key"},
            "NIZAMI_API_KEYS item 1: an API key must be",
            "short-key",
        ),
        ({"NIZAMI_API_KEYS": f"{KEY},has space 0123456789"}, "NIZAMI_API_KEYS item 2", "has space"),
        (
            {"NIZAMI_API_KEYS_FILE": "/nonexistent/keys"},
            "NIZAMI_API_KEYS_FILE=/nonexistent/keys",
            KEY,
        ),
    ],
)
def test_bad_keys_are_rejected_without_echoing_them(env, says, secret) -> None:
    with pytest.raises(ValueError, match=says) as error:
        ServeSettings.from_env(env).keys()
    assert secret not in str(error.value)


def test_a_keys_file_error_names_its_line_and_an_empty_file_is_an_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY}\ntoo-short\n")
    with pytest.raises(ValueError, match=f"{keys}:2: an API key must be") as error:
        ServeSettings(api_keys_file=keys).keys()
    assert "too-short" not in str(error.value)
    keys.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match="no key in it"):
        ServeSettings(api_keys_file=keys).keys()


class Streamer:
    """An app that streams server-sent events until cancelled, or answers ``answer`` at once."""

    def __init__(self, answer: tuple[int, bytes, bytes] | None = None) -> None:
        self.answer, self.cancelled, self.started = answer, asyncio.Event(), asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        await receive()
        if self.answer is not None:
            status, kind, body = self.answer
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", kind)]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        head = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        try:
            while True:
                await send({"type": "http.response.body", "body": b'data: {"n": 1}\n\n',
                            "more_body": True})  # fmt: skip
                self.started.set()
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def _request(guard, events: list[dict], body=b"{}", path="/v1/chat/completions"):
    """A model request; ``events`` gets what the client receives; returns ``gone`` to leave."""
    gone = asyncio.Event()
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if incoming:
            return incoming.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        events.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    return asyncio.create_task(guard(scope, receive, send)), gone


def _body(events: list[dict]) -> bytes:
    return b"".join(m.get("body", b"") for m in events if m["type"] == "http.response.body")


def test_a_client_that_goes_away_cancels_its_request_streamed_or_not() -> None:
    async def scenario():
        for streamed in (False, True):  # waiting for a whole answer (BentoML's proxy); a stream
            marks, gate, events = Streamer(), Gate(), []
            guard = Guard(marks if streamed else _Waiting(marks), gate, 4, ServeSettings())
            task, gone = await _request(guard, events)
            await asyncio.wait_for(marks.started.wait(), 5)
            gone.set()  # the client times out and closes its connection
            await asyncio.wait_for(marks.cancelled.wait(), 5)
            await asyncio.wait_for(task, 5)
            assert gate.in_flight == 0

    _run(scenario())


class _Waiting:
    """An app that waits for its answer (as BentoML's proxy does for a non-streamed one)."""

    def __init__(self, marks: Streamer) -> None:
        self.marks = marks

    async def __call__(self, scope, receive, send) -> None:
        await receive()
        self.marks.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.marks.cancelled.set()
            raise


def test_at_the_end_of_the_grace_period_streams_get_an_error_event_and_the_rest_a_503() -> None:
    async def scenario():
        gate, streamer, waiter = Gate(), Streamer(), Streamer()
        streaming, waiting = [], []
        stream_task, _ = await _request(Guard(streamer, gate, 4, ServeSettings()), streaming)
        wait_task, _ = await _request(Guard(_Waiting(waiter), gate, 4, ServeSettings()), waiting)
        await asyncio.wait_for(asyncio.gather(streamer.started.wait(), waiter.started.wait()), 5)
        gate.end(SHUTTING_DOWN)
        await asyncio.wait_for(asyncio.gather(stream_task, wait_task), 5)
        assert streamer.cancelled.is_set() and waiter.cancelled.is_set()
        events = _body(streaming).decode().strip().split("\n\n")
        assert events[0] == 'data: {"n": 1}' and events[-1] == "data: [DONE]"
        error = json.loads(events[-2].removeprefix("data: "))["error"]
        assert error["code"] == "server_shutting_down" and set(error) == {
            "message", "type", "param", "code"}  # fmt: skip
        assert streaming[-1]["more_body"] is False
        assert waiting[0]["status"] == 503
        assert json.loads(_body(waiting))["error"]["code"] == "server_shutting_down"
        assert gate.in_flight == 0

    _run(scenario())


def test_while_the_application_starts_every_request_gets_503_with_retry_after_at_once() -> None:
    async def scenario():
        engine_up, sent, app_events = asyncio.Event(), [], asyncio.Queue()

        async def slow_start_app(scope, receive, send):
            if scope["type"] == "lifespan":  # BentoML: the engine starts inside the start-up
                await receive()
                await engine_up.wait()
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})
                return
            await Engine()(scope, receive, send)

        guard = Guard(slow_start_app, Gate(), 4, ServeSettings())
        await app_events.put({"type": "lifespan.startup"})

        async def lifespan_send(message):
            sent.append(message["type"])

        lifespan = asyncio.create_task(guard({"type": "lifespan"}, app_events.get, lifespan_send))
        for _ in range(100):  # 1 s
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == ["lifespan.startup.complete"]  # at once: the server starts answering
        for path in ("/v1/chat/completions", "/readyz"):
            status, heads, body = await asyncio.wait_for(_call(guard, path), 1)
            assert status == 503 and heads["retry-after"] == "5", (path, status)
            assert json.loads(body)["error"]["code"] == "model_loading"
        engine_up.set()
        await asyncio.sleep(0.05)
        assert (await asyncio.wait_for(_call(guard), 1))[0] == 200
        await app_events.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 1)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    _run(scenario())


VLLM_DEAD = (
    b'{"error": {"message": "EngineCore encountered an issue. See stack trace (above) '
    b'for the root cause.", "type": "InternalServerError", "param": null, "code": 500}}'
)


@pytest.mark.parametrize(
    "answer, status, code",
    [
        ((500, b"application/json", VLLM_DEAD), 503, "engine_unavailable"),
        ((503, b"text/plain", b"Upstream service unavailable."), 503, "engine_unavailable"),
        (
            (
                400,
                b"application/json",
                b'{"error": "1 validation error for Input", "detail": '
                b'[{"loc": ["prompt"], "msg": "too short"}]}',
            ),
            400,
            None,
        ),
    ],
    ids=["vllm engine dead", "proxy without engine", "bentoml's shape"],
)
def test_errors_reach_clients_in_openais_shape_with_a_message_they_can_act_on(
    answer, status, code
) -> None:
    got, heads, body = _run(_call(_guard(Streamer(answer))))
    error = json.loads(body)["error"]
    assert got == status and set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and "stack trace" not in error["message"], error
    if status == 503:
        assert heads["retry-after"] == str(ENGINE_GONE.retry_after_s)
    else:
        assert error["message"] == "prompt: too short"


def test_vllms_other_routes_answer_errors_in_openais_shape_too() -> None:
    plain = Streamer((503, b"text/plain", b"Upstream service unavailable."))
    status, _, body = _run(_call(_guard(plain), "/v1/models", "GET"))
    assert status == 503 and json.loads(body)["error"]["code"] == "engine_unavailable"


def test_vllms_engine_death_inside_a_stream_becomes_an_error_event_to_act_on() -> None:
    dead = b'data: {"n": 1}\n\ndata: ' + VLLM_DEAD + b"\n\ndata: [DONE]\n\n"
    _, _, body = _run(_call(_guard(Streamer((200, b"text/event-stream", dead)))))
    events = body.decode().strip().split("\n\n")
    assert events[0] == 'data: {"n": 1}' and events[-1] == "data: [DONE]"
    assert json.loads(events[1].removeprefix("data: "))["error"]["code"] == "engine_unavailable"
    assert "stack trace" not in body.decode()


@pytest.mark.parametrize("body, says", [(b'{"model": "m", "messages": [', "not valid JSON"),
                                        (b"[1, 2]", "must be a JSON object")])  # fmt: skip
def test_a_body_that_is_not_a_json_object_is_a_400_that_says_so(body, says) -> None:
    engine = Engine()
    status, _, answer = _run(_call(_guard(engine), body=body))
    error = json.loads(answer)["error"]
    assert status == 400 and error["code"] == "invalid_json" and says in error["message"]
    assert engine.bodies == []
