"""What a kernel fault does to a running session (the faults themselves: ``faults.py``).

An error or hang fault replaces the pushed source with a script that fails or never ends; a
cancel fault makes the session ``CANCEL_REQUESTED`` and later kills it; a stop fault kills it
(ERROR, files kept) once its log shows a given text.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from kaggle_emulator.faults import (
    KernelCancelFault,
    KernelErrorFault,
    KernelFault,
    KernelHangFault,
    KernelStopFault,
)
from kaggle_emulator.isolation import kill_session

if TYPE_CHECKING:
    from kaggle_emulator.sandbox import KernelVersion

_HANG_SCRIPT = """\
import time
print("session started; it will not finish until the kernel is deleted (emulator fault)")
while True:
    time.sleep(60)
"""
_ERROR_SCRIPT = """\
import sys
sys.stderr.write({log!r})
sys.exit(1)
"""


def fault_script(fault: KernelFault | None) -> str | None:
    """The source that replaces the pushed one for an error or hang fault, else None."""
    if isinstance(fault, KernelHangFault):
        return _HANG_SCRIPT
    if isinstance(fault, KernelErrorFault):
        return _ERROR_SCRIPT.format(log=fault.log)
    return None


def start_fault(version: KernelVersion, fault: KernelFault | None) -> None:
    """Start what a cancel or stop fault does to the running ``version``, in a thread."""
    if isinstance(fault, KernelCancelFault):
        threading.Thread(target=_cancel_later, args=(version, fault), daemon=True).start()
    elif isinstance(fault, KernelStopFault):
        threading.Thread(target=_stop_on_log, args=(version, fault), daemon=True).start()


def _cancel_later(version: KernelVersion, fault: KernelCancelFault) -> None:
    """A cancel from outside: CANCEL_REQUESTED while the script goes on, then killed."""
    time.sleep(fault.after_s)
    from kaggle_emulator.sandbox import Status

    with version.lock:
        if version.status is not Status.RUNNING:
            return
        version.status = Status.CANCEL_REQUESTED
    time.sleep(fault.ack_after_s)
    if version.status is Status.CANCEL_REQUESTED:
        version.kill()


def _stop_on_log(version: KernelVersion, fault: KernelStopFault) -> None:
    """Kaggle stops the session (ERROR, its files kept) once its log shows ``after_log``."""
    while version.active:
        with version.lock:
            seen = "".join(r["data"] for r in version.records)
        if fault.after_log in seen:
            with version.lock:
                version.failure_message = fault.message
            process = version.process
            if process is not None and process.poll() is None:
                kill_session(process.pid, version.dir)
            return
        time.sleep(0.1)
