"""The one retry policy of every call the registry makes to the Hub (tenacity).

``huggingface_hub`` retries, with its own ``http_backoff``, only what it knows to be safe: file
downloads, upload pre-checks and LFS parts. The API calls a registry makes (refs, tags, model
info, commits, whoami) it sends once. :func:`call` puts each of them under one policy:

- retried: HTTP 408, 429 and 5xx, and connection errors and timeouts;
- not retried: anything else (a 401, 403, 404 or 409 will not get better by waiting);
- a commit only on 429 or a connection that never opened: a commit answered 5xx may have
  landed, and repeating it would make a second one (``huggingface_hub`` makes the same choice);
- bounded: ``MAX_RETRIES`` retries, waits doubling from ``BACKOFF_S`` up to 30 s with jitter,
  unless the answer says how long to wait: ``Retry-After`` in either of its forms (seconds, or
  an HTTP date), capped at 5 minutes: :mod:`http_backoff`, the one ``Retry-After`` rule of
  every HTTP boundary of the project (the Kaggle client's too), which belongs to neither.

Races with another writer (a commit whose parent moved, a version tag taken meanwhile) are not
transient errors: :func:`after_race` recomputes what lost the race, at once and a bounded
number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import httpx2  # the HTTP client huggingface_hub speaks through
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from http_backoff import retry_after_s, status_of, wait_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["after_race", "call", "is_transient", "is_unsent", "retry_after_s", "status_of"]
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRIES = 5
BACKOFF_S = 1.0


def is_transient(error: BaseException) -> bool:
    """Whether waiting could help: 408, 429, 5xx, a dropped connection, a timeout."""
    return isinstance(error, httpx2.TransportError) or status_of(error) in RETRY_STATUSES


def is_unsent(error: BaseException) -> bool:
    """Whether the Hub surely did not act on the request: 429, or no connection at all."""
    return isinstance(error, httpx2.ConnectError) or status_of(error) == 429


def call(what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
    """``fn()`` (one Hub call, named ``what`` in the log) under the policy.

    Args:
        what: what the call does, e.g. ``"list refs of owner/name"``.
        fn: the call.
        idempotent: False for a commit: then only errors the Hub surely did not act on are
            retried.

    Returns:
        What ``fn`` returns; the last error is re-raised as it is.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("Hub %s: %s; retry %d/%d in %.1fs", what, error, state.attempt_number,
                    MAX_RETRIES, state.upcoming_sleep)

    policy = Retrying(
        stop=stop_after_attempt(MAX_RETRIES + 1),
        retry=retry_if_exception(is_transient if idempotent else is_unsent),
        wait=wait_retry_after(wait_exponential_jitter(initial=BACKOFF_S, max=30.0, jitter=1.0)),
        before_sleep=before_sleep,
        reraise=True,
    )
    return policy(fn)


def after_race(what: str, statuses: set[int], attempts: int, fn: Callable[[], T]) -> T:
    """``fn()``, run again at once while it loses a race with another writer (an answer with
    one of ``statuses``), at most ``attempts`` times; the last error is re-raised as it is."""

    def note(state: RetryCallState) -> None:
        log.info("%s: another writer came first; recomputing (%d)", what, state.attempt_number)

    return Retrying(
        stop=stop_after_attempt(attempts),
        retry=retry_if_exception(lambda e: status_of(e) in statuses),
        before_sleep=note,
        reraise=True,
    )(fn)
