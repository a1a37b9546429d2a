"""Overload, disconnects and SIGTERM draining of the served CPU bento, for real.

The bento is built in code on a tiny random Qwen3 (no pipeline run) and served with
``NIZAMI_MAX_CONCURRENCY=3`` and no API key. The last test sends SIGTERM, as ``docker stop``
does, and ends the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import httpx
import psutil
import pytest
from bento_server import MODEL, needs_serve_venv, serve_bento

LIMIT = 3
DRAIN_S = 60
pytestmark = [pytest.mark.e2e, needs_serve_venv]
CHAT = "/v1/chat/completions"


def _chat(max_tokens: int, **more) -> dict:
    return {
        "model": MODEL, "messages": [{"role": "user", "content": "Salam"}],
        "max_tokens": max_tokens, "temperature": 0, **more,
    }  # fmt: skip


def _long_stream(max_tokens: int) -> dict:
    return _chat(max_tokens, ignore_eos=True, stream=True, stream_options={"include_usage": True})


@pytest.fixture(scope="module")
def bento_tag(tmp_path_factory) -> str:
    from bento.build import build_bento, save_model
    from steps.core.config import TinyModelConfig
    from steps.core.modeling import build_tiny_qwen3

    model_dir = tmp_path_factory.mktemp("tiny-serve-model")
    build_tiny_qwen3(TinyModelConfig(head_dim=32), model_dir)
    model_tag = save_model(model_dir, "nizami-lifecycle", {}, {})
    return build_bento("nizami-lifecycle-cpu", model_tag, {}, variant="cpu")


@pytest.fixture(scope="module")
def served(bento_tag, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("lifecycle-log") / "serve.log"
    env = {"NIZAMI_MAX_CONCURRENCY": str(LIMIT), "NIZAMI_DRAIN_SECONDS": str(DRAIN_S)}
    with serve_bento(bento_tag, log_path, **env) as served:
        yield served


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout} s"
        time.sleep(0.25)


def test_without_a_key_it_serves_and_warns_that_it_is_open(served):
    assert "UNAUTHENTICATED" in served.log()
    reply = httpx.post(f"{served.base}{CHAT}", json=_chat(2), timeout=60)
    assert reply.status_code == 200, reply.text


def test_past_the_limit_429_with_retry_after_at_once_and_disconnects_free_the_engine(served):
    import openai

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=served.base, timeout=120) as http:
            held = []
            for _ in range(LIMIT):  # streams that would run for minutes: in flight until closed
                stream = http.stream("POST", CHAT, json=_long_stream(3000))
                reply = await stream.__aenter__()
                assert reply.status_code == 200
                held.append((stream, reply.aiter_lines()))  # one reader each, kept to the end
            await asyncio.to_thread(
                _wait_for, lambda: served.metric("vllm:num_requests_running") == LIMIT, 30,
                f"{LIMIT} running requests",
            )  # fmt: skip
            started = time.perf_counter()
            extra = await asyncio.gather(
                *(http.post(CHAT, json=_chat(4)) for _ in range(4)),
                *(http.post("/generate", json={"prompt": "Salam"}) for _ in range(2)),
            )
            took = time.perf_counter() - started
            # The official client's view of the same 429, while the streams are surely still
            # running (a tiny model generates fast: the held streams do end after a while).
            client = openai.OpenAI(base_url=f"{served.base}/v1", api_key="x", max_retries=0)
            with pytest.raises(openai.RateLimitError) as limited:
                await asyncio.to_thread(client.completions.create, model=MODEL, prompt="x")
            assert limited.value.response.headers["retry-after"] == "1"
            assert [r.status_code for r in extra] == [429] * 6, [r.text for r in extra]
            assert all(r.headers["retry-after"] == "1" for r in extra)
            assert extra[0].json()["error"]["code"] == "rate_limit_exceeded"
            assert took < 2.0, f"429s took {took:.2f} s"
            for _, lines in held:  # the accepted ones keep streaming, with no error
                line = await anext(lines)
                assert line.startswith("data: {") and "error" not in line
            for stream, _ in held:  # the clients go away mid-stream
                await stream.__aexit__(None, None, None)

    asyncio.run(scenario())
    _wait_for(lambda: served.metric("vllm:num_requests_running") == 0, 15, "sequences freed")
    generated = served.metric("vllm:generation_tokens_total")
    time.sleep(1.5)
    assert served.metric("vllm:generation_tokens_total") == generated  # nothing runs on
    reply = httpx.post(f"{served.base}{CHAT}", json=_chat(4), timeout=60)
    assert reply.status_code == 200  # the slots came back


def test_a_burst_gets_answers_or_429s_and_never_a_5xx(served):
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.base, timeout=120) as http:
            return await asyncio.gather(*(http.post(CHAT, json=_chat(8)) for _ in range(12)))

    replies = asyncio.run(burst())
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    for reply in replies:
        if reply.status_code == 200:  # every accepted request was answered in full
            assert reply.json()["usage"]["completion_tokens"] <= 8
            assert reply.json()["choices"][0]["finish_reason"] in {"length", "stop"}


def _stream_to_the_end(base: str, max_tokens: int, out: dict, first: threading.Event) -> None:
    try:
        with httpx.stream("POST", f"{base}{CHAT}", json=_long_stream(max_tokens), timeout=300) as r:
            out["status"] = r.status_code
            for line in r.iter_lines():
                first.set()
                if line.startswith("data: {"):
                    usage = json.loads(line[6:]).get("usage")
                    out["tokens"] = usage["completion_tokens"] if usage else out.get("tokens")
                out["last"] = line or out.get("last")
    except httpx.HTTPError as e:
        out["error"] = repr(e)
    finally:
        first.set()


def test_sigterm_drains_the_requests_in_flight_then_the_whole_tree_exits(served):
    """Last: SIGTERM to the supervisor (``docker stop``) with two answers half-way."""
    tree = served.tree()
    assert any("EngineCor" in p.name() for p in tree)  # VLLM::EngineCore, cut to 15
    results = [{}, {}]
    started = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=_stream_to_the_end, args=(served.base, 400, out, first))
        for out, first in zip(results, started, strict=True)
    ]
    for thread in threads:
        thread.start()
    for first in started:
        assert first.wait(60)
    signalled = time.monotonic()
    os.kill(served.proc.pid, signal.SIGTERM)
    _wait_for(
        lambda: httpx.get(f"{served.base}/readyz", timeout=5).status_code == 503, 5,
        "readiness false",
    )  # fmt: skip
    refused = httpx.post(f"{served.base}{CHAT}", json=_chat(2), timeout=10)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.headers["connection"] == "close"
    assert httpx.get(f"{served.base}/livez", timeout=5).status_code == 200  # draining, not dead
    for thread in threads:
        thread.join(timeout=DRAIN_S)
    for out in results:  # in flight at SIGTERM: answered in full
        assert out.get("status") == 200 and "error" not in out, out
        assert out["tokens"] == 400 and out["last"] == "data: [DONE]", out
    served.proc.wait(timeout=DRAIN_S + 30)
    took = time.monotonic() - signalled
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [(p.pid, p.name()) for p in alive]
    assert "SIGTERM: not ready any more" in served.log()
    print(f"drained and exited {took:.1f} s after SIGTERM, status {served.proc.returncode}")
