"""The real kaggle client against the local Kaggle emulator (``kaggle_emulator``).

The ``kaggle`` CLI runs as a subprocess pointed at the emulator by ``client_env`` (Kaggle's own
``KAGGLE_API_ENVIRONMENT=LOCALHOST`` dev mode, with the LOCAL endpoint moved by a
``sitecustomize`` hook); in-process checks use ``KaggleApi`` with ``--local`` and the endpoint
table patched. Kernels run on a Python 3.12 environment prepared like Kaggle's image, at the
real ``/kaggle`` paths. Shown here: a notebook written like any Kaggle notebook (walks
``/kaggle/input``, writes ``/kaggle/working``) pushed, run and fetched through the CLI, with a
dataset created and versioned with the CLI and mounted at ``/kaggle/input/datasets/<owner>/
<slug>``; datasets processing before they are ready; internet off means no network; each fault
as the client sees it; 401 on a wrong key, a Bearer token accepted; a sandbox that inherits no
secret; the recording a leak scan uses; the ``kaggle_data`` DVC stage downloading an emulated
dataset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from kaggle_emulator import KaggleEmulator, Status
from steps.core.data.examples import read_examples

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USER, KEY = "tester", "emulator-test-key"
SECRETS = {
    "HF_TOKEN": "hf_emulatorLeakCanary0001",
    "WANDB_API_KEY": "wandbLeakCanary0002",
    "KAGGLE_KEY": KEY,
}

# Code written like any Kaggle notebook: Kaggle's starter cell, then work on /kaggle paths.
NOTEBOOK_CELLS = [
    """import os
for dirname, _, filenames in os.walk('/kaggle/input'):
    for filename in filenames:
        print(os.path.join(dirname, filename))""",
    """import json, sys, pathlib
inputs = sorted(str(p.relative_to('/kaggle/input'))
                for p in pathlib.Path('/kaggle/input').rglob('*') if p.is_file())
os.makedirs('/kaggle/working/out', exist_ok=True)
with open('/kaggle/working/out.txt', 'w') as f:
    f.write(open('/kaggle/input/datasets/tester/payload-data/greeting.txt').read())
json.dump({"inputs": inputs, "cwd": os.getcwd(), "python": sys.version_info[:2]},
          open('/kaggle/working/out/result.json', 'w'))
json.dump(dict(os.environ), open('/kaggle/working/env.json', 'w'))
for name in inputs:
    print('input', name, open('/kaggle/input/' + name).read().strip())
print('done', file=sys.stderr)""",
]
# A plain script kernel: reports its environment and what it sees.
KERNEL_SCRIPT = """\
import json, os, pathlib
inputs = sorted(str(p) for p in pathlib.Path('/kaggle/input').rglob('*') if p.is_file())
json.dump({"env": dict(os.environ), "inputs": inputs}, open('/kaggle/working/env.json', 'w'))
print('hello from', os.getcwd())
"""


def notebook(cells: list[str]) -> str:
    """An .ipynb as Kaggle's editor saves it (code cells only)."""
    return json.dumps({
        "cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [],
                   "execution_count": None} for c in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4, "nbformat_minor": 4,
    })


def write_kernel(folder: Path, slug: str, source: str = KERNEL_SCRIPT, **metadata: object) -> Path:
    """A kernel folder as ``kaggle kernels push -p`` reads it (a notebook if ``source`` is one)."""
    folder.mkdir(parents=True, exist_ok=True)
    is_notebook = source.lstrip().startswith("{")
    code_file = "notebook.ipynb" if is_notebook else "run.py"
    (folder / code_file).write_text(source)
    meta = {
        "id": f"{USER}/{slug}",
        "title": slug.replace("-", " "),
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook" if is_notebook else "script",
        "is_private": True,
        "enable_gpu": False,
        "enable_internet": False,
        **metadata,
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    return folder


def write_dataset(folder: Path, slug: str, files: dict[str, str]) -> Path:
    """A dataset folder as ``kaggle datasets create/version -p`` reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    meta = {
        "title": slug.replace("-", " "),
        "id": f"{USER}/{slug}",
        "licenses": [{"name": "CC0-1.0"}],
    }
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    return folder


TOKEN = "KGAT_emulator_test_token"


@pytest.fixture
def emulator(tmp_path: Path, kaggle_image: str) -> Iterator[KaggleEmulator]:
    with KaggleEmulator(root=tmp_path / "emulator", username=USER, key=KEY, python=kaggle_image,
                        tokens={TOKEN: USER}, dataset_processing_s=3.0) as emu:
        yield emu


def kaggle_cli(
    emu: KaggleEmulator, tmp_path: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``kaggle`` CLI against the emulator, with a throwaway HOME and TMPDIR."""
    env = emu.client_env(home=tmp_path / "home")
    env["TMPDIR"] = str(tmp_path / "home")  # the client keeps upload state in $TMPDIR
    if key is not None:
        env["KAGGLE_KEY"] = key
    return subprocess.run(
        [str(BIN / "kaggle"), *args], env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def api(emulator: KaggleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An in-process ``KaggleApi`` talking to the emulator (env set before ``import kaggle``)."""
    home = tmp_path / "api-home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("TMPDIR", str(home))
    from kaggle.api.kaggle_api_extended import KaggleApi
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    monkeypatch.setitem(_env_to_endpoint, KaggleEnv.LOCAL, emulator.url)
    monkeypatch.setattr(KaggleApi, "args", ["--local"])
    monkeypatch.setattr(KaggleApi, "config_dir", str(home / ".kaggle"))
    monkeypatch.setattr(KaggleApi, "config", str(home / ".kaggle" / "kaggle.json"))
    client = KaggleApi()
    client.authenticate()
    return client


def _status(response: object) -> int:
    return response.status_code  # type: ignore[attr-defined]


# --- the real CLI: push, status, output; datasets attached as inputs ------------------------


def _wait_ready(emulator: KaggleEmulator, tmp_path: Path, ref: str) -> list[str]:
    """Poll ``kaggle datasets status`` until ready; returns every status it printed."""
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = kaggle_cli(emulator, tmp_path, "datasets", "status", ref)
        assert status.returncode == 0, status.stdout + status.stderr
        seen.append(status.stdout.strip())
        if seen[-1] == "ready":
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{ref} never became ready: {seen}")


def test_a_kaggle_notebook_runs_unchanged_through_the_cli(
    emulator: KaggleEmulator, tmp_path: Path
) -> None:
    data = write_dataset(tmp_path / "ds", "payload-data", {"greeting.txt": "salam v1"})
    created = kaggle_cli(emulator, tmp_path, "datasets", "create", "-p", str(data))
    assert created.returncode == 0, created.stdout + created.stderr
    # A new dataset is processed first, as on Kaggle: asked on the wire at once (a CLI process
    # may take longer to start than the processing lasts on a busy machine).
    first = httpx.post(f"{emulator.url}/api/v1/datasets.DatasetApiService/GetDatasetStatus",
                       json={"ownerSlug": USER, "datasetSlug": "payload-data"}, auth=(USER, KEY),
                       timeout=30)
    assert first.status_code == 200 and first.json()["status"].upper() != "READY", first.text
    statuses = _wait_ready(emulator, tmp_path, f"{USER}/payload-data")
    assert statuses[-1] == "ready"
    (data / "greeting.txt").write_text("salam v2")
    (data / "code").mkdir()
    (data / "code" / "module.py").write_text("VALUE = 2")
    versioned = kaggle_cli(
        emulator, tmp_path, "datasets", "version", "-p", str(data), "-m", "v2", "--dir-mode", "zip"
    )
    assert versioned.returncode == 0, versioned.stdout + versioned.stderr
    _wait_ready(emulator, tmp_path, f"{USER}/payload-data")

    folder = write_kernel(tmp_path / "kernel", "train-step-kernel", source=notebook(NOTEBOOK_CELLS),
                          dataset_sources=[f"{USER}/payload-data"])
    pushed = kaggle_cli(emulator, tmp_path, "kernels", "push", "-p", str(folder))
    assert "Kernel version 1 successfully pushed" in pushed.stdout, pushed.stdout + pushed.stderr

    ref = f"{USER}/train-step-kernel"
    deadline = time.monotonic() + 120
    while True:
        shown = kaggle_cli(emulator, tmp_path, "kernels", "status", ref)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        if "COMPLETE" in shown.stdout or "ERROR" in shown.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert 'has status "KernelWorkerStatus.COMPLETE"' in shown.stdout, (
        shown.stdout + emulator.kernel_version(ref).log_text()
    )

    out = tmp_path / "out"
    fetched = kaggle_cli(emulator, tmp_path, "kernels", "output", ref, "-p", str(out))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (out / "out.txt").read_text() == "salam v2"  # /kaggle/working/out.txt came back
    result = json.loads((out / "out" / "result.json").read_text())
    # Kaggle's mount: /kaggle/input/datasets/<owner>/<slug>; the zipped folder is extracted.
    assert result["inputs"] == [
        "datasets/tester/payload-data/code/module.py", "datasets/tester/payload-data/greeting.txt"
    ]
    assert result["cwd"] == "/kaggle/working" and result["python"] == [3, 12]
    log = json.loads((out / "train-step-kernel.log").read_text())
    lines = [{k: r[k] for k in ("stream_name", "data")} for r in log]
    assert {"stream_name": "stdout",
            "data": "/kaggle/input/datasets/tester/payload-data/greeting.txt\n"} in lines
    assert {"stream_name": "stdout",
            "data": "input datasets/tester/payload-data/greeting.txt salam v2\n"} in lines
    assert all(isinstance(r["time"], float | int) for r in log)
    page = httpx.get(pushed.stdout.split("progress at ")[1].strip())  # the kernel URL it printed
    assert page.json()["versions"][0]["status"] == "COMPLETE"


def test_input_is_read_only_and_internet_off_means_no_network(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    probe = """\
import json, socket
result = {}
try:
    open('/kaggle/input/x.txt', 'w')
    result['input_writable'] = True
except OSError as e:
    result['input_writable'] = False
try:
    socket.create_connection(('pypi.org', 443), timeout=5).close()
    result['internet'] = True
except OSError:
    result['internet'] = False
json.dump(result, open('/kaggle/working/probe.json', 'w'))
"""
    for slug, internet in (("offline-probe", False), ("online-probe", True)):
        api.kernels_push(str(write_kernel(tmp_path / slug, slug, source=probe,
                                          enable_internet=internet)))
    offline = emulator.wait(f"{USER}/offline-probe")
    online = emulator.wait(f"{USER}/online-probe")
    assert json.loads((offline.working_dir / "probe.json").read_text()) == {
        "input_writable": False, "internet": False
    }
    assert json.loads((online.working_dir / "probe.json").read_text())["internet"] is True
    assert not Path("/kaggle/working/probe.json").exists()  # nothing leaked to the host's /kaggle


def test_an_api_token_is_accepted_as_bearer(emulator: KaggleEmulator, tmp_path: Path) -> None:
    env = emulator.client_env(home=tmp_path / "home")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        env.pop(name)
    env["KAGGLE_API_TOKEN"] = TOKEN
    done = subprocess.run([str(BIN / "kaggle"), "kernels", "list", "--mine"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    introspected = emulator.recording.calls("IntrospectToken")
    assert introspected and introspected[0].json() == {"token": TOKEN}
    assert emulator.recording.calls("ListKernels")
    env["KAGGLE_API_TOKEN"] = "KGAT_not_a_valid_token"
    refused = subprocess.run([str(BIN / "kaggle"), "kernels", "list", "--mine"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0


def test_cli_gets_401_on_a_wrong_key(emulator: KaggleEmulator, tmp_path: Path) -> None:
    shown = kaggle_cli(emulator, tmp_path, "kernels", "status", f"{USER}/nothing", key="wrong")
    assert shown.returncode == 1
    assert "Permission 'kernels.get' was denied" in shown.stdout + shown.stderr
    assert emulator.recording.calls("GetKernelSessionStatus")  # it did reach the emulator
    reply = httpx.post(
        f"{emulator.url}/api/v1/kernels.KernelsApiService/GetKernelSessionStatus",
        json={"userName": USER, "kernelSlug": "nothing"},
        auth=(USER, "wrong"),
    )
    assert reply.status_code == 401 and reply.json()["code"] == 401


# --- the Python API: errors with real status codes --------------------------------------------


def test_http_errors_have_real_status_codes(emulator: KaggleEmulator, api) -> None:
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import KaggleEnv
    from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelRequest
    from requests.exceptions import HTTPError

    # A missing kernel is a denied permission on Kaggle (403), which the official client turns
    # into this ValueError ("The most likely cause is a wrong kernel slug").
    with pytest.raises(ValueError, match="Permission 'kernels.get' was denied"):
        api.kernels_status(f"{USER}/no-such-kernel")

    request = ApiSaveKernelRequest()
    request.slug, request.text = f"{USER}/bad-metadata", "print(1)"
    request.language, request.kernel_type = "cobol", "script"
    with KaggleClient(env=KaggleEnv.LOCAL, username=USER, password=KEY) as client:
        with pytest.raises(HTTPError) as bad:
            client.kernels.kernels_api_client.save_kernel(request)
    assert _status(bad.value.response) == 400
    assert "Invalid language 'cobol'" in str(bad.value)


def test_output_listing_is_paged_and_file_urls_are_signed(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    many = "for i in range(25):\n    open(f'f{i:02d}.txt', 'w').write(str(i))\n"
    api.kernels_push(str(write_kernel(tmp_path / "k", "many-outputs", source=many)))
    emulator.wait(f"{USER}/many-outputs")
    files, token = api.kernels_output(f"{USER}/many-outputs", str(tmp_path / "out"))
    assert token == "" and len(files) == 26  # two pages of 20 + 5, and the log
    assert (tmp_path / "out" / "f24.txt").read_text() == "24"
    listed = [c.json()["pageToken"] for c in emulator.recording.calls("ListKernelSessionOutput")]
    assert listed == ["", "20"]

    # The file URLs need no auth (like GCS signed URLs) but a valid, unexpired signature.
    reply = httpx.post(
        f"{emulator.url}/api/v1/kernels.KernelsApiService/ListKernelSessionOutput",
        json={"userName": USER, "kernelSlug": "many-outputs", "pageSize": 1},
        auth=(USER, KEY),
    )
    url = httpx.URL(reply.json()["files"][0]["url"])
    assert httpx.get(url).content == b"0"
    assert httpx.get(url.copy_with(query=b"Expires=1&Signature=x")).status_code == 403


# --- faults, as the client sees them ----------------------------------------------------------


def test_rate_limit_then_success(emulator: KaggleEmulator, api, tmp_path: Path) -> None:
    from requests.exceptions import HTTPError

    folder = write_kernel(tmp_path / "k", "rate-limited")
    emulator.faults.rate_limit("SaveKernel", retry_after=2)
    with pytest.raises(HTTPError) as limited:
        api.kernels_push(str(folder))  # the client never retries kernel calls
    assert _status(limited.value.response) == 429
    assert limited.value.response.headers["Retry-After"] == "2"
    assert api.kernels_push(str(folder)).version_number == 1  # the next call goes through

    # Dataset calls are retried by the client itself, honouring Retry-After.
    emulator.faults.rate_limit("StartBlobUpload", times=2, retry_after=0)
    data = write_dataset(tmp_path / "ds", "rate-limited-data", {"a.txt": "a"})
    assert api.dataset_create_new(str(data), quiet=True).status == "ok"
    assert len(emulator.recording.calls("StartBlobUpload")) == 3


def test_server_errors_on_status_then_success_over_http_admin(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    from requests.exceptions import HTTPError

    api.kernels_push(str(write_kernel(tmp_path / "k", "flaky-status")))
    fault = {"kind": "http_error", "method": "GetKernelSessionStatus", "status": 503, "times": 2}
    added = httpx.post(f"{emulator.url}/_emulator/faults", json=fault, auth=(USER, KEY))
    assert added.status_code == 201, added.text
    for _ in range(2):
        with pytest.raises(HTTPError) as failed:
            api.kernels_status(f"{USER}/flaky-status")
        assert _status(failed.value.response) == 503
    emulator.wait(f"{USER}/flaky-status")
    assert api.kernels_status(f"{USER}/flaky-status").status.name == "COMPLETE"
    pending = httpx.get(f"{emulator.url}/_emulator/faults", auth=(USER, KEY)).json()
    assert pending == {"pending": [], "quotaExhausted": False}
    bad = httpx.post(f"{emulator.url}/_emulator/faults", json={"kind": "nope"}, auth=(USER, KEY))
    assert bad.status_code == 400


def test_kernel_error_has_failure_message_and_log(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    ref = f"{USER}/failing-kernel"
    emulator.faults.kernel_error(
        "CUDA out of memory", log="Traceback (most recent call last):\nRuntimeError: CUDA OOM\n"
    )
    first = api.kernels_push(str(write_kernel(tmp_path / "k", "failing-kernel")))
    emulator.wait(ref, first.version_number)
    status = api.kernels_status(f"{ref}/{first.version_number}")
    assert (status.status.name, status.failure_message) == ("ERROR", "CUDA out of memory")
    files, _ = api.kernels_output(ref, str(tmp_path / "out"))
    assert [Path(f).name for f in files] == ["failing-kernel.log"]
    assert "RuntimeError: CUDA OOM" in (tmp_path / "out" / "failing-kernel.log").read_text()

    # A script that really fails: ERROR, and the message names its last stderr line.
    boom = "raise SystemExit('loss is nan at step 3')\n"
    second = api.kernels_push(str(write_kernel(tmp_path / "k", "failing-kernel", source=boom)))
    assert second.version_number == 2
    version = emulator.wait(ref, 2)
    assert version.status is Status.ERROR
    failure = api.kernels_status(f"{ref}/2").failure_message
    assert failure == "The kernel script exited with code 1: loss is nan at step 3"
    assert api.kernels_status(f"{ref}/1").failure_message == "CUDA out of memory"

    # Past its session timeout (`kaggle kernels push -t 1`) a script is killed: ERROR.
    sleeper = write_kernel(tmp_path / "k", "failing-kernel", source="import time; time.sleep(60)")
    assert api.kernels_push(str(sleeper), timeout="1").version_number == 3
    assert emulator.wait(ref, 3, timeout=60).status is Status.ERROR
    assert "exceeded its timeout of 1 seconds" in api.kernels_status(ref).failure_message


# What pip does to the image's environment when it upgrades a package: the old version's
# .dist-info folder (with a licenses/ folder inside) is moved aside, a new one written.
PIP_LIKE = """
import pathlib, shutil, sys, sysconfig
site = pathlib.Path(sysconfig.get_paths()["purelib"])
old = next(p for p in sorted(site.glob("*.dist-info")) if (p / "licenses").is_dir())
stash = site / "~stash"
shutil.move(str(old), str(stash / old.name))
(site / "nizami_probe.py").write_text("VALUE = 1")
shutil.move(str(stash / old.name), str(old))
print("moved", old.name, "and back; wrote", (site / "nizami_probe.py").read_text())
"""


def test_a_kernel_changes_its_environment_as_pip_does_and_the_next_session_starts_clean(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    """Moving a folder of the image (pip's upgrade does; under a user namespace overlayfs failed
    this with EIO until mounted with ``userxattr``) works, and stays in that session."""
    ref = f"{USER}/pip-like-kernel"
    api.kernels_push(str(write_kernel(tmp_path / "k", "pip-like-kernel", source=PIP_LIKE)))
    version = emulator.wait(ref, 1)
    assert version.status is Status.COMPLETE, version.log_text()
    assert "and back; wrote VALUE = 1" in version.log_text()
    probe = "import nizami_probe\n"
    api.kernels_push(str(write_kernel(tmp_path / "k", "pip-like-kernel", source=probe)))
    second = emulator.wait(ref, 2)
    assert second.status is Status.ERROR  # the new session starts from the pristine image
    assert "No module named 'nizami_probe'" in second.log_text()


def test_hanging_kernel_runs_until_deleted(emulator: KaggleEmulator, api, tmp_path: Path) -> None:

    ref = f"{USER}/hanging-kernel"
    emulator.faults.kernel_hang()
    api.kernels_push(str(write_kernel(tmp_path / "k", "hanging-kernel", enable_gpu=True)))
    version = emulator.wait(ref, until={Status.RUNNING})
    time.sleep(0.5)
    assert api.kernels_status(ref).status.name == "RUNNING"
    assert version.process is not None and version.process.poll() is None
    assert emulator.state.running_gpu_sessions() == 1

    api.kernels_delete(ref, no_confirm=True)
    assert version.process.poll() == -9  # SIGKILL
    assert emulator.deleted_kernels == [ref]
    assert emulator.state.running_gpu_sessions() == 0
    with pytest.raises(ValueError, match="was denied"):  # gone: 403, as on Kaggle
        api.kernels_status(ref)


def test_gpu_quota_and_concurrent_sessions(emulator: KaggleEmulator, api, tmp_path: Path) -> None:
    quota = api.quota_view()
    assert quota.gpu_quota.total_time_allowed.total_seconds() == 30 * 3600
    assert quota.gpu_quota.time_used.total_seconds() == 0

    emulator.faults.exhaust_gpu_quota()
    quota = api.quota_view()
    assert quota.gpu_quota.time_used == quota.gpu_quota.total_time_allowed
    gpu = write_kernel(
        tmp_path / "gpu", "gpu-kernel", enable_gpu=True, machine_shape="NvidiaTeslaT4"
    )
    refused = api.kernels_push(str(gpu))
    assert (refused.error, refused.version_number) == ("Maximum weekly GPU quota exceeded", 0)
    assert api.kernels_push(str(write_kernel(tmp_path / "cpu", "cpu-kernel"))).version_number == 1

    emulator.faults.clear()
    emulator.faults.occupy_gpu_sessions(2)
    mine = {k.ref for k in api.kernels_list(mine=True, page_size=20)}
    assert {f"{USER}/busy-gpu-session-1", f"{USER}/busy-gpu-session-2"} <= mine
    assert api.kernels_status(f"{USER}/busy-gpu-session-1").status.name == "RUNNING"
    refused = api.kernels_push(str(gpu))
    assert refused.error == "Maximum batch GPU session count of 2 reached."
    api.kernels_delete(f"{USER}/busy-gpu-session-1", no_confirm=True)
    assert api.kernels_push(str(gpu)).version_number == 1


# --- secrets: the sandbox inherits none; the recording finds what was sent ----------------------


def test_sandbox_env_has_no_secret_and_recording_finds_what_was_sent(
    emulator: KaggleEmulator, api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    api.kernels_push(str(write_kernel(tmp_path / "k", "env-probe")))
    version = emulator.wait(f"{USER}/env-probe")
    assert version.status is Status.COMPLETE, version.log_text()
    env = json.loads((version.working_dir / "env.json").read_text())["env"]
    assert env["HOME"].startswith(str(version.dir))
    assert not {n for n in env if n.startswith("KAGGLE_") and n != "KAGGLE_KERNEL_RUN_TYPE"}
    leaked = [n for n, v in SECRETS.items() if v in json.dumps(env)]
    assert not leaked, f"the sandbox saw {leaked}"
    assert not emulator.recording.find(SECRETS["HF_TOKEN"])  # nor did any request carry it

    # Positive control: a canary inside a zipped dataset folder and in a kernel source is found.
    canary = "canary-6f1d2a"
    data = write_dataset(tmp_path / "ds", "canary-data", {"pkg/conf.py": f"X = '{canary}'"})
    api.dataset_create_new(str(data), quiet=True, dir_mode="zip")
    api.kernels_push(str(write_kernel(tmp_path / "k2", "canary-kernel", source=f"# {canary}\n")))
    hits = emulator.recording.find(canary)
    assert any("member conf.py" in h for h in hits), hits
    assert any("SaveKernel" in h for h in hits), hits
    searched = httpx.post(
        f"{emulator.url}/_emulator/received/search", json={"needle": canary}, auth=(USER, KEY)
    )
    assert searched.json()["hits"] == hits
    received = httpx.get(f"{emulator.url}/_emulator/received", auth=(USER, KEY)).json()
    assert any(r["method"] == "SaveKernel" and canary in r["body"] for r in received["requests"])

    with pytest.raises(ValueError, match="HF_TOKEN"):
        KaggleEmulator(root=tmp_path / "x", pass_env=["TOKENIZERS_PARALLELISM", "HF_TOKEN"])
    with pytest.raises(ValueError, match="WANDB_API_KEY"):
        KaggleEmulator(root=tmp_path / "x", extra_env={"WANDB_API_KEY": "x"})


# --- item 6: the kaggle_data DVC stage downloads an emulated dataset ---------------------------


def test_dvc_stage_versions_a_kaggle_dataset_that_load_data_reads_at_a_revision(
    emulator: KaggleEmulator, api, tmp_path: Path
) -> None:
    from steps.core.config import DataConfig
    from steps.core.data.dataset import fetch_data

    lines = (ROOT / "data" / "nizami.jsonl").read_text(encoding="utf-8").splitlines()
    data = write_dataset(tmp_path / "ds", "nizami-az-cot", {"nizami.jsonl": "\n".join(lines[:20])})
    assert api.dataset_create_new(str(data), quiet=True).status == "ok"
    (data / "nizami.jsonl").write_text("\n".join(lines[:30]) + "\n", encoding="utf-8")
    assert api.dataset_create_version(str(data), "30 examples", quiet=True).status == "ok"

    # A throwaway git + DVC repo holding the stage, so the real repo is never touched.
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copy(ROOT / "data" / "kaggle_download.py", repo / "data")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["kaggle_data"]["dataset"] = f"{USER}/nizami-az-cot"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = emulator.client_env(home=tmp_path / "home")
    env["PATH"] = f"{BIN}:{env['PATH']}"  # the stage runs `python`
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    run("git", "init", "-q")
    run(str(BIN / "dvc"), "init", "-q")
    store = tmp_path / "dvc-store"  # what `dvc remote add -d store <dir>` writes:
    (repo / ".dvc" / "config").write_text(
        f"[core]\n    remote = store\n['remote \"store\"']\n    url = {store}\n"
    )
    run(str(BIN / "dvc"), "repro", "kaggle_data")
    run(str(BIN / "dvc"), "push", "-q")
    run("git", "add", "-A")
    run(*git, "commit", "-q", "-m", "kaggle data")

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["kaggle_data"]
    assert lock["outs"][0]["path"] == "data/kaggle" and lock["outs"][0]["md5"].endswith(".dir")
    assert lock["params"]["params.yaml"]["kaggle_data.dataset"] == f"{USER}/nizami-az-cot"
    assert len(read_examples(repo / "data" / "kaggle" / "nizami.jsonl")) == 30  # the latest
    assert emulator.recording.calls("DownloadDataset")

    # load_data's fetch reads it back from the DVC remote at a git revision, like any data.
    shutil.rmtree(repo / "data" / "kaggle")
    path, md5 = fetch_data(DataConfig(path=Path("data/kaggle/nizami.jsonl"), rev="HEAD"), repo)
    assert len(read_examples(path)) == 30 and len(md5) == 32

    missing = subprocess.run(
        [sys.executable, "data/kaggle_download.py", "--dataset", f"{USER}/no-such-data",
         "--out", "data/other"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert f"Kaggle dataset {USER}/no-such-data not found (HTTP 404)" in missing.stderr


def test_the_legacy_layout_mounts_a_dataset_at_its_slug(tmp_path: Path, kaggle_image: str) -> None:
    with KaggleEmulator(root=tmp_path / "legacy", username=USER, key=KEY, python=kaggle_image,
                        layout="legacy", dataset_processing_s=0) as emu:
        data = write_dataset(tmp_path / "ds", "legacy-data", {"a.txt": "a"})
        assert kaggle_cli(emu, tmp_path, "datasets", "create", "-p", str(data)).returncode == 0
        folder = write_kernel(tmp_path / "k", "legacy-kernel",
                              dataset_sources=[f"{USER}/legacy-data"])
        assert kaggle_cli(emu, tmp_path, "kernels", "push", "-p", str(folder)).returncode == 0
        version = emu.wait(f"{USER}/legacy-kernel")
        seen = json.loads((version.working_dir / "env.json").read_text())["inputs"]
        assert seen == ["/kaggle/input/legacy-data/a.txt"], version.log_text()


def test_faults_can_be_injected_from_the_command_line(tmp_path: Path) -> None:
    """``--fault`` (repeatable) puts a fault in place before the first call, so a user can
    rehearse a stopped session and its resume with the real CLI; a bad one is refused, named."""
    import subprocess
    import sys

    import httpx

    command = [sys.executable, "-m", "kaggle_emulator", "--port", "0",
               "--python", sys.executable, "--root", str(tmp_path / "emu"), "--token", "KGAT_x",
               "--fault", '{"kind": "kernel_stop", "after_log": "checkpoint-2"}',
               "--fault", '{"kind": "http_error", "method": "SaveKernel", "status": 502, '
               '"served": true}']
    bad = subprocess.run([*command[:-4], "--fault", '{"kind": "kernel_stop"}'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "afterLog: Field required" in bad.stderr, bad.stderr
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        url = None
        for line in server.stdout:
            if line.startswith("Kaggle API emulator on "):
                url = line.split()[4].rstrip(";")
                break
        assert url, "the emulator never announced its URL"
        listed = httpx.get(f"{url}/_emulator/faults", timeout=10,
                           headers={"Authorization": "Bearer KGAT_x"}).json()
        kinds = {(f["kind"], f.get("served")) for f in listed["pending"]}
        assert kinds == {("kernel_stop", None), ("http_error", True)}, listed
    finally:
        server.terminate()
        server.wait(timeout=30)
