"""Team mode on one machine: a ZenML server, an S3 server, and the train step in a Kaggle kernel.

Started here, all on loopback: an authenticated ZenML server (``uvicorn`` on its own SQLite
database and config dir, activated with an admin, the runner logged in with a service
account's API key), an S3-compatible server (moto's server mode) and the Kaggle emulator, whose
kernels run on the Kaggle-like Python 3.12 image with the host's network, so they reach both.
``stacks/register.sh team`` registers the real stack definition (its W&B tracker offline and its
HF registry removed: both would need the internet); the pipeline then runs with the train step
in server mode: the kernel installs ZenML, downloads the code archive from S3, runs ZenML's step
entrypoint against the server and writes the adapter to S3; evaluate, here, reads it back.

Everything is separate from the session's ZenML store: the runner and the server have their own
config dirs, and every ZenML call goes through a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from kaggle_emulator import KaggleEmulator
from kaggle_orchestrator.step_operators.kernel_token import MARGIN_S, token_claims

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USER = "nizami-team"
BUCKET = "nizami-team-artifacts"
# Made up per session: none of them may reach Kaggle (the code archive includes this file).
SECRETS = {
    "ZENML_ADMIN_PASSWORD": f"Adm1n-{secrets.token_hex(12)}",
    "ZENML_SERVER_JWT_SECRET_KEY": secrets.token_hex(32),
    "AWS_ACCESS_KEY_ID": f"AKIA{secrets.token_hex(8).upper()}",
    "AWS_SECRET_ACCESS_KEY": secrets.token_hex(20),
    "HF_TOKEN": f"hf_{secrets.token_hex(16)}",
    "WANDB_API_KEY": secrets.token_hex(20),
    "KAGGLE_API_TOKEN": f"KGAT_{secrets.token_hex(16)}",
}
STEPS = ["load_data", "train", "evaluate", "register", "package"]
KERNEL_ACCOUNT = "nizami-kaggle-kernel"
pytestmark = pytest.mark.e2e

QUERY = """
import json, sys
from zenml.client import Client
client = Client()
run = client.get_pipeline_run(sys.argv[1]) if len(sys.argv) > 1 else \\
    client.list_pipeline_runs(sort_by="desc:created", size=1).items[0]
steps = {}
for name, step in run.steps.items():
    steps[name] = {
        "status": step.status.value, "metadata": step.run_metadata, "cache_key": step.cache_key,
        "exception": step.exception_info.message if step.exception_info else None,
        "outputs": {k: [{"id": str(a.id), "uri": a.uri} for a in v]
                    for k, v in step.outputs.items()},
        "inputs": {k: [str(a.id) for a in v] for k, v in step.inputs.items()},
    }
print("RESULT" + json.dumps({"id": str(run.id), "name": run.name, "status": run.status.value,
                            "stack": run.stack.name if run.stack else None, "steps": steps},
                           default=str))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """This process's environment without ZenML's, Kaggle's or any credential variables."""
    drop = ("ZENML_", "KAGGLE_", "AWS_")
    return {k: v for k, v in os.environ.items()
            if not k.startswith(drop) and k not in SECRETS}


@contextlib.contextmanager
def _service(command: list[str], env: dict[str, str], log: Path, health: str) -> Iterator[None]:
    """A server process (its own process group) that answers ``health``; killed afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=log.parent, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=5).status_code < 500:
                    break
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


class Team:
    """The servers and the runner's environment."""

    def __init__(self, tmp: Path, zenml_url: str, s3_url: str, kaggle: KaggleEmulator) -> None:
        self.tmp, self.zenml_url, self.s3_url, self.kaggle = tmp, zenml_url, s3_url, kaggle
        self.api_key = ""
        self.kernel_api_key = ""  # the kernels' dedicated service account's
        self.env: dict[str, str] = {}
        self.secret_ids: dict[str, str] = {}
        self.probes: dict[str, dict] = {}  # what tokens could reach during the run

    def zenml(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
              timeout: float = 300) -> subprocess.CompletedProcess:
        """A command with the runner's ZenML environment (``python`` is this venv's)."""
        done = subprocess.run(list(args), cwd=ROOT, env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    def query(self, run_id: str = "", env: dict[str, str] | None = None) -> dict:
        done = self.zenml(sys.executable, "-c", QUERY, *([run_id] if run_id else []), env=env)
        return json.loads(done.stdout.split("RESULT", 1)[1])

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1",
                            aws_access_key_id=SECRETS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=SECRETS["AWS_SECRET_ACCESS_KEY"])


def _activate(url: str) -> tuple[str, str]:
    """Activate the server with an admin; API keys of the runner's and the kernels' accounts."""
    answer = httpx.put(f"{url}/api/v1/activate", timeout=60, json={
        "admin_username": "admin", "admin_password": SECRETS["ZENML_ADMIN_PASSWORD"]})
    answer.raise_for_status()
    login = httpx.post(f"{url}/api/v1/login", timeout=60, data={
        "username": "admin", "password": SECRETS["ZENML_ADMIN_PASSWORD"]})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    keys = []
    for name in ("nizami-ci", KERNEL_ACCOUNT):
        account = httpx.post(f"{url}/api/v1/service_accounts", headers=headers, timeout=60,
                             json={"name": name, "active": True}).json()
        key = httpx.post(f"{url}/api/v1/service_accounts/{account['id']}/api_keys",
                         headers=headers, timeout=60, json={"name": "ci"}).json()
        keys.append(key["body"]["key"])
    return keys[0], keys[1]


@pytest.fixture(scope="module")
def team(tmp_path_factory, kaggle_image) -> Iterator[Team]:
    tmp = tmp_path_factory.mktemp("team")
    zenml_port, s3_port = _free_port(), _free_port()
    zenml_url, s3_url = f"http://127.0.0.1:{zenml_port}", f"http://127.0.0.1:{s3_port}"
    (tmp / "server").mkdir()
    server_env = _clean_env() | {
        "ZENML_CONFIG_PATH": str(tmp / "server" / "config"),
        "ZENML_STORE_URL": f"sqlite:///{tmp / 'server' / 'zenml.db'}",
        "ZENML_SERVER_AUTH_SCHEME": "OAUTH2_PASSWORD_BEARER",
        "ZENML_SERVER_JWT_SECRET_KEY": SECRETS["ZENML_SERVER_JWT_SECRET_KEY"],
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_ANALYTICS_OPT_IN": "false",
        # A run-scoped token stops working as soon as its run has finished.
        "ZENML_WORKLOAD_TOKEN_EXPIRATION_LEEWAY": "0",
    }
    zenml_server = [str(BIN / "uvicorn"), "zenml.zen_server.zen_server_api:app",
                    "--host", "127.0.0.1", "--port", str(zenml_port)]
    moto = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)]
    pip_cache = Path.home() / ".cache" / "nizami" / "kernel-pip"  # kept between sessions
    with (
        _service(zenml_server, server_env, tmp / "server" / "server.log", f"{zenml_url}/health"),
        _service(moto, _clean_env(), tmp / "moto.log", s3_url),
        KaggleEmulator(root=tmp / "kaggle", username=USER, key=secrets.token_hex(16),
                       tokens={SECRETS["KAGGLE_API_TOKEN"]: USER}, python=kaggle_image,
                       extra_env={"PIP_CACHE_DIR": str(pip_cache)}) as kaggle,
    ):
        team = Team(tmp, zenml_url, s3_url, kaggle)
        team.api_key, team.kernel_api_key = _activate(zenml_url)
        team.env = _clean_env() | {
            "ZENML_CONFIG_PATH": str(tmp / "runner"),
            "ZENML_STORE_URL": zenml_url,
            "ZENML_STORE_API_KEY": team.api_key,
            "ZENML_ANALYTICS_OPT_IN": "false",
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "WANDB_MODE": "offline",  # the tracker stays offline though a `wandb` secret exists
        }
        team.s3().create_bucket(Bucket=BUCKET)
        yield team


@pytest.fixture(scope="module")
def team_stack(team: Team) -> Team:
    """The real `stacks/register.sh team` on the server, then pointed at the local servers."""
    # s3 is public: the kernel needs it. The others are private to the runner's account (the
    # kernel's account cannot read them), kaggle_kernel holds the kernels' account's API key.
    setup = (
        "import json, os\nfrom zenml.client import Client\nc = Client()\n"
        "c.create_secret('s3', values={'aws_access_key_id': os.environ['S3_KEY'],"
        " 'aws_secret_access_key': os.environ['S3_SECRET']})\n"
        "c.create_secret('huggingface', values={'token': os.environ['HF_TOKEN']}, private=True)\n"
        "c.create_secret('wandb', values={'api_key': os.environ['WANDB_API_KEY']}, private=True)\n"
        "c.create_secret('kaggle_kernel', values={'api_key': os.environ['KERNEL_KEY']},"
        " private=True)\n"
        "print('IDS' + json.dumps({s.name: str(s.id) for s in c.list_secrets(size=50).items}))\n"
    )
    made = team.zenml(sys.executable, "-c", setup, env=team.env | {
        "S3_KEY": SECRETS["AWS_ACCESS_KEY_ID"], "S3_SECRET": SECRETS["AWS_SECRET_ACCESS_KEY"],
        "HF_TOKEN": SECRETS["HF_TOKEN"], "WANDB_API_KEY": SECRETS["WANDB_API_KEY"],
        "KERNEL_KEY": team.kernel_api_key})
    team.secret_ids = json.loads(made.stdout.split("IDS", 1)[1])
    out = team.zenml("bash", "stacks/register.sh", "team").stdout
    assert "active stack: team" in out and "offline" in out, out
    # register.sh makes `team` active in the repository's .zen/config.yaml, which every other
    # ZenML store on this checkout shares (and resets): the runner names its stack instead.
    team.env["ZENML_ACTIVE_STACK_ID"] = _stack_id(team, "team")
    # The Kubernetes variant shares the components; imported before they are pointed elsewhere.
    team.zenml("zenml", "stack", "import", "team-k8s", "-f", "stacks/team-k8s.yaml")
    update = (
        "import os, sys\nfrom zenml.client import Client\nfrom zenml.enums import "
        "StackComponentType as T\nc = Client()\n"
        "c.update_stack_component('nizami_s3', T.ARTIFACT_STORE, configuration={"
        "'path': 's3://" + BUCKET + "', 'client_kwargs': {'endpoint_url': sys.argv[1],"
        " 'region_name': 'us-east-1'}})\n"
        "c.update_stack_component('kaggle_server', T.STEP_OPERATOR, configuration={"
        "'api_endpoint': sys.argv[2], 'max_retries': 3,"
        " 'kernel_api_key': '{{kaggle_kernel.api_key}}'})\n"
        "c.update_stack('team', component_updates={T.MODEL_REGISTRY: []})\n"
    )
    team.zenml(sys.executable, "-c", update, team.s3_url, team.kaggle.url)
    return team


def _run_files(team: Team, name: str, **settings) -> tuple[Path, Path]:
    raw = yaml.safe_load((ROOT / "stacks" / "run-configs" / "team.yaml").read_text())
    raw["steps"]["train"]["settings"]["step_operator"] |= {"poll_interval_s": 1, **settings}
    run_config = team.tmp / f"{name}-run.yaml"
    run_config.write_text(yaml.safe_dump(raw))
    config = yaml.safe_load((ROOT / "pipelines" / "configs" / "tiny.yaml").read_text())
    config["output_dir"] = str(team.tmp / f"{name}-out")
    config_path = team.tmp / f"{name}-tiny.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return config_path, run_config


def _pipeline(team: Team, name: str, env: dict[str, str] | None = None,
              during: Callable[[], bool] | None = None, **settings) -> subprocess.CompletedProcess:
    """Run the pipeline; ``during`` is called every 0.5 s while it runs, until it returns True."""
    config, run_config = _run_files(team, name, **settings)
    env = (env or team.env) | {
        "KAGGLE_API_TOKEN": SECRETS["KAGGLE_API_TOKEN"],  # on the runner only
        "HF_TOKEN": SECRETS["HF_TOKEN"], "WANDB_API_KEY": SECRETS["WANDB_API_KEY"],
    }
    command = [sys.executable, "-m", "pipelines.run", "--config", str(config),
               "--run-config", str(run_config)]
    if during is None:
        return team.zenml(*command, env=env, check=False, timeout=1200)
    out, err = team.tmp / f"{name}.stdout", team.tmp / f"{name}.stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr,
                                   text=True)
        done_watching = False
        while process.poll() is None:
            done_watching = done_watching or during()
            time.sleep(0.5)
        process.wait(timeout=1200)
    return subprocess.CompletedProcess(command, process.returncode, out.read_text(),
                                       err.read_text())


def _probe(team: Team, token: str) -> dict[str, dict]:
    """What ``token`` reaches on the server: status, and secret values or listed names."""
    def get(path: str) -> httpx.Response:
        return httpx.get(f"{team.zenml_url}/api/v1/{path}", timeout=30,
                         headers={"Authorization": f"Bearer {token}"})

    found = {}
    for name, path in {"current-user": "current-user", "secrets": "secrets?size=50",
                       "runs": "runs", "stacks": "stacks", "users": "users",
                       **{f"secret {n}": f"secrets/{i}" for n, i in team.secret_ids.items()}
                       }.items():
        answer = get(path)
        record = {"status": answer.status_code}
        if answer.status_code == 200:
            body = answer.json()
            if name == "current-user":
                record["name"] = body["name"]
            elif name.startswith("secret "):
                record["values"] = body["body"].get("values") or {}
            elif "items" in body:
                record["names"] = sorted(item.get("name", "") for item in body["items"])
        found[name] = record
    return found


def _watch_the_kernels_token(team: Team) -> Callable[[], bool]:
    """While the run lasts: once the bundle reached Kaggle, probe its token and, for the
    comparison, the token ZenML itself mints for the run (the runner's account's)."""
    def during() -> bool:
        token = _bundle_token(team.kaggle, missing_ok=True)
        if token is None:
            return False
        run_id = token_claims(token)["pipeline_run_id"]
        team.probes["kernel"] = _probe(team, token)
        login = httpx.post(f"{team.zenml_url}/api/v1/login", timeout=30, data={
            "grant_type": "zenml-api-key", "password": team.api_key}).json()["access_token"]
        runners = httpx.get(f"{team.zenml_url}/api/v1/api_token", timeout=30,
                            params={"token_type": "workload", "pipeline_run_id": run_id},
                            headers={"Authorization": f"Bearer {login}"}).json()
        team.probes["zenml_default"] = _probe(team, runners)
        team.probes["zenml_default_token"] = {"token": runners}
        return True

    return during


@pytest.fixture(scope="module")
def team_run(team_stack: Team) -> tuple[dict, subprocess.CompletedProcess]:
    """One run, with transient faults on the way: a 429 on a status poll, a 500 on the push."""
    team_stack.kaggle.faults.rate_limit("GetKernelSessionStatus", times=1, retry_after=1)
    team_stack.kaggle.faults.http_error("SaveKernel", status=500, times=1)
    done = _pipeline(team_stack, "team", during=_watch_the_kernels_token(team_stack))
    run = team_stack.query()
    return run, done


def _kernel(team: Team, run: dict):
    record = run["steps"]["train"]["metadata"]["kaggle"]
    return team.kaggle.kernel_version(f"{USER}/{record['kernel_slug']}", record["kernel_version"])


def test_train_runs_in_the_kernel_against_the_server(team_run, team_stack):
    run, done = team_run
    assert run["status"] == "completed", done.stdout[-4000:] + done.stderr[-4000:]
    assert run["stack"] == "team"
    assert {n: s["status"] for n, s in run["steps"].items()} == dict.fromkeys(STEPS, "completed")
    record = run["steps"]["train"]["metadata"]["kaggle"]
    assert record["mode"] == "server" and record["machine_shape"] == "NvidiaTeslaT4"
    version = _kernel(team_stack, run)
    assert version.status.value == "COMPLETE"
    log = version.log_text()
    # ZenML ran in the kernel: it downloaded the code archive from S3 and ran the step there.
    assert f"s3://{BUCKET}/code_uploads/" in log and "Code download finished" in log
    assert "LoRA:" in log
    report = json.loads((Path(version.working_dir) / "kernel-report.json").read_text())
    assert report["python"].startswith("3.12") and report["image"]["zenml"] is None
    assert {"zenml==0.98.0", "s3fs==2026.9.0", "peft==0.21.2"} <= set(report["installed"])
    # The kernel log streamed live into the runner's step log too.
    assert "[kaggle running" in done.stdout + done.stderr
    # The transient faults were retried (the 500, refused before it was carried out, is pushed
    # again; nothing is deleted).
    assert team_stack.kaggle.faults.pending() == []
    assert len(team_stack.kaggle.recording.calls("SaveKernel")) >= 2


def test_the_kernels_adapter_lands_in_s3_and_evaluate_consumes_it(team_run, team_stack):
    run, _ = team_run
    (adapter,) = run["steps"]["train"]["outputs"]["adapter"]
    assert adapter["uri"].startswith(f"s3://{BUCKET}/")
    prefix = adapter["uri"].removeprefix(f"s3://{BUCKET}/")
    listed = team_stack.s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    assert listed.get("KeyCount", 0) > 0, listed
    assert run["steps"]["evaluate"]["inputs"]["adapter"] == [adapter["id"]]
    assert run["steps"]["train"]["metadata"]["train"]["train_loss"] > 0  # logged in the kernel


def test_run_steps_and_metadata_are_on_the_server(team_run, team_stack):
    run, _ = team_run
    login = httpx.post(f"{team_stack.zenml_url}/api/v1/login", timeout=60, data={
        "username": "admin", "password": SECRETS["ZENML_ADMIN_PASSWORD"]})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    steps = httpx.get(f"{team_stack.zenml_url}/api/v1/steps", headers=headers, timeout=60,
                      params={"pipeline_run_id": run["id"], "hydrate": True}).json()["items"]
    assert sorted(s["name"] for s in steps) == sorted(STEPS)
    train = next(s for s in steps if s["name"] == "train")
    assert train["body"]["status"] == "completed"
    assert train["metadata"]["run_metadata"]["kaggle"]["mode"] == "server"


def _bundle_token(kaggle: KaggleEmulator, missing_ok: bool = False) -> str | None:
    """The kernel's token, from the bundle's environment.json (the only place it is sent)."""
    for blob in list(kaggle.recording.blobs):
        with (contextlib.suppress(tarfile.TarError, OSError, EOFError),
              tarfile.open(blob.path) as tar):
            member = next((m for m in tar.getmembers() if m.name.endswith("environment.json")),
                          None)
            if member is not None:
                return json.loads(tar.extractfile(member).read())["ZENML_STORE_API_TOKEN"]
    if missing_ok:
        return None
    raise AssertionError("no bundle with environment.json reached the emulator")


def test_only_the_run_scoped_token_reaches_kaggle(team_run, team_stack):
    run, _ = team_run
    kaggle = team_stack.kaggle
    long_lived = SECRETS | {"ZENML_STORE_API_KEY": team_stack.api_key,
                            "kernel_api_key": team_stack.kernel_api_key}
    for name, value in long_lived.items():
        # The Kaggle token goes where the protocol puts it: the Authorization header (not
        # recorded) and IntrospectToken's body.
        hits = [h for h in kaggle.recording.find(value) if "IntrospectToken" not in h]
        assert hits == [], f"{name} reached the emulator: {hits}"
    token = _bundle_token(kaggle)
    assert token_claims(token)["pipeline_run_id"] == run["id"]
    hits = kaggle.recording.find(token)
    assert hits and all(h.startswith("blob ") and "environment.json" in h for h in hits), hits
    version = _kernel(team_stack, run)
    sources = [c.json()["text"] for c in kaggle.recording.calls("SaveKernel")]
    # The source holds no part of the step environment (Kaggle keeps every version's source).
    assert sources and all(token not in s and team_stack.zenml_url not in s for s in sources)
    assert token not in version.log_text()
    for path in Path(version.working_dir).rglob("*"):  # Kaggle keeps a version's output
        if path.is_file():
            data = path.read_bytes()
            assert token.encode() not in data, path
            for name, value in long_lived.items():
                assert value.encode() not in data, f"{name} in {path}"
    slug = run["steps"]["train"]["metadata"]["kaggle"]["kernel_slug"]
    assert (USER.lower(), f"{slug}-bundle") not in kaggle.state.datasets  # deleted at the end


def _refused_after_the_run(team: Team, token: str) -> dict[str, dict]:
    """Probe ``token`` until the server refuses it (it caches a run's status for 30 s)."""
    deadline = time.monotonic() + 120
    while True:
        found = _probe(team, token)
        if found["current-user"]["status"] != 200 or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_the_kernels_token_is_its_own_accounts_and_ends_with_the_run(team_run, team_stack):
    """Issue 22 item 3: what the kernel's token reaches during the run and after it, against
    what ZenML's own token for the run (the runner's account's) reaches."""
    run, done = team_run
    assert run["status"] == "completed", done.stdout[-4000:] + done.stderr[-4000:]
    token = _bundle_token(team_stack.kaggle)
    claims = token_claims(token)
    record = run["steps"]["train"]["metadata"]["kaggle"]
    assert claims["pipeline_run_id"] == run["id"]
    # It expires by itself too: timeout_s + the margin after the push (and the run's end).
    timeout_s = yaml.safe_load((ROOT / "stacks" / "run-configs" / "team.yaml").read_text())[
        "steps"]["train"]["settings"]["step_operator"].get("timeout_s", 43200)
    assert 0 < claims["exp"] - time.time() <= timeout_s + MARGIN_S, (claims, record)
    kernel, default = team_stack.probes["kernel"], team_stack.probes["zenml_default"]
    (team_stack.tmp / "probes.json").write_text(json.dumps(team_stack.probes, indent=1))
    # During the run: the kernel's token is the dedicated account's ...
    assert kernel["current-user"] == {"status": 200, "name": KERNEL_ACCOUNT}
    assert default["current-user"] == {"status": 200, "name": "nizami-ci"}
    # ... it reads the one secret the kernel needs (the artifact store's), with its values ...
    assert kernel["secret s3"]["values"] == {
        "aws_access_key_id": SECRETS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": SECRETS["AWS_SECRET_ACCESS_KEY"]}
    # ... and neither reads nor lists the runner's private ones; ZenML's own token did both.
    for name in ("huggingface", "wandb", "kaggle_kernel"):
        assert kernel[f"secret {name}"]["status"] == 404, kernel
        assert default[f"secret {name}"]["status"] == 200 and default[f"secret {name}"]["values"]
    assert kernel["secrets"]["names"] == ["s3"]
    assert default["secrets"]["names"] == ["huggingface", "kaggle_kernel", "s3", "wandb"]
    # ZenML OSS has no RBAC: during the run both list every run, stack and account.
    for probe in (kernel, default):
        assert run["name"] in probe["runs"]["names"] and "team" in probe["stacks"]["names"]
        assert probe["users"]["status"] == 200
    # After the run (leeway 0): both are refused, on every endpoint, the secrets' included.
    for name, tok in (("kernel", token),
                      ("zenml_default", team_stack.probes["zenml_default_token"]["token"])):
        after = _refused_after_the_run(team_stack, tok)
        assert {k: v["status"] for k, v in after.items()} == dict.fromkeys(after, 401), name


def test_an_unchanged_rerun_is_a_cache_hit_that_never_reaches_kaggle(team_run, team_stack):
    """The team server's step cache: what CI relies on when a push changes nothing of train."""
    calls = len(team_stack.kaggle.recording.requests)
    out = team_stack.tmp / "team-out"
    (out / "metrics.json").unlink()
    done = _pipeline(team_stack, "team")
    run = team_stack.query()
    assert run["status"] == "completed", done.stdout[-3000:] + done.stderr[-3000:]
    statuses = {name: step["status"] for name, step in run["steps"].items()}
    keys = {n: (s["cache_key"], team_run[0]["steps"][n]["cache_key"])
            for n, s in run["steps"].items()}
    assert statuses == {"load_data": "cached", "train": "cached", "evaluate": "cached",
                        "register": "cached", "package": "completed"}, (keys, done.stdout[-3000:])
    assert len(team_stack.kaggle.recording.requests) == calls  # not even a quota call
    # What the CI job summary and artifact upload read, though evaluate did not run.
    assert json.loads((out / "steps.json").read_text())["steps"] == statuses
    assert json.loads((out / "metrics.json").read_text())["tuned"]
    assert "cached steps   load_data, train, evaluate, register" in done.stdout


def test_kubernetes_variant_validates(team_stack):
    team_stack.zenml(sys.executable, "-m", "kaggle_orchestrator.stack_check", "team-k8s")
    described = team_stack.zenml("zenml", "stack", "describe", "team-k8s")
    text = described.stdout + described.stderr
    for part in ("nizami_k8s", "kaggle_server", "nizami_s3", "nizami_registry", "nizami_docker"):
        assert part in text, text
    code = ("from zenml.client import Client\n"
            "stack = Client().get_stack('team-k8s')\n"
            "print({t.value: c[0].flavor_name for t, c in stack.components.items()})")
    flavors = team_stack.zenml(sys.executable, "-c", code).stdout.strip().splitlines()[-1]
    assert "'orchestrator': 'kubernetes'" in flavors and "'step_operator': 'kaggle'" in flavors
    assert "'artifact_store': 's3'" in flavors, flavors


def _stack_id(team: Team, name: str, env: dict[str, str] | None = None) -> str:
    code = "import sys\nfrom zenml.client import Client\nprint(Client().get_stack(sys.argv[1]).id)"
    return team.zenml(sys.executable, "-c", code, name, env=env).stdout.strip().splitlines()[-1]


def _uploads(kaggle: KaggleEmulator) -> int:
    return len(kaggle.recording.calls("SaveKernel")) + len(kaggle.recording.calls("CreateDataset"))


def test_server_mode_on_a_local_artifact_store_is_refused(team_stack, team_run):
    kaggle = team_stack.kaggle
    pushes = _uploads(kaggle)
    team_stack.zenml("zenml", "stack", "register", "team-local-store", "-o", "default",
                     "-a", "default", "-s", "kaggle_server", "-e", "nizami_wandb")
    check = team_stack.zenml(sys.executable, "-m", "kaggle_orchestrator.stack_check",
                             "team-local-store", check=False)
    assert check.returncode == 1
    assert "cannot reach the local artifact store 'default'" in check.stderr
    assert "--flavor=s3" in check.stderr and "--mode=standalone" in check.stderr
    env = team_stack.env | {"ZENML_ACTIVE_STACK_ID": _stack_id(team_stack, "team-local-store")}
    done = _pipeline(team_stack, "local-store", env=env)
    assert done.returncode != 0
    said = " ".join((done.stdout + done.stderr).split())  # a rich traceback wraps lines
    assert "cannot reach the local artifact store 'default'" in said
    assert "--mode=standalone" in said
    assert _uploads(kaggle) == pushes  # nothing reached Kaggle


def test_server_mode_on_a_local_zenml_store_is_refused(team_stack, team_run):
    kaggle = team_stack.kaggle
    pushes = len(kaggle.recording.calls("SaveKernel"))
    local = _clean_env() | {"ZENML_CONFIG_PATH": str(team_stack.tmp / "local-store"),
                            "ZENML_ANALYTICS_OPT_IN": "false", "PATH": team_stack.env["PATH"]}
    registered = team_stack.zenml("bash", "stacks/register.sh", "team", env=local, check=False)
    assert registered.returncode != 0
    assert "uses a local ZenML store" in registered.stderr
    assert "ZENML_STORE_URL and ZENML_STORE_API_KEY" in registered.stderr
    env = local | {"ZENML_ACTIVE_STACK_ID": _stack_id(team_stack, "team", env=local)}
    done = _pipeline(team_stack, "local-zenml", env=env)
    assert done.returncode != 0
    assert "uses a local ZenML store" in " ".join((done.stdout + done.stderr).split())
    assert len(kaggle.recording.calls("SaveKernel")) == pushes
