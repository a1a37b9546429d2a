"""The image against the bento it holds: cold start and serving throughput, in one run.

Two arms on the same CPU bento (the demo's SmolLM2-135M-Instruct by default, fp32, the bench's
engine arguments from bench/serve_throughput.py):

- ``bento``: ``bentoml serve`` from the serving venv (``make serve``);
- ``image``: that bento's image, built by ``bento/image.py`` (what ``make image`` and the package
  step run) and started with the README's ``docker run`` flags, on the host's network and a
  loopback port (the project's network rule: never Docker's bridge).

Each arm is started, measured at every level (streamed chat completions at the held-out
answers' reference lengths, EOS ignored, greedy) and stopped, in the order bento, image, image,
bento (repeated for ``--passes`` > 4), so that drift on a shared machine falls on both arms
alike; each arm's median over its passes is compared, and every pass is printed.
Cold start: process start -> ``/health`` 200 (bento: ``bentoml serve``;
image: ``docker run``). Also printed: image size and build times (cold: no build cache for the
bento's layers; warm: the same build again).

  python bench/image_throughput.py                       # the demo's base model
  python bench/image_throughput.py --model-dir <merged> --json bench/results/image_cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import serve_throughput as st  # noqa: E402  (bench/ is not a package)

sys.path.insert(0, str(BENCH.parent))
from bento.container import run_container  # noqa: E402
from bento.engine import ensure_engine  # noqa: E402
from bento.image import make_image  # noqa: E402


def _wait_health(url: str, stopped, timeout: float = 900) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if stopped():
            raise RuntimeError(f"the server stopped before {url} answered")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s")


@contextmanager
def container(engine, image: str, cli):
    """``docker run`` of ``image`` as documented; yields (URL, seconds to /health 200)."""
    port = st._free_port()
    env = {
        "NIZAMI_MAX_CONCURRENCY": "1024",
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{cli.threads - 1}" if cli.threads > 1 else "0",
    }
    started = time.monotonic()
    name = run_container(engine, image, port, env)
    try:

        def stopped() -> bool:
            state = engine.run("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            return state != "true"

        _wait_health(f"http://127.0.0.1:{port}/health", stopped)
        yield f"http://127.0.0.1:{port}", time.monotonic() - started
    finally:
        engine.run("stop", name, timeout=120, check=False)
        engine.run("rm", "-f", name, check=False)


@contextmanager
def served(arm: str, bento: str, image: str, engine, cli, log: Path):
    if arm == "image":
        with container(engine, image, cli) as (url, startup):
            yield url, startup
    else:
        with st.bento_server(bento, cli, log) as (url, _, startup):
            yield url, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a model directory (default: the demo's base model)")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=1, help="requests per client per level")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--passes", type=int, default=4, help="server starts, ABBA order")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the engine's build cache first (docker builder prune)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    cli = parser.parse_args()
    levels = [int(c) for c in cli.levels.split(",")]
    model = st.model_dir(cli)
    pairs = st.held_out(model)
    work_dir = Path(tempfile.mkdtemp(prefix="nizami-image-bench-"))
    print(
        f"machine   {st.cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"model     {model}, {cli.dtype}, greedy, EOS ignored, reference lengths, "
        f"{cli.threads} compute thread(s)"
    )
    bento = st.build_candidate(model, work_dir / "bentoml", cli, "nizami-bench-image-cpu", {})
    engine = ensure_engine()
    builds = []
    if cli.cold:
        engine.run("builder", "prune", "-af", timeout=600)
    for attempt in ("cold" if cli.cold else "first", "again"):
        started = time.monotonic()
        result = make_image(bento, f"bench-{attempt}", context_root=work_dir / "contexts")
        builds.append(
            {
                "build": attempt,
                "seconds": round(time.monotonic() - started, 1),
                "size_bytes": result.size_bytes,
            }
        )
        print(
            f"build     {attempt}: {builds[-1]['seconds']} s, "
            f"{(result.size_bytes or 0) / 1e9:.2f} GB ({result.image_tags[0]})"
        )
    image = result.image_tags[0]
    runs: dict[str, dict[int, list[dict]]] = {"bento": {}, "image": {}}
    starts: dict[str, list[float]] = {"bento": [], "image": []}
    order = [("bento", "image", "image", "bento")[i % 4] for i in range(cli.passes)]
    for i, arm in enumerate(order):
        with served(arm, bento, image, engine, cli, work_dir / f"{arm}-{i}.log") as (url, start):
            starts[arm].append(round(start, 1))
            print(f"  {arm:5s} pass {i}: ready in {start:.1f} s", flush=True)
            for c in levels:
                result = asyncio.run(st.level(url, arm, st.workload(pairs, c, cli.rounds, None), c))
                runs[arm].setdefault(c, []).append(result)
                print(f"  {arm:5s} c={c:<3d} {result}", flush=True)
    print(f"\ncold start (run -> /health 200), s: bento {starts['bento']}, image {starts['image']}")
    print(
        "c | tok/s bento: median (passes) | tok/s image: median (passes) | image/bento | "
        "TTFT ms median (bento / image)"
    )
    table = []
    for c in levels:
        tok_s = {arm: [r["output_tok_s"] for r in runs[arm][c]] for arm in runs}
        ttft = {arm: statistics.median(r["ttft_ms_median"] for r in runs[arm][c]) for arm in runs}
        median = {arm: statistics.median(values) for arm, values in tok_s.items()}
        ratio = median["image"] / median["bento"]
        print(
            f"{c} | {median['bento']:.1f} {tok_s['bento']} | {median['image']:.1f} "
            f"{tok_s['image']} | {ratio:.3f}x | {ttft['bento']:.0f} / {ttft['image']:.0f}"
        )
        table.append(
            {
                "concurrency": c,
                "bento_tok_s": tok_s["bento"],
                "image_tok_s": tok_s["image"],
                "ratio_of_medians": round(ratio, 3),
            }
        )
    tags = [
        f"nizami-bench-image-cpu:{t}"
        for t in ("bench-cold", "bench-first", "bench-again", "latest")
    ]
    engine.run("rmi", *tags, check=False)
    if cli.json:
        cli.json.write_text(
            json.dumps(
                {"builds": builds, "starts": starts, "levels": table, "runs": runs}, indent=2
            )
        )


if __name__ == "__main__":
    main()
