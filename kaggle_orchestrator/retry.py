"""The one retry policy of every call to the Kaggle API (tenacity).

Retried: HTTP 429 and 5xx answers, connection errors and timeouts. Not retried: anything else
(a 401, 403, 404 or a 400 will not get better). Bounded: ``max_retries`` retries, waits
doubling from ``backoff_s`` up to 60 s with a little jitter, unless the answer says how long to
wait: ``Retry-After`` in either of its forms, capped at 5 minutes (the rule every HTTP boundary
shares, :mod:`http_backoff`).
Each retry is logged with what failed and how long it waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from http_backoff import status_of, wait_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["call_with_retries", "is_transient", "retrying", "status_of"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Whether retrying could help: 429/5xx, a dropped connection, a timeout."""
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    return status_of(error) in RETRY_STATUSES


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
