"""bench/eval_throughput.py builds its shape models with bench/train_throughput.py's builder."""

import sys

from helpers import ROOT


def test_eval_bench_builds_a_shape_model_with_random_weights():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import eval_throughput
    finally:
        sys.path.remove(str(ROOT / "bench"))
    model, tokenizer, label = eval_throughput.model_and_tokenizer("smollm2-135m", "float32")
    assert label == "smollm2-135m (random weights)"
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.config._attn_implementation == "sdpa"
    assert tokenizer("Salam, dünya!")["input_ids"]


def test_the_serving_bench_stops_its_servers_on_sigterm_and_ctrl_c(tmp_path):
    """bench/serve_throughput.py's ``running``: the server it started (its own session) is
    stopped when the bench gets SIGTERM or SIGINT, even with a second signal right after."""
    import signal
    import subprocess
    import time

    script = tmp_path / "bench_stub.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        "import serve_throughput as b\n"
        "b.stop_on_sigterm()\n"
        "port = b._free_port()\n"
        "server = [sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1']\n"
        "with b.running(server, {}, f'http://127.0.0.1:{port}/', b.Path(sys.argv[1])):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    for first in (signal.SIGTERM, signal.SIGINT):
        log = tmp_path / f"server-{first.name}.log"
        bench = subprocess.Popen(  # SIGINT as in a terminal, also where CI's shell ignores it
            [sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            assert bench.stdout.readline().strip() == "ready"
            server = next(p for p in _children(bench.pid))
            bench.send_signal(first)
            time.sleep(0.05)
            bench.send_signal(signal.SIGINT)  # impatient: a second one
            bench.wait(timeout=60)
            deadline = time.monotonic() + 10
            while _alive(server) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _alive(server), f"the server (pid {server}) outlived {first.name}"
        finally:
            if bench.poll() is None:
                bench.kill()


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _bench_module(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_the_qwen3_1_7b_shape_has_qwen3_1_7bs_parameter_count():
    """28 layers of 50.336 M (q, o 2048x2048; k, v 2048x1024; MLP 3 x 2048x6144; norms) plus
    the 151,936 x 2048 embedding, tied with the lm_head: 1.72 B (2.03 B if untied)."""
    import torch
    from transformers import AutoModelForCausalLM

    train_throughput = _bench_module("train_throughput")
    decode_profile = _bench_module("decode_profile")
    config = train_throughput.shape_config("qwen3-1.7b")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    layer = 2 * 2048 * 2048 + 2 * 2048 * 1024 + 3 * 2048 * 6144 + 2 * 128 + 2 * 2048
    embedding = 151_936 * 2048
    assert model.lm_head.weight is model.model.embed_tokens.weight
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == 28 * layer + embedding + 2048 == 1_720_574_976
    non_embedding = parameters - embedding
    per_token = decode_profile.flops_per_token(non_embedding, 2048, 151_936)
    assert per_token == 2 * non_embedding + 2 * embedding == 3_441_149_952  # 3.44 GFLOP
    shapes = decode_profile.decode_gemm_shapes(config)  # the matrix products of one token
    matrices = 28 * (layer - 2 * 128 - 2 * 2048) + embedding
    assert sum(n * k * count for n, k, count in shapes) == matrices


def test_the_window_counts_only_tokens_arriving_inside_it():
    bench = _bench_module("serve_throughput")
    # arrivals at 1, 2, 3, 4 s carrying 1, 3, 4, 6 tokens in all (two chunks held 2 tokens)
    record = {"start": 0.5, "end": 4.5, "arrivals": [1.0, 2.0, 3.0, 4.0], "counts": [1, 3, 4, 6]}
    assert bench.tokens_in_window(record, 1.5, 3.5) == 2 + 1  # the arrivals at 2 s and 3 s
    assert bench.tokens_in_window(record, 0.0, 10.0) == 6
    assert bench.tokens_in_window(record, 4.5, 10.0) == 0
    assert bench.tokens_in_window(record, 1.0, 2.0) == 1  # [lo, hi): 2 s is outside

    before = {"start": 0.0, "end": None, "arrivals": [0.5, 2.5], "counts": [1, 9]}
    waiting = {"start": 2.0, "end": None, "arrivals": [], "counts": []}
    done = {"start": 1.2, "end": 3.0, "arrivals": [1.4, 2.0, 2.9], "counts": [1, 5, 10]}
    stats = bench.window_stats([record, before, waiting, done], 1.0, 3.5, concurrency=4)
    assert stats["output_tokens"] == 4 + 8 + 0 + 10
    assert stats["output_tok_s"] == round(22 / 2.5, 1)
    # started in the window: waiting (no token yet: TTFT censored) and done (timed)
    assert stats["requests_started"] == 2 and stats["ttft_censored"] == 1
    assert stats["requests_finished"] == 1 and stats["e2e_censored"] == 1
    assert stats["ttft_ms_median"] == 200.0 and stats["e2e_ms_median"] == 1800.0
    # per-token gaps inside the window: record 1->4 tokens over 1..3 s, done 1->10 over 1.5 s
    assert stats["itl_ms_median"] == round(1000 * max(2.0 / 3, 1.5 / 9), 1)
