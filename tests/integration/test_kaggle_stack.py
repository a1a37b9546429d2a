"""The whole pipeline on the `kaggle` stack: the train step runs in an (emulated) Kaggle kernel.

The step operator drives the real ``kaggle`` client against ``KaggleEmulator``, which runs the
pushed kernel as Kaggle does today: at the real ``/kaggle`` paths, the bundle mounted at
``/kaggle/input/datasets/<owner>/<slug>``, on a Python 3.12 image that lacks our pins (so the
kernel's install branch runs). Credentials are an API token only. Only the API endpoint
differs from production.
"""

from __future__ import annotations

import json
import secrets
import tarfile
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, register_stack, run_pipeline, write_config

from kaggle_emulator import KaggleEmulator
from steps.core.evaluate.metrics_document import MetricsDocument

RUN_CONFIG = ROOT / "stacks" / "run-configs" / "kaggle.yaml"
# Made up per session, so that the values appear in no file of the repository (the code bundle
# that goes to Kaggle includes this test file).
SECRETS = {
    "HF_TOKEN": f"hf_{secrets.token_hex(16)}",
    "WANDB_API_KEY": secrets.token_hex(20),
    "KAGGLE_API_TOKEN": f"KGAT_{secrets.token_hex(16)}",
}
KEY = secrets.token_hex(16)  # the emulator's legacy key: the runs never use it
# A serving key where users have kept one: a keys file and .env in the project folder (both
# git-ignored) and an untracked, unignored file beside the code. None may reach Kaggle.
PLANTED = f"nz-{secrets.token_hex(16)}"
PLANTED_FILES = {"nizami_api_keys": PLANTED, ".env": f"NIZAMI_API_KEYS={PLANTED}\n",
                 "steps/scratch_notes.txt": f"key {PLANTED}\n"}  # fmt: skip
# Where else the README puts credentials: the Kaggle config folder (a legacy kaggle.json) and
# the ZenML store (a secret, as team mode keeps S3/HF/W&B keys).
PLANTED_KAGGLE_JSON = f"legacy-{secrets.token_hex(16)}"
PLANTED_ZENML_SECRET = f"zs-{secrets.token_hex(16)}"
USER = "nizami-ci"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, kaggle_image):
    with KaggleEmulator(root=tmp_path_factory.mktemp("kaggle"), username=USER, key=KEY,
                        tokens={SECRETS["KAGGLE_API_TOKEN"]: USER}, python=kaggle_image) as kaggle:
        yield kaggle


@pytest.fixture(scope="module")
def kaggle_stack(emulator):
    """`stacks/register.sh kaggle` (the real script), with the API endpoint at the emulator."""
    done = register_stack("kaggle")
    assert done.returncode == 0, done.stdout + done.stderr
    from zenml.client import Client

    client = Client()
    client.activate_stack("kaggle")
    client.update_stack_component(
        "kaggle", component_type="step_operator",
        configuration={"api_endpoint": emulator.url, "max_retries": 3},
    )
    yield client
    client.activate_stack("local") if _has_stack(client, "local") else None


def _has_stack(client, name: str) -> bool:
    return any(s.name == name for s in client.list_stacks(size=100).items)


@pytest.fixture
def secrets_env(monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _run_config(tmp_path: Path, train_cache: bool = True, **train_settings) -> Path:
    raw = yaml.safe_load(RUN_CONFIG.read_text())
    raw["steps"]["train"]["settings"]["step_operator"] |= {"poll_interval_s": 0.5, **train_settings}
    if not train_cache:  # load_data stays cached; train must reach the emulator again
        raw["steps"]["train"]["enable_cache"] = False
    path = tmp_path / "kaggle-run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _config(tmp_path: Path, out: Path, **changes) -> Path:
    # Inputs of its own, so that no step of this module is a cache hit for another module's run
    # (they share the session's ZenML store), nor the other way round.
    return write_config(tmp_path / "tiny-kaggle.yaml", model_name="nizami-1.7b-kaggle",
                        output_dir=str(out), data={"max_train_examples": 64}, **changes)


def _run(config: Path, run_config: Path):
    return run_pipeline(config, run_config, allow_failure=True)


@pytest.fixture(scope="module")
def kaggle_run(kaggle_stack, emulator, tmp_path_factory):
    """One run with transient faults on the way: 429 on a status poll, 500 on the push."""
    import os

    tmp = tmp_path_factory.mktemp("kaggle-run")
    names = [*SECRETS, "KAGGLE_USERNAME", "KAGGLE_KEY"]
    saved = {k: os.environ.get(k) for k in names}
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):  # token only: no username/key anywhere
        os.environ.pop(name, None)
    os.environ.update(SECRETS)
    wandb_dir = Path(os.environ["WANDB_DIR"]) / "wandb"
    before = set(wandb_dir.glob("offline-run-*")) if wandb_dir.is_dir() else set()
    emulator.faults.rate_limit("GetKernelSessionStatus", times=2, retry_after=1)
    emulator.faults.http_error("SaveKernel", status=500, times=1)
    planted = [ROOT / name for name in PLANTED_FILES if not (ROOT / name).exists()]
    for path in planted:
        path.write_text(PLANTED_FILES[str(path.relative_to(ROOT))])
    kaggle_dir = tmp / "kaggle-config"
    kaggle_dir.mkdir()
    (kaggle_dir / "kaggle.json").write_text(json.dumps({"username": USER,
                                                         "key": PLANTED_KAGGLE_JSON}))
    saved["KAGGLE_CONFIG_DIR"] = os.environ.get("KAGGLE_CONFIG_DIR")
    os.environ["KAGGLE_CONFIG_DIR"] = str(kaggle_dir)
    kaggle_stack.create_secret("nizami_planted", values={"api_key": PLANTED_ZENML_SECRET})
    try:
        # keep: true: the tests below inspect the kernel on the emulator afterwards
        run = _run(_config(tmp, tmp / "out"), _run_config(tmp, keep=True))
    finally:
        for path in planted:
            path.unlink()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    tmp.joinpath("new-wandb-runs.txt").write_text(
        "\n".join(str(p) for p in set(wandb_dir.glob("offline-run-*")) - before)
    )
    return run, tmp


def test_pipeline_runs_with_train_in_the_kernel(kaggle_run, emulator):
    run, _ = kaggle_run
    assert run.status.value == "completed", {n: s.status for n, s in run.steps.items()}
    meta = run.steps["train"].run_metadata
    kaggle = meta["kaggle"]
    assert kaggle["kernel_slug"].startswith("nizami-train-")
    assert str(kaggle["kernel_url"]).endswith(f"/code/{USER}/{kaggle['kernel_slug']}")
    assert kaggle["machine_shape"] == "NvidiaTeslaT4"
    # metadata the step logged inside the kernel reached the ZenML step run
    assert meta["train"]["train_loss"] > 0
    version = emulator.kernel_version(f"{USER}/{kaggle['kernel_slug']}", kaggle["kernel_version"])
    assert version.status.value == "COMPLETE"
    # Kaggle's image as it is today: Python 3.12, the bundle at the new mount path, our pins
    # installed by the kernel itself (the image has an older transformers and no zenml/peft).
    report = meta["kaggle_kernel"]
    assert report["python"].startswith("3.12"), report
    assert report["image"]["transformers"] == "5.0.0" and report["image"]["zenml"] is None
    assert report["bundle_path"] == f"/kaggle/input/datasets/{USER}/{kaggle['kernel_slug']}-bundle"
    installed = set(report["installed"])
    assert {"zenml==0.98.0", "transformers==5.24.0", "peft==0.21.2"} <= installed, installed
    assert report["install_s"] > 0
    assert "installing" in version.log_text()
    saves = emulator.recording.calls("SaveKernel")
    sent = saves[-1].json()
    assert sent["isPrivate"] is True and sent["enableGpu"] is True
    assert sent["machineShape"] == "NvidiaTeslaT4"


def test_transient_429_and_500_were_retried(kaggle_run, emulator):
    assert len(emulator.recording.calls("SaveKernel")) >= 2  # the 500, then the accepted push
    assert emulator.faults.pending() == []


def test_the_kernel_trained_adapter_is_the_one_downstream_steps_use(kaggle_run, emulator):
    run, tmp = kaggle_run
    train = run.steps["train"]
    version = emulator.kernel_version(f"{USER}/{train.run_metadata['kaggle']['kernel_slug']}")
    archive = Path(version.working_dir) / "outputs" / "adapter" / "data.tar.gz"
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("adapter_model.safetensors"))
        kernel_weights = tar.extractfile(member).read()
    adapter_artifact = train.outputs["adapter"][0]
    assert (adapter_artifact.load() / "adapter_model.safetensors").read_bytes() == kernel_weights
    for step in ("evaluate", "package"):
        used = run.steps[step].inputs["adapter"][0]
        assert used.id == adapter_artifact.id, step
    registration = run.steps["register"].outputs["registration"][0].load()
    metrics = run.steps["evaluate"].outputs["metrics"][0].load()
    assert registration.metrics == metrics


def test_one_wandb_run_per_train_step_the_kernels(kaggle_run):
    run, tmp = kaggle_run
    meta = run.steps["train"].run_metadata
    run_id = meta["wandb_run_id"]
    assert meta["wandb_run_name"] == f"{run.name}_train" and meta["wandb_group"] == run.name
    assert str(meta["experiment_tracker_url"]).endswith(f"/runs/{run_id}")
    runs = [Path(p) for p in meta["kaggle_wandb_runs"]]
    assert [p.name.endswith(f"-{run_id}") for p in runs] == [True], runs
    assert any(p.suffix == ".wandb" for p in runs[0].iterdir())
    # The only new local runs: the kernel's (train) and evaluate's; no empty one for train.
    new = [Path(p) for p in (tmp / "new-wandb-runs.txt").read_text().split()]
    assert len(new) == 2 and runs[0] in new, new
    records = (runs[0] / f"run-{run_id}.wandb").read_bytes()  # the config went in
    assert b"learning_rate" in records and run.name.encode() in records


def test_kernel_log_lines_reach_the_step_log(kaggle_run, kaggle_stack):
    run, _ = kaggle_run
    store = Path(kaggle_stack.active_stack.artifact_store.path)
    logs = [p.read_text(errors="replace") for p in store.rglob("*") if p.is_file()
            and "log" in p.as_posix().lower() and p.stat().st_size < 20_000_000]
    streamed = [line for text in logs for line in text.splitlines() if "[kaggle " in line]
    assert any("kernel: step train" in line for line in streamed), streamed[:5]
    started = [(str(p), line) for p in store.rglob("*") if p.is_file()
               and "log" in p.as_posix().lower() and p.stat().st_size < 20_000_000
               for line in p.read_text(errors="replace").splitlines()
               if "kernel: step train with inputs" in line]
    assert len(started) == 1, started  # every kernel line once
    assert any("Kaggle credentials: API token from KAGGLE_API_TOKEN" in text for text in logs)


def test_no_secret_reaches_kaggle_or_the_logs(kaggle_run, emulator, kaggle_stack):
    """Plain, base64 or inside an archive: nothing the emulator received holds a secret."""
    run, _ = kaggle_run
    assert len(PLANTED_FILES) == 3 and emulator.recording.find(PLANTED) == []
    assert emulator.recording.find(PLANTED_KAGGLE_JSON) == []  # ~/.kaggle/kaggle.json
    assert emulator.recording.find(PLANTED_ZENML_SECRET) == []  # a ZenML secret
    bundles = [b for b in emulator.recording.blobs if b.name.endswith(".tar.gz")]
    assert bundles  # the code went up, only without the planted files
    for name, value in SECRETS.items():
        # The API token goes to Kaggle only where the protocol puts it: the Authorization
        # header (not recorded) and IntrospectToken's body. Nowhere else.
        hits = [h for h in emulator.recording.find(value) if "IntrospectToken" not in h]
        assert hits == [], f"{name} reached the emulator: {hits}"
    store = Path(kaggle_stack.active_stack.artifact_store.path)
    for path in store.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            for name, value in SECRETS.items():
                assert value.encode() not in data, f"{name} in {path}"
    kernel_source = emulator.recording.calls("SaveKernel")[-1].json()["text"]
    assert "KAGGLE_API_TOKEN" not in kernel_source and "KGAT_" not in kernel_source
    calls = [c for c in emulator.recording.requests if c.method not in ("upload", "download")]
    assert {c.auth_scheme for c in calls} <= {"Bearer", ""}  # never the legacy key
    blob_bytes = sum(b.path.stat().st_size for b in emulator.recording.blobs if b.path.is_file())
    print(f"secret scan: {len(emulator.recording.requests)} requests and "
          f"{len(emulator.recording.blobs)} uploads ({blob_bytes / 1e6:.1f} MB, archives opened)"
          f" searched for {len(SECRETS) + 3} secrets, plain and base64: 0 hits")


def test_a_cached_train_step_never_reaches_kaggle(kaggle_run, emulator):
    run, tmp = kaggle_run
    pushes = len(emulator.recording.calls("SaveKernel"))
    again = _run(_config(tmp, tmp / "out"), _run_config(tmp))
    assert again.steps["train"].status.value == "cached"
    assert len(emulator.recording.calls("SaveKernel")) == pushes


def _failed_train(tmp_path, **settings):
    run = _run(_config(tmp_path, tmp_path / "out"), _run_config(tmp_path, False, **settings))
    assert run.status.value == "failed"
    return run.steps["train"]


@pytest.mark.usefixtures("secrets_env")
def test_kernel_error_fails_the_step_with_the_log_tail(kaggle_stack, emulator, tmp_path):
    emulator.faults.kernel_error("CUDA out of memory (emulated)", times=1)
    train = _failed_train(tmp_path)
    message = train.exception_info.message
    assert "ended ERROR" in message and "CUDA out of memory (emulated)" in message
    assert f"/code/{USER}/nizami-train-" in message
    assert "last log lines" in message


@pytest.mark.usefixtures("secrets_env")
def test_a_hanging_kernel_is_deleted_at_the_timeout(kaggle_stack, emulator, tmp_path):
    emulator.faults.kernel_hang(times=1)
    train = _failed_train(tmp_path, timeout_s=8)
    message = train.exception_info.message
    assert "timeout_s=8" in message and "deleted it" in message
    slug = message.split(f"/code/{USER}/")[1].split()[0]
    assert f"{USER}/{slug}" in emulator.deleted_kernels


@pytest.mark.usefixtures("secrets_env")
def test_ctrl_c_twice_in_a_terminal_stops_the_kernel_exactly_once(kaggle_stack, emulator,
                                                                    tmp_path):
    """``python -m pipelines.run`` in a terminal: Ctrl-C sends SIGINT to the whole foreground
    process group, and an impatient user sends it again half a second later, while the first
    deletion waits to retry a 503. The GPU session is stopped (the kernel deleted) once, the
    deletion is not cut short, the process exits. Before, the second SIGINT (and the one the
    operator passed on) interrupted the retry, and the kernel kept running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import env

    emulator.faults.kernel_hang(times=1)
    emulator.faults.http_error("DeleteKernel", 503, times=1, retry_after=2)
    config = _config(tmp_path, tmp_path / "out", train={"epochs": 2})  # inputs of its own
    deleted_before = len(emulator.recording.calls("DeleteKernel"))
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.run", "--config", str(config), "--run-config",
         str(_run_config(tmp_path, train_cache=False))],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, to signal as a terminal does
        # A terminal's foreground job takes Ctrl-C; a job started in the background by a
        # non-interactive shell (CI) inherits SIGINT ignored: undo that, as a terminal has it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 600
        while emulator.state.running_gpu_sessions() == 0:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        out, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert emulator.state.running_gpu_sessions() == 0, out[-3000:]
    deletes = emulator.recording.calls("DeleteKernel")[deleted_before:]
    slugs = [d.json().get("kernelSlug") for d in deletes]
    assert len(slugs) == 2 and len(set(slugs)) == 1, (slugs, out[-3000:])  # the 503, the retry
    assert slugs[0].startswith("nizami-train-") and emulator.faults.pending() == []
    assert emulator.deleted_kernels.count(f"{USER}/{slugs[0]}") == 1
    assert "Kaggle kernel" in out and "deleted" in out, out[-3000:]


@pytest.mark.usefixtures("secrets_env")
def test_exhausted_quota_fails_before_anything_is_pushed(kaggle_stack, emulator, tmp_path):
    pushes = len(emulator.recording.calls("SaveKernel"))
    uploads = len(emulator.recording.calls("CreateDataset"))
    emulator.faults.exhaust_gpu_quota()
    try:
        train = _failed_train(tmp_path)
    finally:
        emulator.faults.clear()
    assert "GPU quota exhausted" in train.exception_info.message
    assert len(emulator.recording.calls("SaveKernel")) == pushes
    assert len(emulator.recording.calls("CreateDataset")) == uploads


@pytest.mark.usefixtures("secrets_env")
def test_two_busy_gpu_sessions_fail_before_anything_is_pushed(kaggle_stack, emulator, tmp_path):
    pushes = len(emulator.recording.calls("SaveKernel"))
    emulator.faults.occupy_gpu_sessions(2)
    try:
        train = _failed_train(tmp_path)
    finally:
        emulator.faults.clear()
        for n in (1, 2):  # end the phantom sessions, as deleting them on Kaggle would
            emulator.kernel_version(f"{USER}/busy-gpu-session-{n}").kill()
    assert "2 concurrent GPU sessions" in train.exception_info.message
    assert len(emulator.recording.calls("SaveKernel")) == pushes


def test_kernel_metadata_json_is_the_one_pushed(kaggle_run, emulator):
    sent = emulator.recording.calls("SaveKernel")[-1].json()
    assert sent["kernelType"] == "script" and sent["language"] == "python"
    assert any(s.endswith("-bundle") for s in sent["datasetDataSources"])
    assert json.loads(json.dumps(sent))  # plain JSON on the wire


@pytest.mark.usefixtures("secrets_env")
def test_a_kernel_stopped_after_a_checkpoint_resumes_in_a_new_version(kaggle_stack, emulator,
                                                                      kaggle_run, tmp_path):
    """Kaggle stops the session after the checkpoint at step 2 of 4; the operator pushes a new
    version attaching the old one's output, which resumes and ends like the uninterrupted run."""
    emulator.faults.kernel_stop(after_log="checkpoint at step 2 of")
    raw = yaml.safe_load(_config(tmp_path, tmp_path / "out").read_text())
    raw["train"]["checkpoint_every_steps"] = 1  # not an optimisation setting: same run
    config = tmp_path / "tiny-resume.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    run = _run(config, _run_config(tmp_path, train_cache=False, keep=True))
    assert run.status.value == "completed", {n: s.status for n, s in run.steps.items()}
    meta = run.steps["train"].run_metadata
    attempts = meta["kaggle"]["attempts"]
    assert [(a["attempt"], a["status"], a["resumed"]) for a in attempts] == [
        (1, "failed", False), (2, "completed", True)]
    assert attempts[1]["kernel_version"] == attempts[0]["kernel_version"] + 1
    slug = meta["kaggle"]["kernel_slug"]
    second = emulator.kernel_version(f"{USER}/{slug}", attempts[1]["kernel_version"])
    assert second.request["kernelDataSources"] == [f"{USER}/{slug}"]
    assert "resumed from step 2 of 4" in second.log_text()
    first = emulator.kernel_version(f"{USER}/{slug}", attempts[0]["kernel_version"])
    assert "checkpoint at step 3 of" not in first.log_text()  # redone: under one interval
    # The same optimisation as the module's uninterrupted run (same data, seed and recipe).
    resumed, plain = meta["train"], kaggle_run[0].steps["train"].run_metadata["train"]
    assert resumed["train_steps"] == plain["train_steps"] == 4
    assert resumed["steps_this_attempt"] == 2
    assert resumed["last_logged_loss"] == pytest.approx(plain["last_logged_loss"], abs=1e-3)
    assert meta["train_attempt"]["resumed_from_step"] == 2


@pytest.mark.usefixtures("secrets_env")
def test_evaluate_can_run_in_a_kernel_too(kaggle_stack, emulator, kaggle_run, tmp_path):
    """stacks/run-configs/kaggle-eval-on-kaggle.yaml: train is the module run's (cached),
    evaluate runs in its own kernel, with the metrics' packages installed there."""
    raw = yaml.safe_load((ROOT / "stacks/run-configs/kaggle-eval-on-kaggle.yaml").read_text())
    for step in ("train", "evaluate"):
        raw["steps"][step]["settings"]["step_operator"]["poll_interval_s"] = 0.5
    raw["steps"]["evaluate"]["enable_cache"] = False  # the module's run evaluated here already
    run_config = tmp_path / "kaggle-eval.yaml"
    run_config.write_text(yaml.safe_dump(raw))
    _, first_tmp = kaggle_run
    run = _run(_config(first_tmp, first_tmp / "out"), run_config)
    assert run.status.value == "completed", {n: s.status for n, s in run.steps.items()}
    assert run.steps["train"].status.value == "cached"
    evaluate = run.steps["evaluate"]
    meta = evaluate.run_metadata
    assert meta["kaggle"]["kernel_slug"].startswith("nizami-evaluate-")
    installed = set(meta["kaggle_kernel"]["installed"])
    assert {p for p in installed if p.split("==")[0] in ("sacrebleu", "rouge-score")}, installed
    metrics = evaluate.outputs["metrics"][0].load()
    assert isinstance(metrics, MetricsDocument)  # the typed document, made in the kernel
    assert 0.0 <= metrics.tuned.accuracy <= 1.0 and metrics.intervals.tuned["accuracy"]
    assert metrics.examples == len(metrics.per_example.tuned.correct) == len(metrics.per_example.id)
    # Retention: a step that succeeded without keep: true leaves nothing on the account.
    slug = meta["kaggle"]["kernel_slug"]
    assert f"{USER}/{slug}" in emulator.deleted_kernels
    assert not [d for d in emulator.state.datasets if d[1] == f"{slug}-bundle"]
