"""The checkpoint contract (``kaggle_orchestrator/checkpoint_contract.py``): the kernel, the
operator and the training code spell its variables and marker file the same way."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from uuid import UUID

from kaggle_orchestrator import checkpoint_contract as contract
from kaggle_orchestrator.flavors import KaggleStepOperatorConfig
from kaggle_orchestrator.kernel import KernelNames, kernel_script
from steps.core.paths import checkpoint_root, resume_dirs
from steps.core.train.checkpoints import MARKER, CheckpointInfo, find_checkpoint


def _kernel_config() -> dict:
    names = KernelNames.for_step_run("nizami", "train", UUID(int=1))
    script = kernel_script("owner", names, [])
    line = next(x for x in script.splitlines() if x.startswith("CONFIG: dict = "))
    return ast.literal_eval(line.removeprefix("CONFIG: dict = "))


def test_the_kernel_sets_the_contract_variables() -> None:
    config = _kernel_config()
    assert config["env"] == contract.KERNEL_ENV
    assert config["env"][contract.CHECKPOINTS_ENV] == config["checkpoints"]
    # under /kaggle/working: the failed version's output carries the checkpoints to the next
    assert config["checkpoints"].startswith("/kaggle/working/")


def test_the_training_code_reads_the_contract_variables(tiny_config, monkeypatch,
                                                        tmp_path) -> None:
    monkeypatch.setenv(contract.CHECKPOINTS_ENV, str(tmp_path / "working"))
    monkeypatch.setenv(contract.RESUME_FROM_ENV, os.pathsep.join([str(tmp_path / "input")]))
    assert checkpoint_root(tiny_config.train.checkpoint_dir) == tmp_path / "working"
    assert resume_dirs() == [tmp_path / "input"]


def test_the_operator_resumes_from_what_the_training_code_finds(tmp_path) -> None:
    assert MARKER == contract.MARKER
    assert KaggleStepOperatorConfig().resume_marker == contract.MARKER
    # a checkpoint laid out as the training code writes it, in a kernel's output
    working = tmp_path / "working"
    folder = working / Path(contract.KERNEL_CHECKPOINTS).name / "run-1" / "checkpoint-2"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}")
    info = CheckpointInfo(path=folder, step=2, max_steps=4, fingerprint="f")
    (folder / MARKER).write_text(info.model_dump_json())
    assert find_checkpoint([working], "f") is not None
    files = [p.relative_to(working).as_posix() for p in working.rglob("*") if p.is_file()]
    assert contract.has_checkpoint(files)
    assert not contract.has_checkpoint([f for f in files if not f.endswith(MARKER)])
