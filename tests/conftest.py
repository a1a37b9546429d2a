"""Shared test setup: isolated, offline stores and the tiny model fixtures.

The environment is set when this module is imported, before any test module imports zenml,
evaluate, wandb or huggingface_hub (they read these variables at import time). ZenML, BentoML
and the model cache always point into a per-session temporary directory, so a test run never
touches the user's real stores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SESSION_DIR = Path(tempfile.mkdtemp(prefix="nizami-tests-"))

# Never the user's stores, whatever the shell says.
os.environ["ZENML_CONFIG_PATH"] = str(SESSION_DIR / "zenml")
os.environ["BENTOML_HOME"] = str(SESSION_DIR / "bentoml")
os.environ["NIZAMI_CACHE"] = str(SESSION_DIR / "cache")
# ZenML keeps the active stack of a checkout in its .zen/ (`zenml stack set`, register.sh), which
# every store and test session on the checkout would share: each session gets its own, while
# step sources still resolve against the checkout.
(SESSION_DIR / "repo" / ".zen").mkdir(parents=True)
os.environ["ZENML_REPOSITORY_PATH"] = str(SESSION_DIR / "repo")
os.environ["ZENML_CUSTOM_SOURCE_ROOT"] = str(Path(__file__).resolve().parents[1])
# This session's own folders (also under pytest-xdist, whose workers inherit the environment of
# the process that started them, and with it that process's folders).
os.environ["WANDB_DIR"] = str(SESSION_DIR / "wandb")
os.environ["HF_HOME"] = str(SESSION_DIR / "hf")
os.environ["DVC_SITE_CACHE_DIR"] = str(SESSION_DIR / "dvc-site")
# Offline and quiet unless the caller asked otherwise.
for _name, _value in {
    "DVC_NO_ANALYTICS": "1",
    "ZENML_ANALYTICS_OPT_IN": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)
Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)

import pytest  # noqa: E402
from helpers import ROOT, TINY_CONFIG  # noqa: E402

from steps.core.config import PipelineConfig, load_config  # noqa: E402

DATA_FILE = ROOT / "data" / "nizami.jsonl"


# The files that take longest (seconds of one `make test` on three workers, AMD EPYC, 2 cores),
# longest first. `make test` hands whole files to xdist workers in collection order
# (`--dist loadfile --no-loadscope-reorder`); xdist's own order, most tests first, started these
# last and left one worker running them alone for minutes at the end. Stale figures only cost
# time: files not listed keep their place after these.
SLOWEST_FILES = {
    "tests/integration/test_kaggle_stack.py": 497,
    "tests/integration/test_kaggle_server_mode.py": 302,
    "tests/integration/test_nonroot.py": 206,
    "tests/integration/test_serve_lifecycle.py": 182,
    "tests/integration/test_team_local.py": 180,
    "tests/integration/test_kaggle_client.py": 175,
    "tests/integration/test_image.py": 115,
    "tests/unit/test_stack_import.py": 112,
    "tests/integration/test_serve.py": 103,
    "tests/integration/test_pipeline.py": 97,
    "tests/integration/test_dashboard.py": 88,
    "tests/integration/test_registry.py": 60,
    "tests/integration/test_killed_run.py": 49,
    "tests/integration/test_wandb_outage.py": 41,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (:data:`SLOWEST_FILES`), the rest in their order after them."""
    items.sort(key=lambda item: -SLOWEST_FILES.get(item.nodeid.partition("::")[0], 0))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's stores (tiny models, offline wandb runs, ZenML's local store)."""
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a test module's torch work on one thread (``pytest.mark.usefixtures`` it).

    The tiny model's matmuls are too small to gain from threads; with another job on the
    cores (a ``make demo`` run), OpenMP threads spin against it and a step takes ~8x longer.
    """
    with _one_torch_thread():
        yield


@pytest.fixture(scope="session", autouse=True)
def dvc_data() -> Path:
    """``data/nizami.jsonl``, pulled from the repo's DVC remote if the checkout lacks it.

    A fresh clone has only the ``.dvc`` pointer; the file itself comes from ``dvc-store/``.
    """
    if not DATA_FILE.is_file():
        from dvc.repo import Repo

        with Repo(str(ROOT)) as repo:
            repo.pull(targets=[f"{DATA_FILE}.dvc"])  # absolute: DVC resolves against the cwd
    assert DATA_FILE.is_file(), f"{DATA_FILE} is missing and dvc pull did not bring it back"
    return DATA_FILE


@pytest.fixture(scope="session")
def kaggle_image() -> str:
    """The interpreter of a Python 3.12 environment prepared like Kaggle's image, for the
    emulator's kernels (built once, then cached under ``~/.cache/nizami/kaggle-image``)."""
    from kaggle_emulator.image import prepare_image

    return str(prepare_image())


@pytest.fixture(scope="session")
def tiny_config() -> PipelineConfig:
    """The tests' pipeline config: a random tiny Qwen3 and the shipped data."""
    return load_config(TINY_CONFIG)


@pytest.fixture(scope="session")
def tiny_base_dir(tiny_config: PipelineConfig) -> Path:
    """The tiny base model's directory (built once into the session's cache)."""
    from steps.core.modeling import resolve_base_model

    with _one_torch_thread():
        return resolve_base_model(tiny_config.base_model)


@pytest.fixture(scope="session")
def tiny_split(tiny_config: PipelineConfig, tiny_base_dir: Path):
    """The shipped data, split and rendered with the tiny tokenizer (a ``DatasetSplit``)."""
    from steps.core.data.dataset import load_dataset
    from steps.core.modeling import load_tokenizer

    split, _ = load_dataset(
        tiny_config.data, load_tokenizer(tiny_base_dir), tiny_config.train.max_length
    )
    return split


@pytest.fixture(scope="session")
def tiny_adapter(tiny_config, tiny_base_dir: Path, tiny_split, tmp_path_factory):
    """A LoRA adapter trained on the tiny model with the tiny config (a ``TrainResult``)."""
    from steps.core.train.launch import train_lora

    out_dir = tmp_path_factory.mktemp("tiny-adapter") / "adapter"
    with _one_torch_thread():
        return train_lora(
            tiny_base_dir, tiny_split.train, tiny_config.lora, tiny_config.train, out_dir
        )
