"""W&B online when a key is configured, offline otherwise: the one switch (``register.sh``).

The stacks ship a ``wandb`` experiment tracker in offline mode with a placeholder key, so a
fresh machine needs no account. ``stacks/register.sh`` runs ``python -m pipelines.tracker``
after activating a stack:

- ``WANDB_API_KEY`` set (CI passes the repository secret): its value is stored in the ZenML
  secret ``wandb`` (created or updated from the environment, never from a command line) and
  the tracker is switched online with ``api_key: {{wandb.api_key}}``;
- no variable, but a ZenML secret ``wandb`` exists (a team server): online with it;
- neither (or ``WANDB_MODE=offline``): offline with the placeholder; runs stay in
  ``$WANDB_DIR/wandb/offline-run-*`` and the step log prints the ``wandb sync`` command.

At run time, :func:`offline_if_unreachable` (the training pipeline's init hook) checks that an
online tracker's W&B answers at all (``WANDB_BASE_URL``, default W&B's cloud) within
``NIZAMI_WANDB_PROBE_S`` (5 s); when it does not, this run's W&B goes offline with one warning
instead of ``wandb.init`` failing the step after 90 s.
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger(__name__)

SECRET = "wandb"
PLACEHOLDER = "offline-placeholder"
ONLINE = {"api_key": "{{" + SECRET + ".api_key}}", "settings": {}}
OFFLINE = {"api_key": PLACEHOLDER, "settings": {"mode": "offline"}}


def configure_wandb_tracker() -> str:
    """Switch the active stack's ``wandb`` tracker online or offline; returns what was done."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    trackers = client.active_stack_model.components.get(StackComponentType.EXPERIMENT_TRACKER)
    if not trackers or trackers[0].flavor_name != "wandb":
        return "no W&B experiment tracker on this stack"
    key = os.environ.get("WANDB_API_KEY")
    if key:
        try:
            client.get_secret(SECRET)
            client.update_secret(SECRET, add_or_update_values={"api_key": key})
        except KeyError:
            client.create_secret(SECRET, values={"api_key": key})
    try:
        client.get_secret(SECRET)
        has_key = True
    except KeyError:
        has_key = False
    online = has_key and os.environ.get("WANDB_MODE") != "offline"
    client.update_stack_component(trackers[0].name, StackComponentType.EXPERIMENT_TRACKER,
                                  configuration=ONLINE if online else OFFLINE)
    if online:
        source = "WANDB_API_KEY" if key else f"the ZenML secret '{SECRET}'"
        return f"W&B tracker {trackers[0].name}: online (key from {source})"
    return (f"W&B tracker {trackers[0].name}: offline (no WANDB_API_KEY or ZenML secret "
            f"'{SECRET}'); upload runs later with `wandb sync <run folder>`")


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


def offline_if_unreachable() -> None:
    """Pipeline init hook: an online ``wandb`` tracker whose W&B does not answer goes offline
    for this run (``WANDB_MODE=offline``), with one warning that says why and where runs stay."""
    if os.environ.get("WANDB_MODE") == "offline":
        return
    from zenml.client import Client

    try:
        tracker = Client().active_stack.experiment_tracker
    except Exception as error:  # noqa: BLE001 a probe must never fail the run it protects
        log.warning("W&B reachability not checked: %s", error)
        return
    if tracker is None or tracker.flavor != "wandb" or tracker.config.api_key == PLACEHOLDER:
        return
    if (tracker.config.settings or {}).get("mode") == "offline":
        return
    base_url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    reason = wandb_unreachable(base_url, float(os.environ.get("NIZAMI_WANDB_PROBE_S", "5")))
    if reason is None:
        return
    os.environ["WANDB_MODE"] = "offline"
    folder = os.path.join(os.environ.get("WANDB_DIR", "."), "wandb")
    log.warning(
        "W&B at %s does not answer (%s): this run logs to W&B offline, under %s; upload it "
        "later with `wandb sync <run folder>`", base_url, reason, folder,
    )  # fmt: skip


if __name__ == "__main__":
    print(configure_wandb_tracker(), file=sys.stdout)
