"""The one retry policy of every call to the Kaggle API (tenacity).

Retried: HTTP 429 and 5xx answers, connection errors and timeouts. Not retried: anything else
(a 401, 403, 404 or a 400 will not get better). Bounded: ``max_retries`` retries, waits
doubling from ``backoff_s`` up to 60 s with a little jitter, unless the answer says how long to
wait: ``Retry-After`` in either of its forms (seconds, or an HTTP date), capped at 5 minutes.
Each retry is logged with what failed and how long it waits.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 300.0


def status_of(error: BaseException) -> int | None:
    """The HTTP status of a ``requests`` error, if it has an answer."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def is_transient(error: BaseException) -> bool:
    """Whether retrying could help: 429/5xx, a dropped connection, a timeout."""
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    return status_of(error) in RETRY_STATUSES


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


def retrying(
    what: str,
    max_retries: int,
    backoff_s: float,
    before_retry: Callable[[BaseException], None] | None = None,
) -> Retrying:
    """The policy for one call named ``what`` (``before_retry`` runs before each retry)."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("Kaggle API %s: %s; retry %d/%d in %.1fs", what, error,
                    state.attempt_number, max_retries, state.upcoming_sleep)
        if before_retry is not None and error is not None:
            before_retry(error)

    return Retrying(
        stop=stop_after_attempt(max_retries + 1),
        retry=retry_if_exception(is_transient),
        wait=wait_retry_after(wait_exponential_jitter(initial=backoff_s, max=60.0, jitter=1.0)),
        before_sleep=before_sleep,
        reraise=True,
    )


def call_with_retries(what: str, fn: Callable[[], T], max_retries: int, backoff_s: float,
                      before_retry: Callable[[BaseException], None] | None = None) -> T:
    """``fn()`` under the policy; the last error is re-raised as it is."""
    return retrying(what, max_retries, backoff_s, before_retry)(fn)
