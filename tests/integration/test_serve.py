"""The packaged bento served for real: BentoML supervising vLLM (CPU build, eager) on loopback.

A pipeline run on a tiny Qwen3 (head_dim 32: vLLM's CPU attention rejects the tests' usual 16)
builds the bentos; ``bentoml serve`` of the CPU bento runs from the serving environment
(``.venv-serve``, see the Makefile) as it does in the image: with an API key given at run time
and ``BENTOML_CONTAINERIZED`` set. The official ``openai`` client talks to it. The last test
kills the engine and ends the server. Overload, disconnects and draining:
tests/integration/test_serve_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from bento_server import MODEL, ROOT, needs_serve_venv, serve_bento

# 32 clients for LOAD_SECONDS (the example is 60 s; CI keeps the suite short).
LOAD_CLIENTS = 32
LOAD_SECONDS = float(os.environ.get("NIZAMI_LOAD_SECONDS", "20"))
KEY = "nz-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
# The engine's death is noticed in a few seconds, the supervisor then exits within its 10 s check.
ENGINE_DEATH_EXIT_S = 45
pytestmark = [pytest.mark.e2e, needs_serve_venv]


def _env() -> dict[str, str]:
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


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
def served(packaged, tmp_path_factory):
    """``bentoml serve <cpu bento>`` as in the image: a run-time API key, containerized."""
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    env = {"NIZAMI_API_KEYS": KEY, "BENTOML_CONTAINERIZED": "true"}
    with serve_bento(packaged["cpu_bento_tag"], log_path, **env) as served:
        yield served


@pytest.fixture(scope="module")
def server(served) -> str:
    return served.base


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key=KEY, timeout=120, max_retries=0)


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
        headers=AUTH, timeout=120,
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
    # each family once: Prometheus rejects a scrape that declares one twice
    types = Counter(line for line in metrics.text.splitlines() if line.startswith("# TYPE"))
    assert not [t for t, n in types.items() if n > 1]


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
        f"{server}{path}", content=content, headers=AUTH | {"Content-Type": "application/json"},
        timeout=120,
    )  # fmt: skip
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text)
    assert says.lower() in reply.text.lower(), reply.text
    ok = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Salam"}], max_tokens=2
    )
    assert ok.usage.completion_tokens == 2


def test_bounded_load_gives_no_5xx_and_the_server_stays_healthy(served, server):
    """32 concurrent clients for LOAD_SECONDS, streaming and not, chat and /generate."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []

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
            if reply.status_code >= 500:
                failures.append(f"{reply.request.url.path}: {reply.status_code} {reply.text}")

    async def load() -> None:
        stop_at = time.monotonic() + LOAD_SECONDS
        limits = httpx.Limits(max_connections=LOAD_CLIENTS)
        async with httpx.AsyncClient(
            base_url=server, timeout=120, limits=limits, headers=AUTH
        ) as http:
            await asyncio.gather(*(one_client(http, i, stop_at) for i in range(LOAD_CLIENTS)))

    asyncio.run(load())
    assert sum(statuses.values()) >= LOAD_CLIENTS
    assert not failures, (statuses, failures[:3], served.log()[-4000:])
    assert set(statuses) == {200}, statuses
    assert httpx.get(f"{server}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server}/readyz", timeout=10).status_code == 200


def test_the_openai_client_needs_the_key_and_the_probes_do_not(server, client):
    import openai

    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Salam"}], "max_tokens": 2}
    with pytest.raises(openai.AuthenticationError) as no_key:  # the header left out
        client.chat.completions.create(**chat, extra_headers={"Authorization": openai.Omit()})
    wrong = client.with_options(api_key="nz-wrong-key-0123456789abcdef")
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        wrong.chat.completions.create(**chat)
    for error, code in ((no_key.value, None), (wrong_key.value, "invalid_api_key")):
        assert error.status_code == 401 and error.code == code
        assert error.body["type"] == "invalid_request_error"
        assert set(error.body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert client.chat.completions.create(**chat).usage.completion_tokens == 2
    assert httpx.post(f"{server}/generate", json={"prompt": "x"}, timeout=30).status_code == 401
    for probe in ("/health", "/livez", "/readyz", "/metrics"):
        assert httpx.get(f"{server}{probe}", timeout=30).status_code == 200, probe


def test_the_key_never_reaches_the_log(served, client):
    client.completions.create(model=MODEL, prompt="Salam", max_tokens=2)
    assert "API keys: 1 configured" in served.log()
    assert KEY not in served.log()


def test_a_body_over_the_limit_is_413_and_never_reaches_the_engine(server):
    big = {"model": MODEL, "messages": [{"role": "user", "content": "a" * (2 << 20)}]}
    reply = httpx.post(f"{server}/v1/chat/completions", json=big, headers=AUTH, timeout=60)
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit is counted as the body arrives
        yield b'{"prompt": "'
        for _ in range(24):
            yield b"a" * 65536
        yield b'"}'

    reply = httpx.post(f"{server}/generate", content=chunked(), headers=AUTH, timeout=60)
    assert reply.status_code == 413, reply.text


def test_engine_death_stops_the_service_with_a_non_zero_status(served):
    """Last: kill the engine as the OOM killer would; the container's restart policy takes over.

    In the image (``BENTOML_CONTAINERIZED``) the worker exits 1 on the engine's death and the
    supervisor, which does not respawn it there, exits non-zero: ``docker run --restart
    on-failure`` or Kubernetes starts a fresh container (README, Serve).
    """
    tree = served.tree()
    engine = served.engine_core()
    killed_at = time.monotonic()
    engine.kill()
    status = served.proc.wait(timeout=ENGINE_DEATH_EXIT_S)
    took = time.monotonic() - killed_at
    assert status != 0, served.log()[-3000:]
    log = served.log()
    assert f"the vLLM engine core (process {engine.pid}) died" in log or "failed /health" in log
    assert "the vLLM engine exited with status 0" not in log  # the engine was killed: no 0
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [(p.pid, p.name()) for p in alive]
    print(f"engine killed: service exited with status {status} after {took:.1f} s")
