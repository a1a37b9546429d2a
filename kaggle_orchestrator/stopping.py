"""One way to stop a Kaggle kernel: once, and not cut short by a second signal.

Ctrl-C in a terminal sends SIGINT to every process of the foreground group, CI and ZenML's
cancel send SIGTERM, and an impatient user presses Ctrl-C twice. The standalone operator's
entrypoint therefore runs in its own session (only the operator signals it, once), both
processes turn SIGTERM into the same ``KeyboardInterrupt`` as Ctrl-C, and the kernel's deletion
(Kaggle's only way to stop a session) runs with further SIGINT/SIGTERM held back: they are
noted in the log and dropped, so the GPU session cannot be left running by a second signal.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within: SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does (main thread only)."""
    if not _main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextlib.contextmanager
def signals_held(what: str) -> Iterator[None]:
    """Within: SIGINT and SIGTERM do not interrupt ``what``; each is logged and dropped."""
    if not _main_thread():
        yield
        return

    def note(signum: int, frame: Any) -> None:
        log.warning("%s received while %s: it finishes first", signal.Signals(signum).name, what)

    before = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def delete_kernel(client: Any, slug: str) -> None:
    """Stop the kernel ``slug`` by deleting it, without being cut short by a signal."""
    with signals_held(f"deleting Kaggle kernel {slug}"):
        log.warning("stopping: deleting Kaggle kernel %s", slug)
        client.delete(slug, missing_ok=True)
        log.warning("Kaggle kernel %s deleted; its GPU session is stopped", slug)
