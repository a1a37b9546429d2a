"""``python -m kaggle_emulator``: serve the Kaggle API emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
from pathlib import Path

from kaggle_emulator.image import prepare_image
from kaggle_emulator.redirect import HOOK_DIR
from kaggle_emulator.server import DEFAULT_KEY, DEFAULT_USERNAME, KaggleEmulator


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kaggle_emulator",
        description="A local Kaggle API that runs pushed kernels in sandboxes laid out like "
        "Kaggle's: dry-run your kernel before spending GPU quota.",
    )
    parser.add_argument("--port", type=int, default=8777, help="port to listen on (0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--root", type=Path, help="folder for sandboxes and data (default: temp)")
    parser.add_argument("--username", default=os.environ.get("KAGGLE_USERNAME") or DEFAULT_USERNAME)
    parser.add_argument("--key", default=DEFAULT_KEY, help="the legacy API key clients may send")
    parser.add_argument(
        "--token", action="append", default=[], metavar="T",
        help="an API token clients may send as Bearer (repeatable); its owner is --username",
    )  # fmt: skip
    parser.add_argument(
        "--python", metavar="PATH",
        help="the kernels' interpreter (default: a Python 3.12 environment prepared like "
        "Kaggle's image, built once under ~/.cache/nizami/kaggle-image)",
    )  # fmt: skip
    parser.add_argument(
        "--layout", choices=["datasets", "legacy"], default="datasets",
        help="where datasets mount: /kaggle/input/datasets/<owner>/<slug> (Kaggle today) or "
        "/kaggle/input/<slug>",
    )  # fmt: skip
    parser.add_argument(
        "--prepare-image", action="store_true",
        help="build the Kaggle-like Python 3.12 environment, print its interpreter and exit",
    )  # fmt: skip
    parser.add_argument(
        "--pass-env", action="append", default=[], metavar="NAME",
        help="let kernel sessions see this variable of the emulator's environment (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="set this variable in every kernel session (repeatable)",
    )  # fmt: skip
    parser.add_argument("--queue-seconds", type=float, default=1.0, help="time spent QUEUED")
    parser.add_argument(
        "--fault", action="append", default=[], metavar="JSON",
        help="inject a fault (repeatable), as for POST /_emulator/faults, e.g. "
        '\'{"kind": "kernel_stop", "after_log": "checkpoint-2"}\' to rehearse a stopped session '
        "and its resume, or '{\"kind\": \"http_error\", \"method\": \"SaveKernel\", "
        "\"status\": 502, \"served\": true}' (kinds: http_error, push_error, kernel_error, "
        "kernel_hang, slow_response, kernel_cancel, kernel_stop, quota_exhausted, gpu_sessions)",
    )  # fmt: skip
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


def _faults(specs: list[str]) -> list[dict]:
    """The ``--fault`` values as JSON objects; a bad one stops the command, named."""
    faults = []
    for spec in specs:
        try:
            fault = json.loads(spec)
        except ValueError as error:
            raise SystemExit(f"--fault {spec!r}: not JSON ({error})") from error
        faults += fault if isinstance(fault, list) else [fault]
    return faults


def main(argv: list[str] | None = None) -> None:
    """Run the emulator until Ctrl-C."""
    args = _parse_args(argv)
    faults = _faults(args.fault)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(message)s")
    if args.prepare_image or not args.python:
        python = str(prepare_image())
        if args.prepare_image:
            print(python)
            return
    extra_env = dict(item.split("=", 1) for item in args.env)
    emulator = KaggleEmulator(
        args.root,
        args.username,
        args.key,
        host=args.host,
        port=args.port,
        pass_env=args.pass_env,
        extra_env=extra_env,
        queue_seconds=args.queue_seconds,
        tokens={token: args.username for token in args.token},
        python=args.python or python,
        layout=args.layout,
    )
    for fault in faults:
        try:
            added = emulator.faults.add(fault)
        except ValueError as error:  # pydantic's: name each field and what is wrong
            errors = getattr(error, "errors", lambda: [])()
            said = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'kind'}: {e['msg']}"
                             for e in errors) or str(error)
            raise SystemExit(f"--fault {json.dumps(fault)}: {said}") from error
        print(f"fault injected: {added.model_dump_json(exclude_none=True)}")

    def announce(url: str) -> None:
        exports = {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "KAGGLE_EMULATOR_URL": url,
            **({"KAGGLE_API_TOKEN": args.token[0]} if args.token
               else {"KAGGLE_USERNAME": args.username, "KAGGLE_KEY": args.key}),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        exported = " ".join(f"{k}={shlex.quote(v)}" for k, v in exports.items())
        print(f"Kaggle API emulator on {url}; sandboxes under {emulator.root}")
        print("Point the kaggle CLI at it, in the shell you run `kaggle` from:")
        print(f"  export {exported}")
        print(f'  export PYTHONPATH={shlex.quote(str(HOOK_DIR))}"${{PYTHONPATH:+:$PYTHONPATH}}"')
        print("Ctrl-C stops it (and kills running kernels).", flush=True)

    try:
        emulator.serve_forever(args.log_level, on_ready=announce)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
