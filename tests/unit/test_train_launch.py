"""One process per GPU: the launch decision, and DDP on the CPU (gloo) against one process."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import pytest

from steps.core.train.launch import LaunchPlan, choose_launch, train_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# Two ranks each take half of every global batch and DDP averages their gradients; the loss is
# the same function of the same examples, summed in another order.
LOSS_TOLERANCE = 0.02


@pytest.mark.parametrize(
    ("gpus", "processes", "expected"),
    [
        (0, None, LaunchPlan(processes=1)),
        (1, None, LaunchPlan(processes=1)),
        (2, None, LaunchPlan(processes=2, backend="nccl")),  # Kaggle's "GPU T4 x2"
        (4, None, LaunchPlan(processes=4, backend="nccl")),
        (2, 1, LaunchPlan(processes=1)),
        (0, 2, LaunchPlan(processes=2, backend="gloo")),  # DDP on a CPU: tests
    ],
)
def test_one_process_per_visible_gpu(gpus, processes, expected) -> None:
    assert choose_launch(gpus, processes) == expected


def test_more_processes_than_gpus_is_refused() -> None:
    with pytest.raises(ValueError, match="train.processes = 3 but only 2 GPUs"):
        choose_launch(2, 3)


class _FakeRun:
    def __init__(self) -> None:
        self.logged: list[dict] = []

    def log(self, values: dict) -> None:
        self.logged.append(values)


@pytest.mark.e2e
def test_two_gloo_processes_train_like_one(
    tiny_base_dir, tiny_split, tiny_config, tmp_path, monkeypatch
) -> None:
    recipe = tiny_config.train.model_copy(
        update={"batch_size": 8, "max_length": 128, "logging_steps": 1}
    )
    rows = tiny_split.train[:48]
    run = _FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", SimpleNamespace(run=run))

    one = train_lora(tiny_base_dir, rows, tiny_config.lora, recipe, tmp_path / "one")
    two = train_lora(tiny_base_dir, rows, tiny_config.lora,
                     recipe.model_copy(update={"processes": 2}), tmp_path / "two",
                     report_to="wandb")

    assert two.plan["world_size"] == 2 and two.plan["micro_batch"] == 4
    assert two.plan["grad_accum"] == 1  # 2 processes × 4 = the global batch of 8
    assert two.metrics["train_steps"] == one.metrics["train_steps"] == 6
    assert math.isclose(
        two.metrics["last_logged_loss"], one.metrics["last_logged_loss"], abs_tol=LOSS_TOLERANCE
    )
    saved = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert saved == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert saved.count("adapter_model.safetensors") == 1
    # one set of logs: rank 0's history, replayed once into this process's tracker run
    losses = [entry for entry in run.logged if "train/loss" in entry]
    assert [e["train/global_step"] for e in losses] == [1, 2, 3, 4, 5, 6]
