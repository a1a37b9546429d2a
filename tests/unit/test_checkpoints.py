"""Checkpoints: cadence, keep-last-two, the time budget, finding them, and resuming from them."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from steps.core.train.checkpoints import (
    MARKER,
    CheckpointInfo,
    TrainingInterrupted,
    find_checkpoint,
    time_budget_callback,
)
from steps.core.train.launch import train_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# Resuming restores weights, optimizer, scheduler, RNG and the data position, so on a CPU the
# resumed run repeats the uninterrupted one up to float summation order.
LOSS_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def rows(tiny_split):
    return tiny_split.train[:48]  # 6 optimizer steps of 8 examples


@pytest.fixture
def recipe(tiny_config):
    return tiny_config.train.model_copy(
        update={"batch_size": 8, "max_length": 128, "logging_steps": 1,
                "checkpoint_every_steps": 2}
    )


class _Crash(Exception):
    """Stands in for a killed process."""


def _crash_after(step: int):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Crash(f"killed after step {step}")

    return Crash()


def _saves_seen():
    """A callback recording, at every save, the step and the checkpoint folders on disk."""
    from transformers import TrainerCallback

    class Seen(TrainerCallback):
        def __init__(self) -> None:
            self.saves: list[tuple[int, list[str], bool]] = []

        def on_save(self, args, state, control, **kwargs):
            folders = sorted(p.name for p in Path(args.output_dir).glob("checkpoint-*"))
            marked = all((Path(args.output_dir) / f / MARKER).is_file() for f in folders)
            self.saves.append((state.global_step, folders, marked))

    return Seen()


def _losses(result) -> list[float]:
    return [e["loss"] for e in result.log_history if "loss" in e]


def test_checkpoints_every_n_steps_keep_the_last_two_and_go_after_success(
    tiny_base_dir, tiny_config, rows, recipe, tmp_path
) -> None:
    seen = _saves_seen()
    result = train_lora(tiny_base_dir, rows, tiny_config.lora, recipe, tmp_path / "adapter",
                        checkpoint_dir=tmp_path / "ckpt", callbacks=[seen])

    assert seen.saves == [
        (2, ["checkpoint-2"], True),
        (4, ["checkpoint-2", "checkpoint-4"], True),
        (6, ["checkpoint-4", "checkpoint-6"], True),
    ]
    assert result.metrics["train_steps"] == 6 and result.resumed_from_step is None
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert list((tmp_path / "ckpt").iterdir()) == []  # removed once the adapter is saved


def test_a_killed_run_resumes_from_its_last_checkpoint_found_anywhere_below_a_folder(
    tiny_base_dir, tiny_config, rows, recipe, tmp_path, caplog
) -> None:
    lora = tiny_config.lora
    whole = train_lora(tiny_base_dir, rows, lora, recipe, tmp_path / "whole")

    with pytest.raises(_Crash):
        train_lora(tiny_base_dir, rows, lora, recipe, tmp_path / "a1",
                   checkpoint_dir=tmp_path / "working", callbacks=[_crash_after(5)])
    # Like Kaggle: the previous version's output is mounted read-only somewhere under input/.
    mounted = tmp_path / "input" / "notebooks" / "me" / "nizami-train"
    shutil.copytree(tmp_path / "working", mounted / "checkpoints")
    with caplog.at_level("INFO", logger="steps.core.train.process"):
        resumed = train_lora(tiny_base_dir, rows, lora, recipe, tmp_path / "a2",
                             checkpoint_dir=tmp_path / "fresh", resume_from=[tmp_path / "input"])

    assert resumed.resumed_from_step == 4 and resumed.max_steps == 6
    assert resumed.resumed_from.startswith(str(mounted))
    assert "resumed from step 4 of 6" in caplog.text
    redone = 5 - resumed.resumed_from_step
    assert redone <= recipe.checkpoint_every_steps
    assert resumed.metrics["train_steps"] == whole.metrics["train_steps"] == 6
    assert resumed.metrics["steps_this_attempt"] == 2
    assert math.isclose(
        resumed.metrics["last_logged_loss"], whole.metrics["last_logged_loss"],
        abs_tol=LOSS_TOLERANCE,
    )
    assert _losses(resumed) == pytest.approx(_losses(whole), abs=LOSS_TOLERANCE)


def test_time_budget_checkpoints_stops_and_the_rerun_finishes(
    tiny_base_dir, tiny_config, rows, recipe, tmp_path
) -> None:
    tight = recipe.model_copy(update={"time_budget_s": 1e-6, "checkpoint_every_steps": None})

    with pytest.raises(TrainingInterrupted, match="stopped at step 1 of 6") as stop:
        train_lora(tiny_base_dir, rows, tiny_config.lora, tight, tmp_path / "a",
                   checkpoint_dir=tmp_path / "ckpt")
    assert (stop.value.checkpoint / MARKER).is_file()
    assert stop.value.checkpoint.name == "checkpoint-1"

    done = train_lora(tiny_base_dir, rows, tiny_config.lora,
                      tight.model_copy(update={"time_budget_s": None}), tmp_path / "a",
                      checkpoint_dir=tmp_path / "ckpt")
    assert done.resumed_from_step == 1 and done.metrics["train_steps"] == 6


def test_time_budget_stops_before_the_next_step_would_cross_it() -> None:
    from transformers import TrainerControl, TrainerState

    now = [0.0]
    budget = time_budget_callback(35.0, clock=lambda: now[0])
    state, args = TrainerState(max_steps=10), SimpleNamespace(device="cpu")
    control = TrainerControl()
    budget.on_train_begin(args, state, control)
    for step in range(1, 5):
        budget.on_step_begin(args, state, control)
        now[0] += 10.0  # every step takes 10 s
        state.global_step = step
        budget.on_step_end(args, state, control)
        if control.should_training_stop:
            break
    # after step 3, 30 s are used and a 10 s step would end at 40 s > 35 s
    assert budget.stopped_at == 3 and control.should_save


def _marker(folder, step, fingerprint="run-a", state=True):
    folder.mkdir(parents=True)
    info = CheckpointInfo(path=folder, step=step, max_steps=10, fingerprint=fingerprint)
    (folder / MARKER).write_text(info.model_dump_json())
    if state:
        (folder / "trainer_state.json").write_text("{}")


def test_find_checkpoint_takes_the_newest_complete_one_of_the_same_run(tmp_path) -> None:
    _marker(tmp_path / "a" / "deep" / "checkpoint-4", 4)
    _marker(tmp_path / "b" / "checkpoint-6", 6)
    _marker(tmp_path / "b" / "checkpoint-8", 8, state=False)  # killed while saving
    _marker(tmp_path / "c" / "checkpoint-9", 9, fingerprint="another-run")
    (tmp_path / "d" / "checkpoint-10").mkdir(parents=True)  # no marker: never completed

    found = find_checkpoint([tmp_path / "missing", tmp_path], "run-a")

    assert found is not None and found.step == 6
    assert found.path == tmp_path / "b" / "checkpoint-6"
    assert find_checkpoint([tmp_path], "nothing-like-it") is None


def test_the_environment_moves_checkpoints_and_adds_resume_folders(
    tiny_config, monkeypatch, tmp_path
) -> None:
    import os

    from helpers import ROOT

    from steps.core.paths import checkpoint_root, resume_dirs

    monkeypatch.delenv("NIZAMI_CHECKPOINTS", raising=False)
    monkeypatch.delenv("NIZAMI_RESUME_FROM", raising=False)
    configured = tiny_config.train.checkpoint_dir
    assert checkpoint_root(configured) == ROOT / "outputs" / "tiny" / "checkpoints"
    assert resume_dirs() == []

    monkeypatch.setenv("NIZAMI_CHECKPOINTS", str(tmp_path / "working"))
    monkeypatch.setenv("NIZAMI_RESUME_FROM", os.pathsep.join(["/kaggle/input", str(tmp_path)]))
    assert checkpoint_root(tiny_config.train.checkpoint_dir) == tmp_path / "working"
    assert resume_dirs() == [Path("/kaggle/input"), tmp_path]


@pytest.mark.parametrize(
    ("field", "value"),
    [("gradient_checkpointing", "maybe"), ("checkpoint_every_steps", 0),
     ("time_budget_s", -1), ("attn_implementation", "flash")],
)
def test_bad_train_settings_are_rejected(tiny_config, field, value) -> None:
    from pydantic import ValidationError

    from steps.core.config import TrainConfig

    with pytest.raises(ValidationError, match=field):
        TrainConfig.model_validate(tiny_config.train.model_dump() | {field: value})


def test_find_checkpoint_follows_links_but_not_in_circles(tmp_path) -> None:
    _marker(tmp_path / "real" / "checkpoint-3", 3)
    (tmp_path / "mounted").mkdir()
    (tmp_path / "mounted" / "out").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "mounted")

    found = find_checkpoint([tmp_path / "mounted"], "run-a")

    assert found is not None and found.step == 3
