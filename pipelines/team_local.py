"""Team mode on this machine: ``make team-up`` / ``make team-down``.

``up`` starts, on 127.0.0.1, everything the ``team`` stack (stacks/team.yaml) talks to:

- a ZenML server (``uvicorn`` on its own SQLite database, password login, with the dashboard),
  activated with an ``admin`` user; the runner connects with a service account's API key;
- an S3 stand-in (moto's server) holding the artifact bucket;
- the Kaggle API emulator (``python -m kaggle_emulator``), whose kernels run on
  the Kaggle-like Python 3.12 image with this machine's network, so they reach both servers.

It then creates the ZenML secret ``s3``, registers the ``team`` stack with
``stacks/register.sh team``, points its artifact store and ``kaggle_server`` step operator at
the local servers and takes its Hugging Face registry off (the Hub needs the internet), and
prints the dashboard URL and the command that runs the tiny pipeline there.

Everything it starts or writes lives in one state folder (default ``.team-local/``, git-ignored
so that no credential in it can reach the code archive): the process ids and ports
(``state.json``), the generated credentials (``credentials.json``), the runner's environment
(``env.sh``: its own ``ZENML_CONFIG_PATH``, never your default store), the server's database,
the emulator's sandboxes and each server's log. ``down`` stops every process it recorded (and
any kernel session still running), by process id, and deletes the folder: nothing keeps
running, nothing stays registered.

    python -m pipelines.team_local up|down [--state DIR] [--zenml-port N] [--s3-port N] ...

Helpers: ``local_services.py`` (start, watch, stop the servers), ``team_setup.py`` (the
runner's environment, the servers' set-up). ZenML runs only in subprocesses, configured there.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import sys
import time
from pathlib import Path

from pipelines.local_services import (
    Service,
    TeamLocalError,
    _leftovers,
    _load_state,
    _port_free,
    _run,
    _save_state,
    _start,
    _start_ticks,
    _state_file,
    _stop,
    _wait_healthy,
    _write_private,
    is_running,
    say,
)
from pipelines.team_setup import (
    CREATE_SECRET,
    EMULATOR,
    POINT_AT_LOCAL_SERVERS,
    _activate_server,
    _clean_env,
    _runner_env,
    _write_env_file,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_STATE = ROOT / ".team-local"
KAGGLE_USER = "nizami-team"
BUCKET = "nizami-team-artifacts"
RUN_COMMAND = (
    "{venv}/python -m pipelines.run --config pipelines/configs/tiny.yaml "
    "--run-config stacks/run-configs/team.yaml"
)


# --- up / down --------------------------------------------------------------------------------


def _services(state: Path, args: argparse.Namespace, creds: dict, python: str) -> list[Service]:
    server_env = _clean_env() | {
        "ZENML_CONFIG_PATH": str(state / "server" / "config"),
        "ZENML_STORE_URL": f"sqlite:///{state / 'server' / 'zenml.db'}",
        "ZENML_SERVER_AUTH_SCHEME": "OAUTH2_PASSWORD_BEARER",
        "ZENML_SERVER_JWT_SECRET_KEY": creds["zenml_jwt_secret"],
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_ANALYTICS_OPT_IN": "false",
        # Not the repository's .zen/ (found from any folder under it, .team-local/ too): with
        # it, the server checks that repository's active stack of another store and fails
        # every API-key login ("No active user found").
        "ZENML_REPOSITORY_PATH": str(state / "server"),
        # A run-scoped token (what the kernel gets) stops working once its run has finished.
        "ZENML_WORKLOAD_TOKEN_EXPIRATION_LEEWAY": "0",
    }
    pip_cache = Path.home() / ".cache" / "nizami" / "kernel-pip"  # kept: kernels install faster
    return [
        Service(
            "zenml",
            "ZenML server",
            args.zenml_port,
            [
                str(BIN / "uvicorn"),
                "zenml.zen_server.zen_server_api:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.zenml_port),
            ],
            server_env,
            "/health",
        ),
        Service(
            "s3",
            "S3 server (moto)",
            args.s3_port,
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(args.s3_port)],
            _clean_env(),
            "/",
        ),
        Service(
            "kaggle",
            "Kaggle emulator",
            args.kaggle_port,
            [
                sys.executable,
                "-c",
                EMULATOR,
                "--host",
                "127.0.0.1",
                "--port",
                str(args.kaggle_port),
                "--root",
                str(state / "kaggle"),
                "--username",
                KAGGLE_USER,
                "--python",
                python,
                "--env",
                f"PIP_CACHE_DIR={pip_cache}",
            ],
            _clean_env()
            | {
                "TEAM_KAGGLE_KEY": creds["kaggle_key"],
                "TEAM_KAGGLE_TOKEN": creds["kaggle_api_token"],
            },
            "/_emulator/health",
        ),
    ]


def _check_not_up(state: Path) -> None:
    data = _load_state(state)
    alive = [
        f"{s['title']} (pid {s['pid']})"
        for s in data.get("services", {}).values()
        if s.get("started") and is_running(s["pid"], s["started"])
    ]
    if alive:
        raise TeamLocalError(
            f"already up ({', '.join(alive)}; state in {state}): `make team-down` first"
        )
    if state.exists():
        say(f"removing the stale state folder {state} (none of its processes runs)")
        shutil.rmtree(state)


def up(args: argparse.Namespace) -> None:
    """Check, then start and set up everything; on any failure stop what was started."""
    _check_not_up(args.state)
    ports = {
        "ZenML server": args.zenml_port,
        "S3 server": args.s3_port,
        "Kaggle emulator": args.kaggle_port,
    }
    if len(set(ports.values())) < len(ports):
        raise TeamLocalError(f"the ports must differ: {ports}")
    for title, port in ports.items():
        if not _port_free(port):
            raise TeamLocalError(
                f"port {port} (for the {title}) is in use on 127.0.0.1: stop what listens there "
                "or choose other ports (TEAM_ZENML_PORT, TEAM_S3_PORT, TEAM_KAGGLE_PORT)"
            )
    try:
        _bring_up(args)
    except BaseException as error:
        said = str(error) if isinstance(error, TeamLocalError) else repr(error)
        print(
            f"team-up: {said}\nteam-up: failed; stopping what it started",
            file=sys.stderr,
            flush=True,
        )
        try:
            down(args)
        except Exception as cleanup:  # noqa: BLE001 the first error is the one to report
            print(
                f"team-up: stopping failed too ({cleanup!r}): stop the pids in "
                f"{_state_file(args.state)} yourself",
                file=sys.stderr,
                flush=True,
            )
        if isinstance(error, TeamLocalError):
            raise TeamLocalError("not started (see above)") from error
        raise


def _bring_up(args: argparse.Namespace) -> None:
    state: Path = args.state
    started = time.monotonic()
    state.mkdir(mode=0o700, parents=True, exist_ok=True)  # credentials: this user only
    for folder in ("logs", "server", "runner", "kaggle"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    creds = {
        "zenml_admin_password": f"Adm1n-{secrets.token_hex(12)}",
        "zenml_jwt_secret": secrets.token_hex(32),
        "aws_access_key_id": f"AKIA{secrets.token_hex(8).upper()}",
        "aws_secret_access_key": secrets.token_hex(20),
        "kaggle_key": secrets.token_hex(16),
        "kaggle_api_token": f"KGAT_{secrets.token_hex(16)}",
    }
    _write_private(state / "credentials.json", json.dumps(creds, indent=2))
    data: dict = {"root": str(ROOT), "services": {}}
    _save_state(state, data)

    say("the kernels' Python 3.12 image (built once under ~/.cache/nizami/kaggle-image)")
    python = _run(
        [sys.executable, "-m", "kaggle_emulator", "--prepare-image"],
        _clean_env(),
        "preparing the Kaggle image",
        timeout_s=1800,
    ).strip()
    python = python.splitlines()[-1]
    services = _services(state, args, creds, python)
    for service in services:
        _start(service, state, data)
    for service in services:
        _wait_healthy(service, state, data, args.timeout)

    zenml_url = data["services"]["zenml"]["url"]
    say("activating the ZenML server (user admin) and creating the runner's service account")
    creds["zenml_api_key"] = _activate_server(zenml_url, creds["zenml_admin_password"])
    _write_private(state / "credentials.json", json.dumps(creds, indent=2))

    import boto3  # moto's dependency; imported late: `down` does not need it

    s3_url = data["services"]["s3"]["url"]
    boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id=creds["aws_access_key_id"],
        aws_secret_access_key=creds["aws_secret_access_key"],
    ).create_bucket(Bucket=BUCKET)
    say(f"created the bucket s3://{BUCKET}")

    env = _clean_env() | _runner_env(state, data, creds)
    _run(
        [sys.executable, "-c", CREATE_SECRET],
        env,
        "creating the ZenML secret 's3'",
        stdin=json.dumps(
            {
                "aws_access_key_id": creds["aws_access_key_id"],
                "aws_secret_access_key": creds["aws_secret_access_key"],
            }
        ),
    )
    say("created the ZenML secret 's3'")

    say("registering the team stack: stacks/register.sh team")
    zen_config = ROOT / ".zen" / "config.yaml"
    before = zen_config.read_bytes() if zen_config.is_file() else None
    try:
        out = _run(["bash", "stacks/register.sh", "team"], env, "stacks/register.sh team")
    finally:
        # register.sh makes `team` active in the repository's .zen/config.yaml, which other
        # stores share: put back what was there (the runner uses ZENML_ACTIVE_STACK_ID).
        if before is not None:
            zen_config.write_bytes(before)
    for line in out.splitlines():
        print(f"    {line}", flush=True)
    out = _run(
        [
            sys.executable,
            "-c",
            POINT_AT_LOCAL_SERVERS,
            s3_url,
            data["services"]["kaggle"]["url"],
            BUCKET,
        ],
        env,
        "pointing the team stack at the local servers",
    )
    data["stack_id"] = out.split("STACK_ID", 1)[1].split()[0]
    _save_state(state, data)
    say(
        f"nizami_s3 -> s3://{BUCKET} on {s3_url}; kaggle_server -> "
        f"{data['services']['kaggle']['url']}; model registry off the stack"
    )
    env_file = _write_env_file(state, _runner_env(state, data, creds))

    shown = (
        os.path.relpath(env_file, Path.cwd()) if env_file.is_relative_to(Path.cwd()) else env_file
    )
    venv = os.path.relpath(BIN, Path.cwd()) if BIN.is_relative_to(Path.cwd()) else BIN
    command = f"(. {shlex.quote(str(shown))} && {RUN_COMMAND.format(venv=venv)})"
    data["run_command"] = command
    _save_state(state, data)
    print(
        f"\nThe team servers are up ({time.monotonic() - started:.0f} s), on 127.0.0.1 only:\n"
        f"  ZenML dashboard  {zenml_url}  (user admin; password in "
        f"{state / 'credentials.json'})\n"
        f"  S3 (moto)        {s3_url}  bucket {BUCKET}\n"
        f"  Kaggle emulator  {data['services']['kaggle']['url']}  "
        f"(sandboxes under {state / 'kaggle'})\n"
        f"Run the tiny pipeline on the `team` stack (train in an emulated Kaggle kernel):\n"
        f"  {command}\n"
        f"Other zenml commands against this server: `. {shown}` first.\n"
        f"Stop everything: make team-down",
        flush=True,
    )


def down(args: argparse.Namespace) -> None:
    state: Path = args.state
    data = _load_state(state)
    if not data:
        print(f"team-down: nothing to stop (no {_state_file(state)})")
        if state.exists():
            shutil.rmtree(state)
        return
    services = data.get("services", {})
    # The emulator first (it kills its running kernels), the ZenML server last.
    for name in ("kaggle", "s3", "zenml"):
        if name in services:
            record = services[name]
            if record.get("started") is None:  # it had exited as it started: its pid is free
                continue
            said = _stop(record["pid"], record["started"], record["title"])
            print(f"team-down: {said}", flush=True)
    for pid in _leftovers(state):  # a kernel session the emulator could not stop
        started = _start_ticks(pid)
        if started is not None:
            print(f"team-down: {_stop(pid, started, 'kernel session', group=False)}", flush=True)
    shutil.rmtree(state)
    print(
        f"team-down: removed {state} (the server's database, credentials, logs); "
        "nothing of team-local is left",
        flush=True,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.team_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["up", "down"])
    env = os.environ.get
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(env("TEAM_STATE") or DEFAULT_STATE).absolute(),
        help="the state folder (env TEAM_STATE; default .team-local/)",
    )
    parser.add_argument("--zenml-port", type=int, default=int(env("TEAM_ZENML_PORT") or 8238))
    parser.add_argument("--s3-port", type=int, default=int(env("TEAM_S3_PORT") or 8239))
    parser.add_argument("--kaggle-port", type=int, default=int(env("TEAM_KAGGLE_PORT") or 8240))
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(env("TEAM_TIMEOUT") or 180),
        help="seconds each server may take to answer (default 180)",
    )
    args = parser.parse_args(argv)
    args.state = args.state.absolute()
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        if args.action == "up":
            up(args)
        else:
            down(args)
    except TeamLocalError as error:
        print(f"team-{args.action}: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
