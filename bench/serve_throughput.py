"""Serving throughput: our bento (BentoML + vLLM) against the seed's design, same model.

Baseline: bench/seed_server.py, a FastAPI app calling transformers ``generate`` one request at a
time (streaming, so TTFT and inter-token latency can be measured). Candidate: the CPU bento
built by ``bento/build.py`` on the same weights, ``bentoml serve`` from the serving venv,
``/v1/chat/completions`` with ``stream: true``. Both get the same prompts (questions from the
held-out data), greedy, exactly ``--max-tokens`` output tokens each (EOS ignored), at
concurrency 1, 8 and 32; ``--rounds`` requests per client (at least 2 requests) per level, so
all ``c`` requests of a level are in flight together. The baseline serves one request at a
time: its tokens/s does not depend on ``c``, its TTFT grows with the queue.

  python bench/serve_throughput.py                       # SmolLM2-135M-Instruct (the demo's)
  python bench/serve_throughput.py --model-dir <merged>  # e.g. a model saved by make demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVE_VENV = ROOT / ".venv-serve"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], health: str, log: Path):
    """Start a server, wait for ``health`` to answer 200, stop it afterwards."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(2)
        else:
            raise RuntimeError(f"{health} not ready:\n{log.read_text()[-3000:]}")
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def one_request(http: httpx.AsyncClient, arm: str, prompt: str, max_tokens: int) -> dict:
    """Stream one completion; returns its start, chunk arrival times and output tokens."""
    if arm == "baseline":
        path, body = "/generate_stream", {"prompt": prompt, "max_tokens": max_tokens}
        body["ignore_eos"] = True
    else:
        path = "/v1/chat/completions"
        body = {
            "model": "nizami-1.7b", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True},
        }  # fmt: skip
    start, arrivals, tokens = time.perf_counter(), [], max_tokens
    async with http.stream("POST", path, json=body) as reply:
        reply.raise_for_status()
        async for chunk in reply.aiter_text():
            if arm == "baseline":
                arrivals.append(time.perf_counter())
                continue
            for line in chunk.splitlines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
                if event.get("choices"):
                    delta = event["choices"][0]["delta"]
                    if delta.get("content") or delta.get("reasoning"):
                        arrivals.append(time.perf_counter())
    return {"start": start, "arrivals": arrivals, "tokens": tokens}


async def level(base: str, arm: str, prompts: list[str], concurrency: int, max_tokens: int):
    queue = list(prompts)
    results: list[dict] = []

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            results.append(await one_request(http, arm, queue.pop(), max_tokens))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=1800, limits=limits) as http:
        await one_request(http, arm, prompts[0], 4)  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ttft = [r["arrivals"][0] - r["start"] for r in results]
    itl = [
        (r["arrivals"][-1] - r["arrivals"][0]) / (r["tokens"] - 1)
        for r in results if r["tokens"] > 1
    ]  # fmt: skip
    tokens = sum(r["tokens"] for r in results)
    return {
        "concurrency": concurrency, "requests": len(results), "output_tokens": tokens,
        "wall_s": round(wall, 2), "output_tok_s": round(tokens / wall, 1),
        "ttft_ms_median": round(1000 * statistics.median(ttft), 1),
        "ttft_ms_p99": round(1000 * max(ttft), 1),
        "itl_ms_median": round(1000 * statistics.median(itl), 2),
    }  # fmt: skip


def measure(
    base: str, arm: str, questions: list[str], levels: list[int], max_tokens: int, rounds: int
) -> list[dict]:
    out = []
    for c in levels:
        prompts = [questions[i % len(questions)] for i in range(max(2, rounds * c))]
        out.append(asyncio.run(level(base, arm, prompts, c, max_tokens)))
        print(f"  {arm:9s} c={c:<3d} {out[-1]}", flush=True)
    return out


def model_dir(cli) -> Path:
    if cli.model_dir:
        return Path(cli.model_dir)
    from steps.core.config import load_config
    from steps.core.modeling import resolve_base_model

    return resolve_base_model(load_config(ROOT / "pipelines" / "configs" / "demo.yaml").base_model)


def held_out_questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "data" / "nizami.jsonl").open(encoding="utf-8")]
    return [r["question"] for r in rows[-n:]]


def build_candidate(model: Path, home: Path, cli) -> str:
    os.environ["BENTOML_HOME"] = str(home)
    from bento.build import build_bento, save_model

    tag = save_model(model, "nizami-bench", {}, {})
    args = {"dtype": cli.dtype, "max_model_len": 2048, "kv_cache_gib": 2}
    return build_bento("nizami-bench-cpu", tag, {}, variant="cpu", engine_args=args)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a model directory (default: the demo's base model)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="requests per client per level")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--dtype", default="float32", help="AVX2-only CPUs have no bf16 units")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(),
        help="compute threads of each arm (torch threads; vLLM's OpenMP cores 0..n-1)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    cli = parser.parse_args()
    levels = [int(c) for c in cli.levels.split(",")]
    model = model_dir(cli)
    questions = held_out_questions(64)
    work = Path(tempfile.mkdtemp(prefix="nizami-serve-bench-"))
    bento = build_candidate(model, work / "bentoml", cli)
    size = sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**20
    print(f"machine   {cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"model     {model} ({size:.0f} MiB safetensors), {cli.dtype}, "
          f"{cli.max_tokens} output tokens/request, EOS ignored, greedy, "
          f"{cli.threads} compute thread(s) per arm")  # fmt: skip
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    port = _free_port()
    seed = [sys.executable, str(ROOT / "bench" / "seed_server.py"), "--model", str(model),
            "--port", str(port), "--dtype", cli.dtype, "--threads", str(cli.threads)]  # fmt: skip
    with running(seed, env, f"http://127.0.0.1:{port}/health", work / "seed.log"):
        baseline = measure(f"http://127.0.0.1:{port}", "baseline", questions, levels,
                           cli.max_tokens, cli.rounds)  # fmt: skip
    port = _free_port()
    serve = [str(SERVE_VENV / "bin" / "bentoml"), "serve", bento, "--host", "127.0.0.1",
             "--port", str(port)]  # fmt: skip
    env |= {
        "NIZAMI_ENGINE_PORT": str(_free_port()),
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{cli.threads - 1}" if cli.threads > 1 else "0",
    }
    with running(serve, env, f"http://127.0.0.1:{port}/readyz", work / "bento.log"):
        candidate = measure(f"http://127.0.0.1:{port}", "candidate", questions, levels,
                            cli.max_tokens, cli.rounds)  # fmt: skip
    print("\nconcurrency | baseline tok/s | candidate tok/s | ratio | TTFT ms (b / c) "
          "| ITL ms (b / c)")  # fmt: skip
    for b, c in zip(baseline, candidate, strict=True):
        ratio = c["output_tok_s"] / b["output_tok_s"]
        print(f"{b['concurrency']:>11} | {b['output_tok_s']:>14} | {c['output_tok_s']:>15} | "
              f"{ratio:>4.2f}x | {b['ttft_ms_median']:>7} / {c['ttft_ms_median']:<7} | "
              f"{b['itl_ms_median']:>5} / {c['itl_ms_median']}")  # fmt: skip
    if cli.json:
        cli.json.write_text(json.dumps({"baseline": baseline, "candidate": candidate}, indent=2))


if __name__ == "__main__":
    main()
