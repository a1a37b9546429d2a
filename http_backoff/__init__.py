"""The ``Retry-After`` rule every HTTP boundary of the project shares (tenacity).

Each integration owns its retry policy: what is transient, how many retries, how the waits
grow (``kaggle_orchestrator/retry.py`` for the Kaggle API, ``hf_registry/retry.py`` for the
Hub). What they share is only this: the HTTP status of a failed answer, and how long the answer
itself says to wait (``Retry-After`` in either of its forms: seconds, or an HTTP date; capped at
5 minutes). It works with any client whose errors carry ``response.status_code`` and
``response.headers`` (``requests``, ``httpx``), and belongs to neither integration.
"""

from __future__ import annotations

import email.utils
import time

from tenacity import RetryCallState
from tenacity.wait import wait_base

__all__ = ["MAX_RETRY_AFTER_S", "retry_after_s", "status_of", "wait_retry_after"]
MAX_RETRY_AFTER_S = 300.0


def status_of(error: BaseException | None) -> int | None:
    """The HTTP status of a client error, if it has an answer."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def retry_after_s(error: BaseException | None) -> float | None:
    """``Retry-After`` of the failed answer, in seconds (both forms), or None."""
    response = getattr(error, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming
    """``Retry-After`` when the answer has one, else ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        told = retry_after_s(error)
        return self.fallback(retry_state) if told is None else told
