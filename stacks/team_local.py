"""Team mode on this machine: ``make team-up`` / ``make team-down``.

``up`` starts, on 127.0.0.1, everything the ``team`` stack (stacks/team.yaml) talks to:

- a ZenML server (``uvicorn`` on its own SQLite database, password login, with the dashboard),
  activated with an ``admin`` user; the runner connects with a service account's API key;
- an S3 stand-in (moto's server) holding the artifact bucket;
- the Kaggle API emulator (``python -m kaggle_orchestrator.emulator``), whose kernels run on
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

    python stacks/team_local.py up   [--state DIR] [--zenml-port N] [--s3-port N] [--kaggle-port N]
    python stacks/team_local.py down [--state DIR]

This file needs only the standard library, ``httpx`` and ``boto3`` (moto's dependency); ZenML
is only ever used in subprocesses, with the state folder's configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_STATE = ROOT / ".team-local"
KAGGLE_USER = "nizami-team"
BUCKET = "nizami-team-artifacts"
SERVICE_ACCOUNT = "nizami-runner"
RUN_COMMAND = (
    "{venv}/python -m pipelines.run --config pipelines/configs/tiny.yaml "
    "--run-config stacks/run-configs/team.yaml"
)
# Variables of the caller that must not leak into the servers or the runner.
FOREIGN_PREFIXES = ("ZENML_", "KAGGLE_", "AWS_")
FOREIGN_NAMES = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class TeamLocalError(RuntimeError):
    """Something the user can act on; printed without a traceback."""


@dataclass(frozen=True)
class Service:
    """One server process: how to start it and how to tell it answers."""

    name: str
    title: str
    port: int
    command: list[str]
    env: dict[str, str]
    health_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def say(message: str) -> None:
    print(f"team-up: {message}", flush=True)


# --- state ------------------------------------------------------------------------------------


def _state_file(state: Path) -> Path:
    return state / "state.json"


def _load_state(state: Path) -> dict:
    path = _state_file(state)
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_state(state: Path, data: dict) -> None:
    path = _state_file(state)
    path.write_text(json.dumps(data, indent=2))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (it holds credentials)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


# --- processes --------------------------------------------------------------------------------


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when it is gone or a zombie.

    A pid with the recorded start time is the process team-up started, not a reused pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return None if fields[0] in ("Z", "X") else int(fields[19])


def is_running(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` is alive and (when ``started`` is given) is the process started then."""
    ticks = _start_ticks(pid)
    return ticks is not None and (started is None or ticks == started)


def _stop(
    pid: int, started: int | None, title: str, grace_s: float = 20.0, group: bool = True
) -> str:
    """SIGTERM the process group led by ``pid`` (or only ``pid``), SIGKILL it after ``grace_s``;
    what happened."""
    send = os.killpg if group else os.kill
    if not is_running(pid, started):
        return f"{title} (pid {pid}) was not running"
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and is_running(pid, started):
        time.sleep(0.2)
    if not is_running(pid, started):
        return f"stopped {title} (pid {pid})"
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_running(pid, started):
        time.sleep(0.2)
    if is_running(pid, started):
        raise TeamLocalError(f"{title} (pid {pid}) survived SIGKILL; stop it yourself")
    return f"killed {title} (pid {pid}; it ignored SIGTERM for {grace_s:.0f} s)"


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text) or "    (empty log)"


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (connections in TIME_WAIT do not count: the servers
    bind with SO_REUSEADDR, as this probe does)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start(service: Service, state: Path, data: dict) -> None:
    log = state / "logs" / f"{service.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            service.command,
            env=service.env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: down stops it all
        )
    data["services"][service.name] = {
        "title": service.title,
        "pid": process.pid,
        "port": service.port,
        "url": service.url,
        "command": service.command,
        "started": _start_ticks(process.pid),
        "log": str(log),
    }
    _save_state(state, data)  # recorded at once: a failed `up` is cleaned by `down`
    say(f"started {service.title} on {service.url} (pid {process.pid}, log {log})")


def _wait_healthy(service: Service, state: Path, data: dict, timeout_s: float) -> None:
    record = data["services"][service.name]
    started = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(service.url + service.health_path, timeout=5).status_code < 500:
                say(f"{service.title} answers ({time.monotonic() - started:.0f} s)")
                return
        log = Path(record["log"])
        if not record.get("started") or not is_running(record["pid"], record["started"]):
            raise TeamLocalError(
                f"{service.title} exited before answering on {service.url}; the end of "
                f"{log}:\n{_log_tail(log)}"
            )
        if time.monotonic() - started > timeout_s:
            raise TeamLocalError(
                f"{service.title} did not answer on {service.url}{service.health_path} within "
                f"{timeout_s:.0f} s (TEAM_TIMEOUT=<s> or --timeout to wait longer); the end of "
                f"{log}:\n{_log_tail(log)}"
            )
        time.sleep(0.5)


# --- environments -----------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """This environment without ZenML's, Kaggle's, AWS's or other credential variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(FOREIGN_PREFIXES) and k not in FOREIGN_NAMES
    }


def _runner_env(state: Path, data: dict, creds: dict) -> dict[str, str]:
    """What a pipeline run against the local team servers needs (also written to env.sh)."""
    return {
        "ZENML_CONFIG_PATH": str(state / "runner"),
        "ZENML_STORE_URL": data["services"]["zenml"]["url"],
        "ZENML_STORE_API_KEY": creds["zenml_api_key"],
        "ZENML_ANALYTICS_OPT_IN": "false",
        # the repository's .zen/config.yaml is shared with other stores; this wins over it
        **({"ZENML_ACTIVE_STACK_ID": data["stack_id"]} if data.get("stack_id") else {}),
        "KAGGLE_API_TOKEN": creds["kaggle_api_token"],
        "WANDB_MODE": "offline",  # no W&B here: the tracker's runs stay offline
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }


def _write_env_file(state: Path, env: dict[str, str]) -> Path:
    lines = [
        "# The local team servers' runner environment: `. <this file>` (written by team-up)",
        *(f"unset {name}" for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "WANDB_API_KEY")),
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items() if k != "PATH"]
    lines.append(f'export PATH={shlex.quote(str(BIN))}:"$PATH"')
    path = state / "env.sh"
    _write_private(path, "\n".join(lines) + "\n")
    return path


def _run(
    args: list[str],
    env: dict[str, str],
    what: str,
    timeout_s: float = 300,
    stdin: str | None = None,
) -> str:
    """Run a setup command; its output on success, a TeamLocalError with its tail otherwise."""
    try:
        done = subprocess.run(
            args, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as error:
        raise TeamLocalError(f"{what}: no answer after {timeout_s:.0f} s") from error
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise TeamLocalError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


# --- the ZenML server -------------------------------------------------------------------------


def _activate_server(url: str, admin_password: str) -> str:
    """Activate the fresh server with ``admin``; a service account's API key for the runner."""

    def call(method: str, path: str, token: str | None = None, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.request(method, url + path, headers=headers, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise TeamLocalError(
                f"ZenML server: {method} {path} answered {answer.status_code}: {answer.text[:500]}"
            )
        return answer.json()

    call(
        "PUT",
        "/api/v1/activate",
        json={"admin_username": "admin", "admin_password": admin_password},
    )
    token = call("POST", "/api/v1/login", data={"username": "admin", "password": admin_password})[
        "access_token"
    ]
    account = call(
        "POST", "/api/v1/service_accounts", token, json={"name": SERVICE_ACCOUNT, "active": True}
    )
    key = call(
        "POST",
        f"/api/v1/service_accounts/{account['id']}/api_keys",
        token,
        json={"name": "team-local"},
    )
    return key["body"]["key"]


# The secret's values come in on stdin, never on a command line.
CREATE_SECRET = """
import json, sys
from zenml.client import Client
values = json.load(sys.stdin)
Client().create_secret("s3", values=values)
"""

POINT_AT_LOCAL_SERVERS = """
import sys
from zenml.client import Client
from zenml.enums import StackComponentType as T
s3_url, kaggle_url, bucket = sys.argv[1:4]
c = Client()
c.update_stack_component("nizami_s3", T.ARTIFACT_STORE, configuration={
    "path": f"s3://{bucket}",
    "client_kwargs": {"endpoint_url": s3_url, "region_name": "us-east-1"}})
c.update_stack_component("kaggle_server", T.STEP_OPERATOR, configuration={
    "api_endpoint": kaggle_url})
# The Hugging Face Hub registry needs the internet: off this stack (ZenML Model versions stay).
c.update_stack("team", component_updates={T.MODEL_REGISTRY: []})
print("STACK_ID", c.get_stack("team").id)
"""


# `python -m kaggle_orchestrator.emulator` with its key and token taken from the environment,
# so that they are not on a command line (`ps` shows those to every user of the machine).
EMULATOR = """
import os, sys
from kaggle_orchestrator.emulator.__main__ import main
key, token = os.environ.pop("TEAM_KAGGLE_KEY"), os.environ.pop("TEAM_KAGGLE_TOKEN")
main(sys.argv[1:] + ["--key", key, "--token", token])
"""


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
        [sys.executable, "-m", "kaggle_orchestrator.emulator", "--prepare-image"],
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


def _leftovers(state: Path) -> list[int]:
    """Pids of processes still working in the emulator's folder (kernel sessions and their
    children: their command lines name their sandbox under it), other than this one."""
    marker = str(state / "kaggle") + os.sep
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
    return found


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
        prog="stacks/team_local.py",
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
