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

  python bench/serve_throughput.py                       # SmolLM2-135M-Instruct (the demo's)
  python bench/serve_throughput.py --model-dir <merged>  # e.g. a model saved by make demo
  python bench/serve_throughput.py --tune --json bench/results/serve_tuning_cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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


async def one_request(http: httpx.AsyncClient, arm: str, prompt: str, max_tokens: int) -> dict:
    """Stream one completion; returns its start, end, chunk arrival times and output tokens."""
    if arm == "seed":
        path = "/generate_stream"
        body = {"prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
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
            if arm == "seed":
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
    return {"start": start, "end": time.perf_counter(), "arrivals": arrivals, "tokens": tokens}


def _ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
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
    itl = [(r["arrivals"][-1] - r["arrivals"][0]) / (r["tokens"] - 1)
           for r in results if r["tokens"] > 1 and len(r["arrivals"]) > 1]  # fmt: skip
    return {
        "concurrency": concurrency, "requests": len(results), "output_tokens": tokens,
        "wall_s": round(wall, 2), "output_tok_s": round(tokens / wall, 1),
        "ttft_ms_median": _ms([r["arrivals"][0] - r["start"] for r in results]),
        "ttft_ms_p99": _ms([r["arrivals"][0] - r["start"] for r in results], 0.99),
        "itl_ms_median": _ms(itl),
        "e2e_ms_median": _ms([r["end"] - r["start"] for r in results]),
        "e2e_ms_p99": _ms([r["end"] - r["start"] for r in results], 0.99),
    }  # fmt: skip


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
    if cli.model_dir:
        return Path(cli.model_dir)
    from steps.core.config import load_config
    from steps.core.modeling import resolve_base_model

    return resolve_base_model(load_config(ROOT / "pipelines" / "configs" / "demo.yaml").base_model)


_SAVED: dict[Path, str] = {}


def build_candidate(model: Path, home: Path, cli, name: str, extra: dict) -> str:
    """The CPU bento on ``model`` (saved into the store once per run) with ``extra`` args."""
    os.environ["BENTOML_HOME"] = str(home)
    from bento.build import build_bento, save_model

    tag = _SAVED.get(model) or _SAVED.setdefault(model, save_model(model, "nizami-bench", {}, {}))
    args = {"dtype": cli.dtype, "max_model_len": 2048, "kv_cache_gib": 2} | extra
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
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{cli.threads - 1}" if cli.threads > 1 else "0",
    }  # fmt: skip
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
                runs[arm].append(asyncio.run(level(urls[arm], arm, work, c)))
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
        rows.append(" | ".join([str(r[arms[0]]["concurrency"]), cells[0], *ratios, *cells[1:]]))
    return "\n".join(rows)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a model directory (default: the demo's base model)")
    parser.add_argument("--max-tokens", type=int, default=32, help="the fixed output length")
    parser.add_argument("--lengths", choices=["fixed", "references", "both"], default="both")
    parser.add_argument("--arms", default="seed,bento,direct")
    parser.add_argument("--rounds", type=int, default=1, help="requests per client per level")
    parser.add_argument("--repeats", type=int, default=3, help="runs of bento and direct per level")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--dtype", default="float32", help="AVX2-only CPUs have no bf16 units")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(),
        help="compute threads of each arm (torch threads; vLLM's OpenMP cores 0..n-1)",
    )  # fmt: skip
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
    model = model_dir(cli)
    pairs = held_out(model)
    work_dir = Path(tempfile.mkdtemp(prefix="nizami-serve-bench-"))
    size = sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**20
    lengths = sorted(n for _, n in pairs)
    print(f"machine   {cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"model     {model} ({size:.0f} MiB safetensors), {cli.dtype}, greedy, EOS "
          f"ignored, {cli.threads} compute thread(s) per server; engine args "
          f"{extra or 'as shipped'}")  # fmt: skip
    print(f"lengths   fixed {cli.max_tokens}; references: {len(lengths)} held-out answers, "
          f"median {statistics.median(lengths)}, min {lengths[0]}, max {lengths[-1]} "
          "tokens")  # fmt: skip
    if cli.tune:
        results = tune(model, pairs, work_dir, cli)
    else:
        results = run_arms(model, pairs, work_dir, cli, levels, arms, extra)
    if cli.json:
        cli.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work_dir / "bentoml", ignore_errors=True)  # the model copies
    print(f"server logs in {work_dir}")


def run_arms(model, pairs, work_dir, cli, levels, arms, extra) -> dict:
    modes = {"fixed": cli.max_tokens, "references": None}
    if cli.lengths != "both":
        modes = {cli.lengths: modes[cli.lengths]}
    results: dict[str, dict[str, list]] = {mode: {} for mode in modes}
    if "seed" in arms:
        port = _free_port()
        seed = [
            sys.executable, str(ROOT / "bench" / "seed_server.py"), "--model", str(model),
            "--port", str(port), "--dtype", cli.dtype, "--threads", str(cli.threads),
        ]  # fmt: skip
        env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
        with running(seed, env, f"http://127.0.0.1:{port}/health", work_dir / "seed.log"):
            for mode, fixed in modes.items():
                base = f"http://127.0.0.1:{port}"
                results[mode] |= measure({"seed": base}, pairs, levels, cli, fixed)
    served = [arm for arm in ("bento", "direct") if arm in arms]
    if served:
        bento = build_candidate(model, work_dir / "bentoml", cli, "nizami-bench-cpu", extra)
        with bento_server(bento, cli, work_dir / "bento.log") as (url, direct, startup):
            print(f"  bento ready in {startup:.0f} s")
            urls = {"bento": url, "direct": direct}
            for mode, fixed in modes.items():
                chosen = {arm: urls[arm] for arm in served}
                results[mode] |= measure(chosen, pairs, levels, cli, fixed)
    for mode in modes:
        print(table(f"{mode} output lengths", results[mode]))
    return results


if __name__ == "__main__":
    main()
