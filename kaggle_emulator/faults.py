"""Faults a test (or a curious user) can inject into the emulator.

Each fault is a small pydantic model with a ``kind``; the same JSON shape is accepted by the
Python API (``Faults.add``) and the admin endpoint (``POST /_emulator/faults``), e.g.
``{"kind": "http_error", "method": "SaveKernel", "status": 429, "times": 2, "retryAfter": 1}``.
Field names are accepted in snake_case or camelCase, like the Kaggle wire format.

One-shot faults (``times``) are consumed by the calls they hit; ``quota_exhausted`` and
``gpu_sessions`` are states that hold until ``Faults.clear()`` (or ``DELETE /_emulator/faults``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

# Pseudo method names for the two non-RPC routes a fault can hit.
UPLOAD = "upload"  # PUT <createUrl> of a blob upload
DOWNLOAD = "download"  # GET of a signed file URL (kernel output, dataset archive)
LOG_STREAM = "logs_stream"  # GET of a kernel's log stream


class _Fault(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=False
    )


class HttpErrorFault(_Fault):
    """Answer the next ``times`` calls to ``method`` with an HTTP error instead of serving them.

    ``method`` is an RPC method name (``SaveKernel``, ``GetKernelSessionStatus``...), optionally
    with its service (``kernels.KernelsApiService/SaveKernel``), ``upload`` / ``download`` for the
    blob PUT and signed-file GET, ``logs_stream`` for the log stream, or ``*`` for any call. The
    body is Kaggle's JSON error ``{"code": status, "message": ...}`` or, with ``html=True``, an
    HTML page (as Kaggle's front end sometimes sends for 429/5xx). With ``served=True`` the
    call is carried out and only its answer is replaced by the error.
    """

    kind: Literal["http_error"] = "http_error"
    method: str
    status: int = Field(500, ge=400, le=599)
    times: int = Field(1, ge=1)
    retry_after: int | None = Field(None, ge=0, description="seconds, sent as Retry-After")
    message: str | None = None
    html: bool = False
    served: bool = Field(
        False, description="carry the call out first, then answer with the error (a gateway "
        "timeout after the work was done: the client cannot tell whether it happened)",
    )


class PushErrorFault(_Fault):
    """The next ``times`` SaveKernel calls answer 200 with ``{"error": message}`` (no version)."""

    kind: Literal["push_error"] = "push_error"
    message: str = "Kernel push error (injected by the emulator)"
    times: int = Field(1, ge=1)
    slug: str | None = None


class KernelErrorFault(_Fault):
    """The next ``times`` pushed kernels (optionally only ``slug``) end in ERROR.

    Their script is not run; the session writes ``log`` to stderr and exits 1, and
    GetKernelSessionStatus reports ``failureMessage: message``.
    """

    kind: Literal["kernel_error"] = "kernel_error"
    message: str = "Kernel failed (injected by the emulator)"
    log: str = (
        "Traceback (most recent call last):\n"
        '  File "/kaggle/src/script.py", line 1, in <module>\n'
        "RuntimeError: injected kernel failure\n"
    )
    times: int = Field(1, ge=1)
    slug: str | None = None


class KernelHangFault(_Fault):
    """The next ``times`` pushed kernels (optionally only ``slug``) stay RUNNING until deleted.

    The session is a real subprocess that prints one line and sleeps; it ignores the kernel's
    ``sessionTimeoutSeconds`` (a wedged Kaggle session does too). DeleteKernel kills it.
    """

    kind: Literal["kernel_hang"] = "kernel_hang"
    times: int = Field(1, ge=1)
    slug: str | None = None


class SlowResponseFault(_Fault):
    """Serve the next ``times`` calls to ``method``, then hold the answer for ``seconds``.

    The call takes effect (a dataset is created, a kernel pushed) but a client with a shorter
    timeout never sees the answer: what happens when Kaggle is slow and the client retries.
    """

    kind: Literal["slow_response"] = "slow_response"
    method: str
    seconds: float = Field(5.0, gt=0)
    times: int = Field(1, ge=1)


class KernelCancelFault(_Fault):
    """The next ``times`` pushed kernels (optionally only ``slug``) are cancelled from outside
    (as from Kaggle's UI): after ``after_s`` seconds of running the status is
    ``CANCEL_REQUESTED`` while the script goes on for ``ack_after_s`` more seconds, then the
    session is killed and the status is ``CANCEL_ACKNOWLEDGED``."""

    kind: Literal["kernel_cancel"] = "kernel_cancel"
    after_s: float = Field(1.0, ge=0)
    ack_after_s: float = Field(3.0, ge=0)
    times: int = Field(1, ge=1)
    slug: str | None = None


class KernelStopFault(_Fault):
    """The next ``times`` pushed kernels (optionally only ``slug``) are stopped by "Kaggle" as
    soon as their log contains ``after_log`` (a session limit, a preemption): the session is
    killed and ends in ERROR with ``message``; what it wrote to ``/kaggle/working`` stays."""

    kind: Literal["kernel_stop"] = "kernel_stop"
    after_log: str
    message: str = "Your notebook tried to run longer than the maximum allowed session time"
    times: int = Field(1, ge=1)
    slug: str | None = None


class QuotaExhaustedFault(_Fault):
    """The weekly GPU quota is used up: the quota statistics say so and GPU pushes are refused."""

    kind: Literal["quota_exhausted"] = "quota_exhausted"


class GpuSessionsFault(_Fault):
    """``count`` GPU sessions of the user are already running (kernels ``busy-gpu-session-N``).

    They are listed by ListKernels, report RUNNING, count against the concurrent GPU session
    limit (2, as on Kaggle) and end when deleted.
    """

    kind: Literal["gpu_sessions"] = "gpu_sessions"
    count: int = Field(1, ge=1)


Fault = Annotated[
    HttpErrorFault
    | PushErrorFault
    | KernelErrorFault
    | KernelHangFault
    | KernelCancelFault
    | KernelStopFault
    | SlowResponseFault
    | QuotaExhaustedFault
    | GpuSessionsFault,
    Field(discriminator="kind"),
]
FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)
KernelFault = KernelErrorFault | KernelHangFault | KernelCancelFault | KernelStopFault


def _method_matches(pattern: str, service: str, method: str) -> bool:
    if pattern == "*":
        return True
    if "/" in pattern:
        return pattern == f"{service}/{method}"
    return pattern == method


class Faults:
    """The pending faults of one emulator; thread-safe.

    Args:
        on_gpu_sessions: Called with the count when a ``gpu_sessions`` fault is added (the
            emulator starts that many phantom GPU sessions).
    """

    def __init__(self, on_gpu_sessions: Callable[[int], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        self._quota_exhausted = False
        self._on_gpu_sessions = on_gpu_sessions

    # --- adding ----------------------------------------------------------------------------

    def add(self, fault: Fault | Mapping[str, Any]) -> Fault:
        """Add a fault given as a model or as its JSON mapping (``{"kind": ..., ...}``).

        Raises:
            pydantic.ValidationError: If the mapping is not a valid fault.
        """
        parsed = FAULT_ADAPTER.validate_python(
            fault.model_dump() if isinstance(fault, BaseModel) else fault
        )
        if isinstance(parsed, QuotaExhaustedFault):
            with self._lock:
                self._quota_exhausted = True
        elif isinstance(parsed, GpuSessionsFault):
            if self._on_gpu_sessions is None:
                raise RuntimeError("gpu_sessions faults need an emulator behind them")
            self._on_gpu_sessions(parsed.count)
        else:
            with self._lock:
                self._pending.append(parsed)
        return parsed

    def http_error(
        self,
        method: str,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: int | None = None,
        message: str | None = None,
        html: bool = False,
        served: bool = False,
    ) -> HttpErrorFault:
        """Answer the next ``times`` calls to ``method`` with HTTP ``status`` (``served``: after
        carrying them out)."""
        fault = HttpErrorFault(
            method=method,
            status=status,
            times=times,
            retry_after=retry_after,
            message=message,
            html=html,
            served=served,
        )
        self.add(fault)
        return fault

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> HttpErrorFault:
        """429 Too Many Requests with ``Retry-After`` on the next ``times`` calls to ``method``."""
        return self.http_error(method, 429, times=times, retry_after=retry_after)

    def push_error(self, message: str, *, times: int = 1, slug: str | None = None) -> None:
        """The next SaveKernel answers 200 with ``{"error": message}``."""
        self.add(PushErrorFault(message=message, times=times, slug=slug))

    def kernel_error(
        self,
        message: str | None = None,
        log: str | None = None,
        *,
        times: int = 1,
        slug: str | None = None,
    ) -> None:
        """The next pushed kernel ends in ERROR with ``message`` and ``log`` (defaults given)."""
        fields: dict[str, Any] = {"times": times, "slug": slug}
        if message is not None:
            fields["message"] = message
        if log is not None:
            fields["log"] = log
        self.add(KernelErrorFault(**fields))

    def kernel_hang(self, *, times: int = 1, slug: str | None = None) -> None:
        """The next pushed kernel runs until it is deleted."""
        self.add(KernelHangFault(times=times, slug=slug))

    def slow_response(self, method: str, seconds: float = 5.0, *, times: int = 1) -> None:
        """Serve the next ``times`` calls to ``method`` but answer only after ``seconds``."""
        self.add(SlowResponseFault(method=method, seconds=seconds, times=times))

    def kernel_cancel(
        self, after_s: float = 1.0, ack_after_s: float = 3.0, *, times: int = 1,
        slug: str | None = None,
    ) -> None:
        """The next pushed kernel is cancelled from outside after ``after_s`` seconds."""
        self.add(KernelCancelFault(after_s=after_s, ack_after_s=ack_after_s, times=times,
                                   slug=slug))

    def kernel_stop(self, after_log: str, *, message: str | None = None, times: int = 1,
                    slug: str | None = None) -> None:
        """The next pushed kernel is stopped by Kaggle once its log contains ``after_log``."""
        fields: dict[str, Any] = {"after_log": after_log, "times": times, "slug": slug}
        if message is not None:
            fields["message"] = message
        self.add(KernelStopFault(**fields))

    def exhaust_gpu_quota(self) -> None:
        """Use up the weekly GPU quota (until ``clear``)."""
        self.add(QuotaExhaustedFault())

    def occupy_gpu_sessions(self, count: int = 2) -> None:
        """Start ``count`` phantom GPU sessions of the user (Kaggle allows 2 at once)."""
        self.add(GpuSessionsFault(count=count))

    def clear(self) -> None:
        """Drop every pending fault and restore the GPU quota (phantom sessions stay running
        until deleted, like real ones)."""
        with self._lock:
            self._pending.clear()
            self._quota_exhausted = False

    # --- reading -------------------------------------------------------------------------

    @property
    def quota_exhausted(self) -> bool:
        """Whether a ``quota_exhausted`` fault is in force."""
        with self._lock:
            return self._quota_exhausted

    def pending(self) -> list[Fault]:
        """Copies of the one-shot faults not yet consumed."""
        with self._lock:
            return [f.model_copy() for f in self._pending]

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view: pending faults (camelCase) and the quota state."""
        return {
            "pending": [f.model_dump(by_alias=True) for f in self.pending()],
            "quotaExhausted": self.quota_exhausted,
        }

    # --- consuming (the emulator calls these) ----------------------------------------------

    def take_http_error(self, service: str, method: str) -> HttpErrorFault | None:
        """Consume one use of the first HTTP error fault matching this call, if any."""
        return self._take(
            lambda f: isinstance(f, HttpErrorFault) and _method_matches(f.method, service, method)
        )

    def take_slow_response(self, service: str, method: str) -> SlowResponseFault | None:
        """Consume one use of the first slow-response fault matching this call, if any."""
        return self._take(
            lambda f: isinstance(f, SlowResponseFault)
            and _method_matches(f.method, service, method)
        )

    def take_push_error(self, slug: str) -> PushErrorFault | None:
        """Consume one use of the first push error fault for ``slug``, if any."""
        return self._take(lambda f: isinstance(f, PushErrorFault) and f.slug in (None, slug))

    def take_kernel_fault(self, slug: str) -> KernelFault | None:
        """Consume one use of the first kernel error/hang/cancel fault for ``slug``, if any."""
        return self._take(
            lambda f: isinstance(f, KernelFault) and f.slug in (None, slug)
        )

    def _take(self, match: Callable[[Any], bool]) -> Any:
        with self._lock:
            for fault in self._pending:
                if match(fault):
                    taken = fault.model_copy()
                    fault.times -= 1
                    if fault.times <= 0:
                        self._pending.remove(fault)
                    return taken
        return None
