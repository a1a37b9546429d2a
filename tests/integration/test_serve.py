"""The packaged bento served for real: BentoML supervising vLLM (CPU build, eager) on loopback.

A pipeline run on a tiny Qwen3 (head_dim 32: vLLM's CPU attention rejects the tests' usual 16)
builds the bentos; ``bentoml serve`` of the CPU bento runs from the serving environment
(``.venv-serve``, see the Makefile), and the official ``openai`` client talks to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVE_VENV = Path(os.environ.get("NIZAMI_SERVE_VENV", ROOT / ".venv-serve"))
MODEL = "nizami-1.7b"
# 32 clients for LOAD_SECONDS (the example is 60 s; CI keeps the suite short).
LOAD_CLIENTS = 32
LOAD_SECONDS = float(os.environ.get("NIZAMI_LOAD_SECONDS", "20"))
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (SERVE_VENV / "bin" / "bentoml").exists(),
        reason=f"no serving environment at {SERVE_VENV} (make .venv-serve)",
    ),
]


def _env(**extra: str) -> dict[str, str]:
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"} | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """The package step's metadata from a pipeline run of the tiny model on the local stack."""
    out = tmp_path_factory.mktemp("serve-run")
    raw = yaml.safe_load((ROOT / "pipelines" / "configs" / "tiny.yaml").read_text())
    raw["model_name"] = "nizami-1.7b-serve"
    raw["base_model"]["tiny"]["head_dim"] = 32
    raw["package"]["bento_model"] = "nizami-1.7b-serve"
    raw["evaluation"] |= {"max_examples": 4, "max_new_tokens": 4}
    raw["output_dir"] = str(out)
    config = out / "tiny-serve.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    done = subprocess.run(
        ["bash", "stacks/register.sh", "local"], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from zenml.client import Client

    Client().activate_stack("local")
    from pipelines.training import training_pipeline

    run = training_pipeline.with_options(
        config_path=str(ROOT / "stacks" / "run-configs" / "local.yaml")
    )(config_path=str(config))
    run = Client().get_pipeline_run(run.id)
    assert run.status.value == "completed"
    return run.steps["package"].run_metadata


@pytest.fixture(scope="module")
def server(packaged, tmp_path_factory):
    """``bentoml serve <cpu bento>`` from the serving venv; yields its base URL."""
    port, engine_port = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(SERVE_VENV / "bin" / "bentoml"), "serve", packaged["cpu_bento_tag"],
             "--host", "127.0.0.1", "--port", str(port)],
            env=_env(NIZAMI_ENGINE_PORT=str(engine_port)),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log_path, timeout=600)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # circusd stops the worker, which stops vLLM
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_ready(base: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text()[-4000:]
            pytest.fail(f"bentoml serve exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
                return
        time.sleep(2)
    pytest.fail(f"not ready after {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key="unused", timeout=120, max_retries=0)


def test_the_bento_carries_the_merged_model_and_both_variants(packaged):
    import bentoml

    gpu, cpu = bentoml.get(packaged["bento_tag"]), bentoml.get(packaged["cpu_bento_tag"])
    assert [str(m.tag) for m in gpu.info.all_models] == [packaged["bento_model_tag"]]
    assert [str(m.tag) for m in cpu.info.all_models] == [packaged["bento_model_tag"]]
    assert gpu.info.args["device"] == "gpu" and cpu.info.args["device"] == "cpu"
    assert cpu.info.args["enforce_eager"] is True


def test_models_lists_the_served_name(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_chat_completion_with_the_openai_client(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Bakı nəyin paytaxtıdır?"}],
        max_tokens=8, temperature=0,
    )  # fmt: skip
    choice = reply.choices[0]
    assert reply.usage.completion_tokens == 8 and choice.finish_reason == "length"
    # The reasoning parser is on: an unfinished <think> block is reported as reasoning.
    text = (choice.message.content or "") + (getattr(choice.message, "reasoning", None) or "")
    assert text


def test_streaming_chat_and_completion(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Salam"}],
            max_tokens=6, temperature=0, stream=True,
        )
    )  # fmt: skip
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert len(deltas) >= 6
    assert any((d.content or getattr(d, "reasoning", None)) for d in deltas)
    completion = list(
        client.completions.create(
            model=MODEL, prompt="Bakı", max_tokens=5, temperature=0, stream=True
        )
    )
    assert sum(1 for c in completion if c.choices and c.choices[0].text) >= 1


def test_seed_generate_endpoint(server):
    reply = httpx.post(
        f"{server}/generate", json={"prompt": "Bakı nəyin paytaxtıdır?", "max_tokens": 8},
        timeout=120,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"text"} and reply.json()["text"]


def test_health_and_metrics(server, client):
    assert httpx.get(f"{server}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server}/livez", timeout=10).status_code == 200
    client.completions.create(model=MODEL, prompt="Salam", max_tokens=2)
    metrics = httpx.get(f"{server}/metrics", timeout=30)
    assert metrics.status_code == 200
    names = {line.split("{")[0].split(" ")[0] for line in metrics.text.splitlines()}
    assert "vllm:generation_tokens_total" in names
    assert "vllm:time_to_first_token_seconds_count" in names
    assert any(n.startswith("bentoml_service_request") for n in names)
    assert len([n for n in metrics.text.splitlines() if n.startswith("# TYPE process_")]) <= 8


CHAT = "/v1/chat/completions"


def _chat(**body) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Salam"}]} | body


BAD_REQUESTS = {
    "malformed json": (CHAT, b'{"model": "nizami-1.7b", "messages": [', "json"),
    "unknown model": (CHAT, _chat(model="gpt-4"), "does not exist"),
    "negative max_tokens": (CHAT, _chat(max_tokens=-5), "max_tokens"),
    "huge max_tokens": (CHAT, _chat(max_tokens=10**9), "max_tokens"),
    "empty messages": (CHAT, _chat(messages=[]), "empty"),
    "prompt over max_model_len": (
        "/v1/completions", {"model": MODEL, "prompt": "Bakı " * 6000, "max_tokens": 4},
        "maximum context length",
    ),
    "generate: empty prompt": ("/generate", {"prompt": ""}, "prompt"),
    "generate: malformed json": ("/generate", b'{"prompt": ', "json"),
    "generate: negative max_tokens": ("/generate", {"prompt": "x", "max_tokens": -1}, "max_tokens"),
    "generate: prompt over max_model_len": (
        "/generate", {"prompt": "Bakı " * 6000, "max_tokens": 4}, "maximum context length",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_a_4xx_that_says_why_and_the_server_keeps_serving(server, client, case):
    path, body, says = BAD_REQUESTS[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = httpx.post(
        f"{server}{path}", content=content, headers={"Content-Type": "application/json"},
        timeout=120,
    )  # fmt: skip
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text)
    assert says.lower() in reply.text.lower(), reply.text
    ok = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Salam"}], max_tokens=2
    )
    assert ok.usage.completion_tokens == 2


def test_bounded_load_gives_no_5xx_and_the_server_stays_healthy(server):
    """32 concurrent clients for LOAD_SECONDS, streaming and not, chat and /generate."""
    statuses: Counter[int] = Counter()

    async def one_client(http: httpx.AsyncClient, i: int, stop_at: float) -> None:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            if i % 4 == 0:
                reply = await http.post("/generate", json={"prompt": f"Sual {n}", "max_tokens": 16})
            else:
                body = _chat(max_tokens=16 + (n % 3) * 8, stream=i % 2 == 1)
                reply = await http.post(CHAT, json=body)
            statuses[reply.status_code] += 1

    async def load() -> None:
        stop_at = time.monotonic() + LOAD_SECONDS
        limits = httpx.Limits(max_connections=LOAD_CLIENTS)
        async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as http:
            await asyncio.gather(*(one_client(http, i, stop_at) for i in range(LOAD_CLIENTS)))

    asyncio.run(load())
    assert sum(statuses.values()) >= LOAD_CLIENTS
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) == {200}, statuses
    assert httpx.get(f"{server}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server}/readyz", timeout=10).status_code == 200
