"""The checkpoint contract between the operator, the kernel and the training code.

A kernel version that fails after saving a checkpoint is resumed by the next one: the kernel
tells the training code where to save (``CHECKPOINTS_ENV``) and where earlier checkpoints may
be mounted (``RESUME_FROM_ENV``); the training code drops ``MARKER`` into each complete
checkpoint; the operator resumes only when a failed version's output holds one. This module is
the one place those names are spelled on the operator's side; the training code
(``steps.core``, which this package must not import) spells them too, and
``tests/unit/test_checkpoint_contract.py`` checks that every side agrees.
"""

from __future__ import annotations

from collections.abc import Iterable

CHECKPOINTS_ENV = "NIZAMI_CHECKPOINTS"  # where the training code saves its checkpoints
RESUME_FROM_ENV = "NIZAMI_RESUME_FROM"  # os.pathsep-separated folders searched for earlier ones
MARKER = "nizami-checkpoint.json"  # written into a checkpoint once it is complete
KERNEL_CHECKPOINTS = "/kaggle/working/checkpoints"  # in the kernel's output, so it survives
KERNEL_RESUME_FROM = "/kaggle/input"  # a previous version's output is attached under it
KERNEL_ENV = {CHECKPOINTS_ENV: KERNEL_CHECKPOINTS, RESUME_FROM_ENV: KERNEL_RESUME_FROM}


def has_checkpoint(output_files: Iterable[str], marker: str = MARKER) -> bool:
    """Whether a kernel version's output (paths relative to ``/kaggle/working``) holds a
    complete checkpoint: a ``marker`` somewhere under the checkpoints folder."""
    prefix = KERNEL_CHECKPOINTS.removeprefix("/kaggle/working/") + "/"
    return any(f.startswith(prefix) and f.rsplit("/", 1)[-1] == marker for f in output_files)
