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
"""

from __future__ import annotations

import os
import sys

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


if __name__ == "__main__":
    print(configure_wandb_tracker(), file=sys.stdout)
