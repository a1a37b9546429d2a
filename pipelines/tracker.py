"""W&B online or offline: decided for each run from what is set *now*, with the true reason.

The stacks' ``nizami_wandb`` tracker (``pipelines/wandb_tracker.py``) is registered once, the
same way with or without a key, so stacks register in any order and nothing about W&B is stored
by ``stacks/register.sh``. For each run, :func:`decide` picks, in this order:

1. ``WANDB_MODE=offline`` in the environment: offline;
2. a key: ``WANDB_API_KEY`` in the environment, else the ZenML secret ``wandb`` (a team server's
   shared key, created on purpose with ``zenml secret create wandb --api_key=...``), else an
   ``api_key`` set on the tracker itself; no key: offline;
3. with a key, W&B must answer at all (``WANDB_BASE_URL``, default W&B's cloud) within
   ``NIZAMI_WANDB_PROBE_S`` (5 s): if it does not, offline, with one warning, instead of
   ``wandb.init`` failing the step after 90 s;
4. otherwise online.

:func:`current` decides once per run (at its first step, or in the init hook) and hands the
decision to later steps and to the step processes the run starts (a Kaggle step's local
entrypoint) through the environment. Offline runs stay in ``$WANDB_DIR/wandb/`` and
the log prints the ``wandb sync`` command that uploads them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SECRET = "wandb"
# The decision of a run, for its later steps and the processes it starts:
# "<run id>|online|<reason>" (another run's value is ignored).
DECISION_ENV = "NIZAMI_WANDB_DECISION"
DEFAULT_BASE_URL = "https://api.wandb.ai"


@dataclass(frozen=True)
class Decision:
    """Online or offline, why, and (online only) the key to use; the key never prints."""

    online: bool
    reason: str
    key: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """One line for the log."""
        if self.online:
            return f"W&B online ({self.reason})"
        return (f"W&B offline ({self.reason}); runs stay under "
                f"{os.path.join(os.environ.get('WANDB_DIR', '.'), 'wandb')} and upload later "
                "with `wandb sync <run folder>`")


def _stored_key() -> str | None:
    """The ZenML secret ``wandb``'s ``api_key``, if the active store has one."""
    try:
        from zenml.client import Client

        return Client().get_secret(SECRET).secret_values.get("api_key") or None
    except KeyError:
        return None
    except Exception as error:  # noqa: BLE001 a lookup must never fail the run it serves
        log.debug("ZenML secret %r not read: %s", SECRET, error)
        return None


def find_key(tracker_key: str | None = None) -> tuple[str | None, str]:
    """(the W&B key to use, where it comes from), or (None, why there is none)."""
    if key := os.environ.get("WANDB_API_KEY"):
        return key, "key from WANDB_API_KEY"
    if key := _stored_key():
        return key, f"key from the ZenML secret '{SECRET}'"
    if tracker_key:
        return tracker_key, "key from the tracker's api_key"
    return None, f"no WANDB_API_KEY in the environment and no ZenML secret '{SECRET}'"


def wandb_unreachable(base_url: str, timeout_s: float = 5.0) -> str | None:
    """None when anything answers HTTP at ``base_url`` within ``timeout_s``, else why not."""
    import httpx

    started = time.monotonic()
    try:
        httpx.get(base_url, timeout=timeout_s)
    except httpx.HTTPError as error:
        kind = type(error).__name__
        return f"{kind} after {time.monotonic() - started:.1f} s ({error or 'no answer'})"
    return None


def decide(tracker_key: str | None = None, probe: bool = True) -> Decision:
    """Online or offline for a run starting now (see the module docstring for the order)."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return Decision(False, f"WANDB_MODE={os.environ['WANDB_MODE']} is set")
    key, source = find_key(tracker_key)
    if key is None:
        return Decision(False, source)
    if probe:
        base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
        why = wandb_unreachable(base_url, float(os.environ.get("NIZAMI_WANDB_PROBE_S", "5")))
        if why is not None:
            return Decision(False, f"{source}, but W&B at {base_url} does not answer: {why}")
    return Decision(True, source, key)


def current(run_id: object, tracker_key: str | None = None) -> Decision:
    """The decision of run ``run_id``: made once, by whichever comes first (the tracker at the
    first step, or the init hook), and reused by later steps and by the step processes the run
    starts (they inherit the environment). A value left by another run does not count."""
    recorded_run, _, rest = os.environ.get(DECISION_ENV, "").partition("|")
    if recorded_run == str(run_id):
        mode, _, reason = rest.partition("|")
        if mode != "online":
            return Decision(False, reason)
        key, _ = find_key(tracker_key)
        if key:
            return Decision(True, reason, key)
    decision = decide(tracker_key)
    os.environ[DECISION_ENV] = (f"{run_id}|{'online' if decision.online else 'offline'}|"
                                f"{decision.reason}")
    level = logging.WARNING if "does not answer" in decision.reason else logging.INFO
    log.log(level, "%s", decision.describe())
    return decision


if __name__ == "__main__":  # what a run started now would do (stacks/register.sh prints it)
    print(f"{decide(probe=False).describe()} - decided again at each run", file=sys.stdout)
