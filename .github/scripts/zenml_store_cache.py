"""Keep the local ZenML store between train-eval-deploy runs, so ZenML's cache works without a
team server, and never with a wrong hit.

    python .github/scripts/zenml_store_cache.py key --stack kaggle \
        --config pipelines/configs/nizami-1.7b.yaml --run-config stacks/run-configs/kaggle.yaml
    .venv/bin/python .github/scripts/zenml_store_cache.py scrub --store "$ZENML_CONFIG_PATH" \
        --secret-env WANDB_API_KEY --secret-env HF_TOKEN

``key`` prints the Actions cache key of the store (the ZenML config dir: its SQLite database and
the local artifact store inside it). It is a digest of every file the train step depends on
(``TRAIN_INPUTS``: its code and ZenML's, the configs, the stack definitions, the DVC pointers of
the data, the pinned requirements) plus the stack and the two configs. ZenML's own cache key
for a step covers the step function's source but not the helpers it calls, so a store saved
before a change to ``steps/core/train/process.py`` would give train a wrong cache hit; with this key
such a change selects another entry, a fresh store and a new training run. The workflow
restores only the exact key (no prefix fallback), so a store saved for other inputs is never
used. A push that changes only documentation or serving code (``bento/``) keeps the key: train
is a cache hit and never reaches Kaggle (``package`` is never cached, so it rebuilds the bento).

``scrub`` runs before the store is saved: the cache is readable by every workflow run of the
repository, so the ZenML secrets that ``stacks/register.sh`` stored (the W&B key) are deleted,
the SQLite databases vacuumed (deleted rows can linger in free pages), and every file is
searched for the values of the named environment variables, as they are and base64-encoded
(ZenML's SQL secrets store keeps unencrypted values as base64 JSON); any hit fails the step.

``key`` uses the standard library only; ``scrub`` needs ZenML.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "v1"  # bump to drop every saved store (e.g. after a ZenML upgrade)
# Everything the train step's result depends on. Not here on purpose: docs/, *.md, bento/
# (serving), tests/, bench/, .github/.
TRAIN_INPUTS = (
    "pyproject.toml",
    "steps/**/*.py",
    "pipelines/**/*.py",
    "pipelines/configs/*.yaml",
    "kaggle_orchestrator/**/*.py",
    "stacks/*.yaml",
    "stacks/*.sh",
    "stacks/run-configs/*.yaml",
    "data/*.dvc",
    "dvc.yaml",
    "dvc.lock",
    "params.yaml",
    ".dvc/config",
)


def train_input_files(root: Path) -> list[Path]:
    """The files matched by ``TRAIN_INPUTS`` under ``root``, sorted, each once."""
    found = {path for pattern in TRAIN_INPUTS for path in root.glob(pattern) if path.is_file()}
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def cache_key(root: Path, stack: str, config: str, run_config: str) -> str:
    """``zenml-store-<version>-<stack>-<digest>`` of the train inputs under ``root``."""
    digest = hashlib.sha256()
    for part in (stack, config, run_config):
        digest.update(f"{part}\n".encode())
    for path in train_input_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"zenml-store-{VERSION}-{stack}-{digest.hexdigest()[:32]}"


def needles(value: str) -> list[bytes]:
    """``value`` as bytes, and the base64 text it becomes at each of the 3 byte alignments
    (only the characters that depend on ``value`` alone)."""
    raw = value.encode()
    found = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start, end = -(-4 * shift // 3), 4 * (shift + len(raw)) // 3
        found.append(encoded[start:end])
    return found


def occurs(value: str, data: bytes) -> bool:
    """Whether ``value`` is in ``data``, plainly or base64-encoded."""
    return bool(value) and any(needle in data for needle in needles(value))


def scrub(store: Path, values: dict[str, str]) -> list[str]:
    """Delete the store's ZenML secrets, vacuum its databases; returns where any of ``values``
    (name -> value) still occurs (``name in path``), [] when the store is clean."""
    from zenml.client import Client

    client = Client()
    for secret in client.list_secrets(size=1000).items:
        client.delete_secret(str(secret.id))
    for database in store.rglob("*.db"):
        with sqlite3.connect(database) as connection:
            connection.execute("VACUUM")
    hits = []
    for path in (p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{name} in {path}" for name, value in values.items() if occurs(value, data)]
    return hits


def main(argv: list[str] | None = None) -> int:
    """``key`` or ``scrub``; see the module docstring."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    key = commands.add_parser("key", help="print the cache key of the local ZenML store")
    key.add_argument("--stack", required=True)
    key.add_argument("--config", required=True, help="domain config of the run")
    key.add_argument("--run-config", required=True, help="ZenML run config of the run")
    key.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    clean = commands.add_parser("scrub", help="remove secrets from the store before saving it")
    clean.add_argument("--store", type=Path, required=True, help="the ZENML_CONFIG_PATH folder")
    clean.add_argument("--secret-env", action="append", default=[],
                       help="a variable whose value must not be in the store (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "key":
        print(cache_key(args.root, args.stack, args.config, args.run_config))
        return 0
    hits = scrub(args.store, {name: os.environ.get(name, "") for name in args.secret_env})
    for hit in hits:
        print(f"secret left in the ZenML store: {hit}", file=sys.stderr)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
