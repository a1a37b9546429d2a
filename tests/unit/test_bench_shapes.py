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
