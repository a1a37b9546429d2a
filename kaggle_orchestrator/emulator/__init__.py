"""A local Kaggle API emulator: dry-run your kernel before spending GPU quota.

It speaks the wire protocol of the real service, as the ``kaggle`` 2.2.5 CLI and kagglesdk
0.1.38 use it (``POST /api/v1/<service>/<Method>``, camelCase JSON, HTTP Basic auth, real
HTTP status codes), and runs every pushed kernel version in a subprocess sandbox laid out like
a Kaggle session (``/kaggle/input/<dataset>``, ``/kaggle/working``) with the same Python
interpreter, so a kernel and its datasets can be tried locally before a real push::

    .venv/bin/python -m kaggle_orchestrator.emulator --port 8777 --root /tmp/kaggle-emu

It prints the environment that points the real ``kaggle`` CLI at it; then, in another shell::

    kaggle kernels push -p my-kernel/          # runs my-kernel's code_file in a sandbox
    kaggle kernels status <user>/<slug>
    kaggle kernels output <user>/<slug> -p out/

A kernel script finds its folders through one setting, ``NIZAMI_KAGGLE_ROOT`` (the sandbox's
``kaggle`` folder; on Kaggle it is unset and the script falls back to ``/kaggle``). The sandbox
inherits no credential from the emulator's environment.

Tests use it in-process (``KaggleEmulator`` below): faults are injected per test
(``emulator.faults``: 429 with Retry-After, 5xx, a kernel ending in ERROR, a kernel that hangs,
exhausted GPU quota, busy GPU sessions), and everything received is kept
(``emulator.recording``) so a test can prove no secret reached "Kaggle". The same is reachable
over HTTP (``/_emulator/faults``, ``/_emulator/received``) when it runs in another process.

Not emulated: competitions, models, Kaggle Secrets, internet on/off, accelerators (a GPU
kernel runs on this machine's CPU/GPU), R kernels, IPython magics in notebooks.
"""

from kaggle_orchestrator.emulator.faults import (
    Fault,
    Faults,
    GpuSessionsFault,
    HttpErrorFault,
    KernelErrorFault,
    KernelHangFault,
    PushErrorFault,
    QuotaExhaustedFault,
)
from kaggle_orchestrator.emulator.image import prepare_image
from kaggle_orchestrator.emulator.recording import Recording
from kaggle_orchestrator.emulator.redirect import client_env, kagglesdk_endpoint
from kaggle_orchestrator.emulator.sandbox import KernelVersion, Status
from kaggle_orchestrator.emulator.server import DEFAULT_KEY, DEFAULT_USERNAME, KaggleEmulator

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
