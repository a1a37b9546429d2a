"""``KaggleClient`` (the real kaggle client + timeouts and retries) against the emulator.

Each client behaviour is shown against what Kaggle does today: a dataset create retried after a
lost answer, a push whose data sources Kaggle refused, long slugs, GPU sessions counted from
one listing of one's own (private) kernels, ``CANCEL_REQUESTED`` not being final, a token
(Bearer) credential and a token of the wrong user, and the log arriving while the kernel runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from kaggle_emulator import KaggleEmulator
from kaggle_orchestrator.client import KaggleApiError, KaggleClient
from kaggle_orchestrator.credentials import Credentials, KaggleAuthError
from kaggle_orchestrator.follow import KernelFailedError, follow_kernel
from kaggle_orchestrator.kernel import KernelNames

USER, KEY, TOKEN = "nizami-ci", "client-test-key", "KGAT_client_test_token"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, kaggle_image):
    with KaggleEmulator(root=tmp_path_factory.mktemp("kaggle"), username=USER, key=KEY,
                        tokens={TOKEN: USER, "KGAT_other_user": "someone-else"},
                        python=kaggle_image, dataset_processing_s=0.5) as emu:
        yield emu


@pytest.fixture
def client(emulator):
    return KaggleClient(Credentials(USER, key=KEY), endpoint=emulator.url, timeout_s=10,
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
    code = "open('/kaggle/working/out.txt', 'w').write('done')\nprint('hello from the kernel')\n"
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


def test_a_resume_push_whose_answer_is_lost_keeps_every_version(client, emulator, tmp_path):
    """A 5xx after Kaggle accepted a push (a gateway timeout): the push is not repeated and
    nothing is deleted, so the failed version a resume needs is still there. Before, the
    client deleted the whole kernel before retrying."""
    first = client.push(_kernel_dir(tmp_path, "client-resume", "raise SystemExit(1)\n"),
                        "client-resume", 600)
    assert _until_done(client, f"{USER}/client-resume/{first}")[0] == "ERROR"
    saves = len(emulator.recording.calls("SaveKernel"))
    emulator.faults.http_error("SaveKernel", 502, served=True)  # carried out, answer lost
    again = tmp_path / "again"
    again.mkdir()
    second = client.push(_kernel_dir(again, "client-resume", "print('resumed')\n"),
                         "client-resume", 600)
    assert second == first + 1 and len(emulator.recording.calls("SaveKernel")) == saves + 1
    assert f"{USER}/client-resume" not in emulator.deleted_kernels
    assert _until_done(client, f"{USER}/client-resume/{second}")[0] == "COMPLETE"
    assert client.status(f"{USER}/client-resume/{first}")[0] == "ERROR"  # still there
    emulator.faults.http_error("SaveKernel", 500)  # refused before it was carried out
    third = client.push(_kernel_dir(tmp_path / "again", "client-resume-2", "print(3)\n"),
                        "client-resume-2", 600)
    assert third == 1 and f"{USER}/client-resume-2" not in emulator.deleted_kernels


def test_a_missing_kernel_is_answered_as_kaggle_does(client, emulator):
    """Kaggle answers a kernel that does not exist with 403 ("Permission 'kernels.get' was
    denied", which the official client turns into a ValueError), not 404."""
    with pytest.raises(KaggleApiError, match="was denied"):
        client.status(f"{USER}/no-such-kernel")
    assert client.current_version("no-such-kernel") is None
    client.delete("no-such-kernel", missing_ok=True)
    with pytest.raises(KaggleApiError):
        client.delete("no-such-kernel")


def test_transient_errors_are_retried_then_succeed(client, emulator):
    emulator.faults.rate_limit("GetAcceleratorQuotaStatistics", times=2, retry_after=1)
    emulator.faults.http_error("GetAcceleratorQuotaStatistics", 503, times=1)
    started = time.monotonic()
    assert client.gpu_quota()[0] > 0
    assert time.monotonic() - started >= 2  # Retry-After honoured twice
    assert emulator.faults.pending() == []


def test_retries_are_bounded_and_errors_name_the_call(client, emulator):
    emulator.faults.http_error("GetAcceleratorQuotaStatistics", 500, times=10)
    try:
        with pytest.raises(KaggleApiError, match="GetAcceleratorQuotaStatistics"):
            client.gpu_quota()
    finally:
        emulator.faults.clear()
    calls = emulator.recording.calls("GetAcceleratorQuotaStatistics")
    assert len(calls) >= 4


def test_wrong_key_is_not_retried(emulator):
    bad = KaggleClient(Credentials(USER, key="wrong"), endpoint=emulator.url, max_retries=3,
                       backoff_s=0.1)
    before = len(emulator.recording.calls("GetAcceleratorQuotaStatistics"))
    with pytest.raises(KaggleApiError):
        bad.gpu_quota()
    assert len(emulator.recording.calls("GetAcceleratorQuotaStatistics")) <= before + 1


def test_a_push_refused_with_200_error_is_an_error(client, emulator, tmp_path):
    emulator.faults.push_error("Kernel push error: Kernel not found")
    with pytest.raises(KaggleApiError, match="Kernel not found"):
        client.push(_kernel_dir(tmp_path, "client-refused", "print(1)\n"), "client-refused", 60)


def test_busy_gpu_sessions_are_counted_from_one_listing_of_private_kernels(client, emulator):
    left, reserved = client.gpu_quota()
    assert reserved == 0
    listed = len(emulator.recording.calls("ListKernels"))
    assert client.running_gpu_kernels(reserved) == []  # nothing reserved: not even a listing
    assert len(emulator.recording.calls("ListKernels")) == listed
    emulator.faults.occupy_gpu_sessions(2)  # private GPU kernels of the user, running
    try:
        left, reserved = client.gpu_quota()
        assert reserved > 0
        busy = client.running_gpu_kernels(reserved)
        sent = emulator.recording.calls("ListKernels")[-1].json()
    finally:
        for ref in client.running_gpu_kernels():
            client.delete(ref.split("/")[1], missing_ok=True)
        emulator.faults.clear()
    assert len(busy) == 2
    assert sent["group"] == "PROFILE"  # mine=True: a public listing would miss private kernels


def test_calls_time_out_instead_of_hanging(emulator):
    import socket

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


def test_ctrl_c_while_following_deletes_the_kernel(client, emulator, tmp_path):
    names, ref = _push_hanging(client, emulator, tmp_path, "client-ctrl-c")

    def interrupt(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow_kernel(client, names.kernel, ref, "url", 600, 1, wait=interrupt)
    assert f"{USER}/client-ctrl-c" in emulator.deleted_kernels


def test_following_streams_the_log_and_enforces_the_timeout(client, emulator, tmp_path, caplog):
    names, ref = _push_hanging(client, emulator, tmp_path, "client-timeout")
    # The 3 s timeout is for the following, not for the kernel's start (a Python 3.12
    # interpreter in a fresh namespace, slow on a loaded CI machine): wait for its first line.
    deadline = time.monotonic() + 120
    while "epoch 1" not in emulator.kernel_version(f"{USER}/client-timeout").log_text():
        assert time.monotonic() < deadline, "the hanging kernel never printed its first line"
        time.sleep(0.2)
    with caplog.at_level("INFO", logger="kaggle_orchestrator.follow"):
        with pytest.raises(KernelFailedError, match="timeout_s=3: deleted it"):
            follow_kernel(client, names.kernel, ref, "url", 3, 0.2)
    assert f"{USER}/client-timeout" in emulator.deleted_kernels
    streamed = [r.getMessage() for r in caplog.records if "[kaggle " in r.getMessage()]
    assert any("epoch 1" in m and "running" in m for m in streamed), streamed


def test_log_lines_arrive_live_while_the_kernel_runs_and_each_once(client, emulator, tmp_path,
                                                                   caplog):
    code = ("import time\n"
            "for i in range(4):\n"
            "    print(f'tick {i}', flush=True)\n"
            "    time.sleep(1.5)\n")
    slug = "client-live-log"
    version = client.push(_kernel_dir(tmp_path, slug, code), slug, 600)
    ref = f"{USER}/{slug}/{version}"
    with caplog.at_level("INFO", logger="kaggle_orchestrator.follow"):
        arrived = _follow_watching(client, emulator, slug, ref, 5.0)
    arrived = {line: status for line, status in arrived.items() if "tick" in line}
    assert list(arrived) == [f"tick {i}" for i in range(4)]
    # The poll interval is 5 s, so these came from the stream, while the session ran.
    assert arrived["tick 0"] == "RUNNING" and arrived["tick 2"] == "RUNNING", arrived
    lines = [r.getMessage() for r in caplog.records if "[kaggle " in r.getMessage()]
    assert sorted(m.split("] ")[1] for m in lines) == [f"tick {i}" for i in range(4)]  # once
    assert emulator.recording.calls("logs_stream")


def test_the_log_keeps_streaming_past_queued_and_idle_cut_offs(emulator, tmp_path, caplog):
    """The stream ends normally while the version is QUEUED (no session yet: the empty stored
    log) and is cut when the kernel prints nothing for longer than the client's read timeout.
    Neither is an error: the reader connects again, every line arrives while the session runs,
    once, and nothing falls back to polling. Before, the reader stopped for good at the first
    normal end, and the lines came only after the kernel had finished."""
    client = KaggleClient(Credentials(USER, key=KEY), endpoint=emulator.url, timeout_s=2,
                          max_retries=3, backoff_s=0.1)
    code = ("import time\nprint('early', flush=True)\ntime.sleep(5)\n"
            "print('late', flush=True)\ntime.sleep(2)\n")
    slug = "client-quiet-log"
    version = client.push(_kernel_dir(tmp_path, slug, code), slug, 600)
    ref = f"{USER}/{slug}/{version}"
    with caplog.at_level("INFO", logger="kaggle_orchestrator.follow"):
        arrived = _follow_watching(client, emulator, slug, ref, 20.0)
    assert arrived == {"early": "RUNNING", "late": "RUNNING"}, arrived  # streamed, not polled
    assert not [r for r in caplog.records if "log stream" in r.getMessage()]  # no error


def test_a_broken_log_stream_falls_back_to_polling(client, emulator, tmp_path, caplog):
    emulator.faults.http_error("logs_stream", 500, times=10)
    code = "print('line one')\nprint('line two')\n"
    slug = "client-no-stream"
    version = client.push(_kernel_dir(tmp_path, slug, code), slug, 600)
    try:
        with caplog.at_level("INFO", logger="kaggle_orchestrator.follow"):
            follow_kernel(client, slug, f"{USER}/{slug}/{version}", "url", 120, 0.2)
    finally:
        emulator.faults.clear()
    lines = [r.getMessage().split("] ")[1] for r in caplog.records if "[kaggle " in r.getMessage()]
    assert lines == ["line one", "line two"]


def test_cancel_requested_is_not_final(client, emulator, tmp_path):
    emulator.faults.kernel_cancel(after_s=1.0, ack_after_s=2.0)
    names, ref = _push_hanging(client, emulator, tmp_path, "client-cancelled")
    seen = []
    original = client.status

    def status(r):
        seen.append(original(r)[0])
        return seen[-1], ""

    client.status = status
    with pytest.raises(KernelFailedError, match="ended CANCEL_ACKNOWLEDGED"):
        follow_kernel(client, names.kernel, ref, "url", 60, 0.2)
    assert "CANCEL_REQUESTED" in seen and seen[-1] == "CANCEL_ACKNOWLEDGED"


def test_a_dataset_create_retried_after_a_lost_answer_becomes_a_version(emulator, tmp_path):
    slow = KaggleClient(Credentials(USER, key=KEY), endpoint=emulator.url, timeout_s=2,
                        max_retries=2, backoff_s=0.1)
    folder = tmp_path / "bundle-ds"
    folder.mkdir()
    (folder / "bundle.txt").write_text("ours")
    meta = {"title": "client-retried-bundle", "id": f"{USER}/client-retried-bundle",
            "licenses": [{"name": "other"}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    emulator.faults.slow_response("CreateDataset", seconds=4)  # created, answer never seen
    slow.create_dataset(folder)
    slow.wait_dataset_ready(f"{USER}/client-retried-bundle")
    dataset = emulator.state.dataset(USER, "client-retried-bundle")
    assert len(dataset.versions) == 2  # the lost create, then our files as a new version
    assert (dataset.latest.files_dir / "bundle.txt").read_text() == "ours"


def test_a_push_whose_data_sources_kaggle_refused_fails_and_is_deleted(client, emulator,
                                                                         tmp_path):
    folder = _kernel_dir(tmp_path, "client-bad-source", "print(1)\n")
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    meta["dataset_sources"] = [f"{USER}/no-such-dataset"]
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    with pytest.raises(KaggleApiError, match=f"dataset sources {USER}/no-such-dataset"):
        client.push(folder, "client-bad-source", 60)
    assert f"{USER}/client-bad-source" in emulator.deleted_kernels


def test_long_names_keep_within_kaggles_slug_limit(client, emulator, tmp_path):
    names = KernelNames.for_step_run("a-very-long-prefix-for-kernels-x", "evaluate_the_model_now",
                                     uuid.UUID(int=7))
    assert len(names.kernel) <= 50 and len(names.dataset) <= 50
    assert names.dataset.endswith(uuid.UUID(int=7).hex[:12] + "-bundle")
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    meta = {"title": names.dataset, "id": f"{USER}/{names.dataset}",
            "licenses": [{"name": "other"}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    client.create_dataset(folder)  # the real client refuses slugs over 50 characters


def test_token_credentials_and_a_token_of_another_user(emulator):
    by_token = KaggleClient(Credentials(None, token=TOKEN), endpoint=emulator.url)
    assert by_token.username == USER
    assert by_token.gpu_quota()[0] > 0
    sent = emulator.recording.calls("GetAcceleratorQuotaStatistics")[-1]
    assert sent.auth_scheme == "Bearer"
    with pytest.raises(KaggleAuthError, match="belongs to 'someone-else', not to the configured"):
        KaggleClient(Credentials(USER, token="KGAT_other_user"), endpoint=emulator.url)
    with pytest.raises(KaggleAuthError, match="not valid"):
        KaggleClient(Credentials(None, token="KGAT_revoked"), endpoint=emulator.url)


def _follow_watching(client, emulator, slug: str, ref: str, poll_s: float) -> dict[str, str]:
    """Follow ``ref`` to COMPLETE; each kernel line shown, with the kernel's status at the
    moment it reached the step log (RUNNING: it came from the stream, not a later poll)."""
    import logging

    arrived: dict[str, str] = {}

    class Watch(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "] " in message and "[kaggle " in message:
                arrived[message.split("] ")[1]] = emulator.kernel_version(
                    f"{USER}/{slug}").status.value

    watch = Watch()
    logging.getLogger("kaggle_orchestrator.follow").addHandler(watch)
    try:
        assert follow_kernel(client, slug, ref, "url", 120, poll_s) == "COMPLETE"
    finally:
        logging.getLogger("kaggle_orchestrator.follow").removeHandler(watch)
    return arrived


def _dataset(client, tmp_path, slug: str, files: dict[str, str]) -> str:
    folder = tmp_path / slug
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    meta = {"title": slug, "id": f"{USER}/{slug}", "licenses": [{"name": "other"}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    client.create_dataset(folder)
    client.wait_dataset_ready(f"{USER}/{slug}")
    return f"{USER}/{slug}"


def test_a_kernel_whose_bundle_is_missing_fails_before_any_install(client, emulator, tmp_path):
    from kaggle_orchestrator import kernel

    other = _dataset(client, tmp_path, "client-other-data", {"weights.txt": "w"})
    names = KernelNames.for_step_run("nizami", "train", uuid.uuid4())
    folder = tmp_path / "kernel"
    folder.mkdir()
    pins = kernel.pinned_requirements(["zenml", "transformers", "peft"])
    (folder / "kernel.py").write_text(kernel.kernel_script(USER, names, pins))
    meta = kernel.kernel_metadata(USER, names, None, True)
    meta["dataset_sources"] = [other]  # the bundle is not attached
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    version = client.push(folder, names.kernel, 600)
    started = time.monotonic()
    with pytest.raises(KernelFailedError) as failed:
        follow_kernel(client, names.kernel, f"{USER}/{names.kernel}/{version}", "url", 120, 0.2)
    assert time.monotonic() - started < 30
    message = str(failed.value)
    assert f"the bundle dataset {USER}/{names.dataset} is not attached" in message
    assert f"/kaggle/input holds: datasets/{USER}/client-other-data/weights.txt" in message
    assert "installing" not in emulator.kernel_version(f"{USER}/{names.kernel}").log_text()


def test_make_kaggle_check_reports_what_the_first_gpu_run_needs(emulator, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = emulator.client_env(home=tmp_path / "home")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        env.pop(name)
    env |= {"KAGGLE_API_TOKEN": TOKEN,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    pushes = len(emulator.recording.calls("SaveKernel"))
    done = subprocess.run(["make", "-s", "kaggle-check", f"KAGGLE_ENDPOINT={emulator.url}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"authenticated as {USER} with a API token from KAGGLE_API_TOKEN" in out
    assert "GPU quota left this week: 30.0 h; GPU sessions running: 0" in out
    assert "Python            3.12" in out
    assert "image transformers 5.0.0" in out and "image torch       2.13.0" in out
    assert f"bundle mounted at /kaggle/input/datasets/{USER}/nizami-check-" in out
    assert "internet          on" in out
    assert "transformers==5.24.0" in out and "imports           ok" in out
    saves = emulator.recording.calls("SaveKernel")[pushes:]
    assert len(saves) == 1 and saves[0].json().get("enableGpu") is False  # no GPU quota
    slug = saves[0].json()["slug"].split("/")[1]
    assert f"{USER}/{slug}" in emulator.deleted_kernels  # it cleaned up after itself
    assert not [d for d in emulator.state.datasets if d[1].startswith("nizami-check-")]
    # The token reaches Kaggle only where the protocol sends it: the Authorization header (not
    # recorded) and the body of IntrospectToken; no kernel source, dataset or log holds it.
    carrying = {r.method for r in emulator.recording.requests if TOKEN in r.text}
    assert carrying == {"IntrospectToken"}
    assert not [h for h in emulator.recording.find(TOKEN) if "IntrospectToken" not in h]


def test_make_kaggle_clean_lists_then_removes_the_projects_leftovers(client, emulator,
                                                                      tmp_path):
    """A failed step's kernel and bundle dataset, a running kernel and someone else's kernel:
    ``make kaggle-clean`` lists the project's; ``YES=1`` deletes them but stops no running
    kernel, and leaves what is not the project's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    names = KernelNames.for_step_run("nizami", "train", uuid.uuid4())
    done_ref = f"{USER}/{names.kernel}"
    failed = client.push(_kernel_dir(tmp_path, names.kernel, "raise SystemExit(1)\n"),
                         names.kernel, 600)
    assert _until_done(client, f"{done_ref}/{failed}")[0] == "ERROR"
    running = KernelNames.for_step_run("nizami", "train", uuid.uuid4()).kernel
    emulator.faults.kernel_hang(times=1, slug=running)
    client.push(_kernel_dir(tmp_path, running, "print(1)\n"), running, 600)
    emulator.wait(f"{USER}/{running}", until={"RUNNING"})
    client.push(_kernel_dir(tmp_path, "someone-elses", "print(1)\n"), "someone-elses", 600)
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "bundle.tar.gz").write_bytes(b"")
    (folder / "dataset-metadata.json").write_text(json.dumps({
        "title": names.dataset, "id": f"{USER}/{names.dataset}", "licenses": [{"name": "other"}]
    }))
    client.create_dataset(folder)
    root = Path(__file__).resolve().parents[2]
    env = emulator.client_env(home=tmp_path / "home") | {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def clean(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "-s", "kaggle-clean", f"KAGGLE_ENDPOINT={emulator.url}",
                               *extra], cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)

    listed = clean()
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"kernel   {done_ref}  ERROR" in listed.stdout
    assert f"kernel   {USER}/{running}  RUNNING" in listed.stdout
    assert f"dataset  {USER}/{names.dataset}" in listed.stdout
    assert "someone-elses" not in listed.stdout and "--yes" in listed.stdout
    assert done_ref not in emulator.deleted_kernels  # listing deletes nothing
    removed = clean("YES=1")
    assert removed.returncode != 0  # the running kernel is left, and said so
    assert f"deleted kernel   {done_ref}" in removed.stdout
    assert f"deleted dataset  {USER}/{names.dataset}" in removed.stdout
    assert f"{USER}/{running}  RUNNING (running: --include-running stops it)" in removed.stdout
    assert done_ref in emulator.deleted_kernels
    assert f"{USER}/{running}" not in emulator.deleted_kernels
    assert f"{USER}/someone-elses" not in emulator.deleted_kernels
    client.delete(running)
