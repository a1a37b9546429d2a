"""``python -m kaggle_orchestrator.clean`` (``make kaggle-clean``): this project's leftovers on
the Kaggle account, listed, and removed with ``--yes``.

A step that succeeded deletes its kernel and bundle dataset (unless its ``keep`` setting);
what a failed or interrupted step, a killed process or ``keep: true`` left behind stays on the
account (private kernels and datasets count against its storage). This lists the account's
kernels and datasets whose slug starts with the project's prefix (``nizami-`` by default, as
``slug_prefix``; bundle datasets end in ``-bundle``) and, with ``--yes``, deletes them. A kernel
that is queued or running is never deleted unless ``--include-running`` is given (deleting is
Kaggle's only way to stop it).
"""

from __future__ import annotations

import argparse
import sys

from kaggle_orchestrator import kernel
from kaggle_orchestrator.client import KaggleApiError, KaggleClient
from kaggle_orchestrator.credentials import resolve_credentials

ACTIVE = ("QUEUED", "RUNNING", "CANCEL_REQUESTED")


def leftovers(client: KaggleClient, prefix: str) -> tuple[list[tuple[str, str]], list[str]]:
    """([(kernel ref, status)], [bundle dataset ref]) of this account that start with
    ``prefix-``."""
    head = f"{prefix}-"
    kernels = [ref for ref in client.own_kernels(prefix)
               if ref.split("/", 1)[-1].startswith(head)]
    datasets = [ref for ref in client.own_datasets(prefix)
                if ref.split("/", 1)[-1].startswith(head)
                and ref.endswith(kernel.BUNDLE_SUFFIX)]
    return [(ref, client.status(ref)[0]) for ref in kernels], datasets


def clean(client: KaggleClient, prefix: str = "nizami", yes: bool = False,
          include_running: bool = False) -> int:
    """Print (and with ``yes`` delete) the leftovers; returns how many are left afterwards."""
    kernels, datasets = leftovers(client, prefix)
    if not kernels and not datasets:
        print(f"nothing of '{prefix}-' on the account of {client.username}")
        return 0
    left = 0
    for ref, status in kernels:
        spared = status in ACTIVE and not include_running
        if not yes or spared:
            left += 1
            why = " (running: --include-running stops it)" if spared and yes else ""
            print(f"kernel   {ref}  {status}{why}")
            continue
        try:
            client.delete(ref.split("/", 1)[1], missing_ok=True)
            print(f"deleted kernel   {ref}  ({status})")
        except KaggleApiError as error:
            left += 1
            print(f"kernel   {ref}  NOT deleted: {error}")
    for ref in datasets:
        if not yes:
            left += 1
            print(f"dataset  {ref}")
            continue
        try:
            client.delete_dataset(ref)
            print(f"deleted dataset  {ref}")
        except KaggleApiError as error:
            left += 1
            print(f"dataset  {ref}  NOT deleted: {error}")
    if not yes:
        print("listed only: run again with --yes (make kaggle-clean YES=1) to delete them")
    return left


def main(argv: list[str] | None = None) -> int:
    """List (or delete) the leftovers; exit 0 when the account is clean afterwards."""
    parser = argparse.ArgumentParser(prog="python -m kaggle_orchestrator.clean",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a Kaggle-compatible API (the emulator's URL)")
    parser.add_argument("--prefix", default="nizami", help="the step operator's slug_prefix")
    parser.add_argument("--yes", action="store_true", help="delete what is listed")
    parser.add_argument("--include-running", action="store_true",
                        help="also delete (stop) queued and running kernels")
    args = parser.parse_args(argv)
    client = KaggleClient(resolve_credentials(), endpoint=args.endpoint)
    left = clean(client, args.prefix, args.yes, args.include_running)
    return 0 if left == 0 or not args.yes else 1


if __name__ == "__main__":
    sys.exit(main())
