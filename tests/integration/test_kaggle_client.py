"""``KaggleClient`` (the real kaggle client + timeouts and retries) against the emulator."""

from __future__ import annotations

import json
import time

import pytest

from kaggle_orchestrator.client import Credentials, KaggleApiError, KaggleClient
from kaggle_orchestrator.emulator import KaggleEmulator

USER, KEY = "nizami-ci", "client-test-key"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with KaggleEmulator(root=tmp_path_factory.mktemp("kaggle"), username=USER, key=KEY) as emu:
        yield emu


@pytest.fixture
def client(emulator):
    return KaggleClient(Credentials(USER, KEY), endpoint=emulator.url, timeout_s=10,
                        max_retries=3, backoff_s=0.1)


def _kernel_dir(tmp_path, slug: str, code: str, gpu: bool = False):
    folder = tmp_path / slug
    folder.mkdir()
    (folder / "kernel.py").write_text(code)
    meta = {"id": f"{USER}/{slug}", "title": slug, "code_file": "kernel.py",
            "language": "python", "kernel_type": "script", "is_private": True,
            "enable_gpu": gpu, "enable_internet": False}
    if gpu:
        meta["machine_shape"] = "NvidiaTeslaT4"
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    return folder


def _until_done(client, ref, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, failure = client.status(ref)
        if status in ("COMPLETE", "ERROR"):
            return status, failure
        time.sleep(0.2)
    raise TimeoutError(ref)


def test_push_status_log_output_delete(client, emulator, tmp_path):
    code = (
        "import os\n"
        "root = os.environ.get('NIZAMI_KAGGLE_ROOT', '/kaggle')\n"
        "open(os.path.join(root, 'working', 'out.txt'), 'w').write('done')\n"
        "print('hello from the kernel')\n"
    )
    version = client.push(_kernel_dir(tmp_path, "client-happy", code), "client-happy", 600)
    assert version == 1
    ref = f"{USER}/client-happy/{version}"
    assert _until_done(client, ref) == ("COMPLETE", "")
    files = client.download_output(ref, tmp_path / "out")
    assert (tmp_path / "out" / "out.txt").read_text() == "done"
    assert any(f.endswith("out.txt") for f in files)
    assert "hello from the kernel" in client.log(ref)
    client.delete("client-happy")
    assert f"{USER}/client-happy" in emulator.deleted_kernels
    client.delete("client-happy", missing_ok=True)  # already gone: fine


def test_transient_errors_are_retried_then_succeed(client, emulator):
    emulator.faults.rate_limit("GetAcceleratorQuotaStatistics", times=2, retry_after=1)
    emulator.faults.http_error("GetAcceleratorQuotaStatistics", 503, times=1)
    started = time.monotonic()
    assert client.gpu_quota_left_s() > 0
    assert time.monotonic() - started >= 2  # Retry-After honoured twice
    assert emulator.faults.pending() == []


def test_retries_are_bounded_and_errors_name_the_call(client, emulator):
    emulator.faults.http_error("GetAcceleratorQuotaStatistics", 500, times=10)
    try:
        with pytest.raises(KaggleApiError, match="GetAcceleratorQuotaStatistics"):
            client.gpu_quota_left_s()
    finally:
        emulator.faults.clear()
    calls = emulator.recording.calls("GetAcceleratorQuotaStatistics")
    assert len(calls) >= 4


def test_wrong_key_is_not_retried(emulator):
    bad = KaggleClient(Credentials(USER, "wrong"), endpoint=emulator.url, max_retries=3,
                       backoff_s=0.1)
    before = len(emulator.recording.calls("GetAcceleratorQuotaStatistics"))
    with pytest.raises(KaggleApiError):
        bad.gpu_quota_left_s()
    assert len(emulator.recording.calls("GetAcceleratorQuotaStatistics")) <= before + 1


def test_a_push_refused_with_200_error_is_an_error(client, emulator, tmp_path):
    emulator.faults.push_error("Kernel push error: Kernel not found")
    with pytest.raises(KaggleApiError, match="Kernel not found"):
        client.push(_kernel_dir(tmp_path, "client-refused", "print(1)\n"), "client-refused", 60)


def test_busy_gpu_sessions_are_counted(client, emulator):
    emulator.faults.occupy_gpu_sessions(2)
    try:
        busy = client.running_gpu_kernels()
    finally:
        for ref in client.running_gpu_kernels():
            client.delete(ref.split("/")[1], missing_ok=True)
        emulator.faults.clear()
    assert len(busy) == 2


def test_calls_time_out_instead_of_hanging(emulator):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers
    port = listener.getsockname()[1]
    client = KaggleClient(Credentials(USER, KEY), endpoint=f"http://127.0.0.1:{port}",
                          timeout_s=1, max_retries=1, backoff_s=0.1)
    started = time.monotonic()
    with pytest.raises(KaggleApiError, match="GetKernelSessionStatus"):
        client.status(f"{USER}/any-kernel")
    assert time.monotonic() - started < 10
    threading.Thread(target=listener.close).start()


def _push_hanging(client, emulator, tmp_path, slug):
    from kaggle_orchestrator.kernel import KernelNames

    code = "import time\nprint('epoch 1', flush=True)\ntime.sleep(600)\n"
    version = client.push(_kernel_dir(tmp_path, slug, code), slug, 600)
    return KernelNames(kernel=slug, dataset=f"{slug}-bundle"), f"{USER}/{slug}/{version}"


def test_ctrl_c_while_following_deletes_the_kernel(client, emulator, tmp_path, monkeypatch):
    from kaggle_orchestrator import standalone
    from kaggle_orchestrator.flavor import KaggleStepOperatorSettings

    names, ref = _push_hanging(client, emulator, tmp_path, "client-ctrl-c")

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(standalone, "_sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        standalone.follow_kernel(client, names, ref, "url", KaggleStepOperatorSettings())
    assert f"{USER}/client-ctrl-c" in emulator.deleted_kernels


def test_following_streams_the_log_and_enforces_the_timeout(client, emulator, tmp_path, caplog):
    from kaggle_orchestrator import standalone
    from kaggle_orchestrator.flavor import KaggleStepOperatorSettings

    names, ref = _push_hanging(client, emulator, tmp_path, "client-timeout")
    settings = KaggleStepOperatorSettings(timeout_s=3, poll_interval_s=0.2)
    with caplog.at_level("INFO", logger="kaggle_orchestrator.standalone"):
        with pytest.raises(standalone.KernelFailedError, match="timeout_s=3: deleted it"):
            standalone.follow_kernel(client, names, ref, "url", settings)
    assert f"{USER}/client-timeout" in emulator.deleted_kernels
    streamed = [r.getMessage() for r in caplog.records if "[kaggle " in r.getMessage()]
    assert any("epoch 1" in m and "running" in m for m in streamed), streamed
