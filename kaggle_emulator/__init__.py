"""A local Kaggle API emulator: dry-run your kernel before spending GPU quota.

It speaks the wire protocol of the real service, as the ``kaggle`` 2.2.5 CLI and kagglesdk
0.1.38 use it (``POST /api/v1/<service>/<Method>``, camelCase JSON, HTTP Basic auth or a Bearer
API token, real HTTP status codes, the SSE log stream), and runs every pushed kernel version the
way Kaggle does today (``sandbox.py``, ``isolation.py``): at the real ``/kaggle`` paths in its
own mount namespace, attached datasets at ``/kaggle/input/datasets/<owner>/<slug>`` read-only,
no network when the kernel's internet is off, on a Python 3.12 environment prepared like
Kaggle's image (``image.py``) that each session sees fresh::

    .venv/bin/python -m kaggle_emulator --port 8777 --token KGAT_dryrun

It prints the environment that points the real ``kaggle`` CLI at it; then, in another shell::

    kaggle kernels push -p my-kernel/          # runs my-kernel's code_file in a session
    kaggle kernels status <user>/<slug>
    kaggle kernels logs <user>/<slug> --follow
    kaggle kernels output <user>/<slug> -p out/

Tests use it in-process (``KaggleEmulator`` below): faults are injected per test
(``emulator.faults``: 429 with Retry-After, 5xx, slow answers, a kernel ending in ERROR, hanging,
or cancelled from outside, exhausted GPU quota, busy GPU sessions), and everything received is
kept (``emulator.recording``) so a test can prove no secret reached "Kaggle". The same is
reachable over HTTP (``/_emulator/faults``, ``/_emulator/received``) from another process.

A package of its own, beside the step operator (``kaggle_orchestrator``), which never imports it
(an import-linter contract in ``pyproject.toml``: no runtime package does); the emulator uses
only the upload guard's ``encodings`` from it.

Where it still differs from Kaggle is tabled in the README ("Dry-run on the local Kaggle
emulator"): no accelerators, a small image, models/competitions/Secrets/TPUs not emulated.
"""

from kaggle_emulator.faults import (
    Fault,
    Faults,
    GpuSessionsFault,
    HttpErrorFault,
    KernelErrorFault,
    KernelHangFault,
    PushErrorFault,
    QuotaExhaustedFault,
)
from kaggle_emulator.image import prepare_image
from kaggle_emulator.recording import Recording
from kaggle_emulator.redirect import client_env, kagglesdk_endpoint
from kaggle_emulator.sandbox import KernelVersion, Status
from kaggle_emulator.server import DEFAULT_KEY, DEFAULT_USERNAME, KaggleEmulator

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_USERNAME",
    "Fault",
    "Faults",
    "GpuSessionsFault",
    "HttpErrorFault",
    "KaggleEmulator",
    "KernelErrorFault",
    "KernelHangFault",
    "KernelVersion",
    "PushErrorFault",
    "QuotaExhaustedFault",
    "Recording",
    "Status",
    "client_env",
    "prepare_image",
    "kagglesdk_endpoint",
]
