"""Follow a pushed kernel version: live log lines, status, the timeout, Ctrl-C.

The log comes from the client's log stream (``KaggleApi.kernels_logs_stream``: a live SSE feed
while the session runs, the stored log afterwards), read in a background thread so a line
reaches the step log as soon as the kernel prints it. The stream replays from the start when it
reconnects, and the stored log is the same text, so every source is de-duplicated by the number
of characters already shown: each kernel line appears in the step log exactly once.

The stream also ends without an error while the session has not finished: while it is QUEUED
(there is no live feed yet, only the empty stored log) and when an idle connection is cut (by
Kaggle's front end, or by the client's read timeout when the kernel prints nothing for a
minute). Neither is a failure: the reader connects again (after ``RECONNECT_S``) until the
follower has seen the session finish. Only errors (5xx, refused connections...) count, and after
``STREAM_FAILURES`` of them in a row the follower falls back to fetching the stored log on every
status poll.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kaggle_orchestrator import kernel
from kaggle_orchestrator.client import KaggleClient
from kaggle_orchestrator.stopping import delete_kernel

log = logging.getLogger(__name__)
STREAM_FAILURES = 3  # consecutive stream errors before falling back to polling the log
RECONNECT_S = 2.0  # wait before reading again a stream that ended while the session goes on


class KernelFailedError(RuntimeError):
    """The Kaggle kernel ended in ERROR/CANCEL, timed out, or left no outputs."""


class KernelStopped(KeyboardInterrupt):
    """Interrupted while following: the kernel has been deleted already (callers must not
    delete it again)."""


@dataclass
class LogText:
    """The kernel's log text seen so far, and how much of it has been shown."""

    shown: int = 0
    pending: str = ""
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def offer(self, text: str, start: int) -> None:
        """Text that begins at character ``start`` of the log; only the unseen part is kept."""
        with self.lock:
            seen = self.shown + len(self.pending)
            if start + len(text) <= seen:
                return
            self.pending += text[max(seen - start, 0):]
            *complete, self.pending = self.pending.split("\n")
            for line in complete:
                self.shown += len(line) + 1
            self.lines += complete
        if complete:
            self.arrived.set()

    def wait(self, timeout: float) -> None:
        """Until a new line arrives or ``timeout`` seconds passed."""
        self.arrived.wait(timeout)
        self.arrived.clear()

    def flush(self, final: bool = False) -> list[str]:
        """Complete lines not yet taken (and, at the end, the last partial line)."""
        with self.lock:
            if final and self.pending:
                self.lines.append(self.pending)
                self.shown += len(self.pending)
                self.pending = ""
            taken, self.lines = self.lines, []
        return taken


class LogStreamReader(threading.Thread):
    """Reads the log stream of ``ref`` into ``text`` until the session has finished."""

    def __init__(self, client: KaggleClient, ref: str, text: LogText) -> None:
        super().__init__(daemon=True, name=f"kaggle-log-{ref}")
        self.client, self.ref, self.text = client, ref, text
        self.failed = False  # gave up: the caller polls the stored log instead
        self.finished = threading.Event()  # set by the follower: the session has ended
        self.done = threading.Event()
        self.errors: queue.Queue[str] = queue.Queue()
        self.reconnects = 0  # normal ends and idle cut-offs (not errors)

    def run(self) -> None:
        failures = 0
        try:
            while not self.finished.is_set():
                position = 0
                try:
                    for chunk in self.client.log_stream(self.ref):
                        self.text.offer(chunk, position)
                        position += len(chunk)
                        failures = 0
                except Exception as error:  # a broken stream is not a failed kernel
                    if not _idle_cut(error):
                        failures += 1
                        self.errors.put(f"{type(error).__name__}: {error}")
                        if failures >= STREAM_FAILURES:
                            self.failed = True  # nobody waits for a stream that is gone
                            return
                        self.finished.wait(min(2.0 * failures, 10.0))
                        continue
                # Ended (END_OF_LOG, the stored log, an idle cut-off): read again unless the
                # session is over; lines already shown are skipped by their position.
                self.reconnects += 1
                self.finished.wait(RECONNECT_S)
        finally:
            self.done.set()


def _idle_cut(error: BaseException) -> bool:
    """A stream closed for being idle (read timeout), not a failure of the service."""
    import requests

    return isinstance(error, requests.Timeout) or "timed out" in str(error).lower()


def follow_kernel(client: KaggleClient, slug: str, ref: str, url: str, timeout_s: float,
                  poll_interval_s: float, wait: Callable[[float], object] | None = None) -> str:
    """Follow ``ref`` (``owner/slug/N``) to its end, streaming its log into this log.

    Lines are shown as they arrive (this thread logs them, so ZenML's step log gets them);
    the status is polled every ``poll_interval_s``, backing off to 4x while the log is quiet.

    Args:
        wait: How to wait between rounds (default: until a log line arrives or the next poll).

    Returns:
        The final status (``COMPLETE``).

    Raises:
        KernelFailedError: The kernel ended ERROR/CANCEL_ACKNOWLEDGED, or ran past
            ``timeout_s`` (then it is deleted). Ctrl-C deletes it too, then re-raises.
    """
    started = time.monotonic()
    text = LogText()
    reader = LogStreamReader(client, ref, text)
    reader.start()
    wait = wait or text.wait
    status, failure, interval, next_poll = "QUEUED", "", poll_interval_s, 0.0
    version = ref.rsplit("/", 1)[1]
    all_lines: list[str] = []
    lines_at_last_poll = -1

    def show(final: bool = False) -> int:
        lines = text.flush(final)
        elapsed = time.monotonic() - started
        # A line printed by the kernel shows its session runs, even before the next poll says so.
        label = "running" if status == "QUEUED" else status.lower()
        for line in lines:
            log.info("[kaggle %s %5.0fs] %s", label, elapsed, line)
        all_lines.extend(lines)
        return len(lines)

    try:
        while True:
            if time.monotonic() >= next_poll:
                status, failure = client.status(ref)
                while not reader.errors.empty():
                    log.warning("Kaggle log stream of %s: %s", ref, reader.errors.get())
                if status in kernel.FINISHED:
                    break  # the stored log is read once, below
                if reader.failed:  # the stream is gone for good: poll the stored log
                    text.offer("".join(_log_chunks(client, ref)), 0)
                elapsed = time.monotonic() - started
                if elapsed > timeout_s:
                    show()
                    client.delete(slug, missing_ok=True)
                    raise KernelFailedError(
                        f"Kaggle kernel {url} (version {version}) still {status} after "
                        f"{elapsed:.0f}s > timeout_s={timeout_s:.0f}: deleted it.\n"
                        f"last log lines:\n{kernel.tail(all_lines)}"
                    )
                quiet, lines_at_last_poll = len(all_lines) == lines_at_last_poll, len(all_lines)
                interval = min(interval * 1.5, 4 * poll_interval_s) if quiet else poll_interval_s
                next_poll = time.monotonic() + interval
            show()
            wait(max(0.0, next_poll - time.monotonic()))
    except KeyboardInterrupt as interrupt:
        reader.finished.set()
        delete_kernel(client, slug)
        raise KernelStopped(str(interrupt) or "interrupted") from interrupt
    except BaseException:
        reader.finished.set()
        raise
    reader.finished.set()
    reader.done.wait(timeout=10)  # the reader stops between two reads
    text.offer("".join(_log_chunks(client, ref)), 0)  # whatever the stream missed
    show(final=True)
    log.info("Kaggle kernel %s finished: %s after %.0fs", slug, status,
             time.monotonic() - started)
    if status in kernel.FAILED:
        raise KernelFailedError(
            f"Kaggle kernel {url} (version {version}) ended {status}: "
            f"{failure or 'no failure message'}\nlast log lines:\n{kernel.tail(all_lines)}"
        )
    return status


def _log_chunks(client: KaggleClient, ref: str) -> list[str]:
    """The stored log of ``ref`` as the stream's chunks (the records' ``data``)."""
    return kernel.log_chunks(client.log(ref))
