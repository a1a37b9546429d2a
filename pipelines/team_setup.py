"""What ``make team-up`` sets up in the servers it started (``team_local.py``): the runner's
environment (its own ZenML config, never your default store), the ZenML server's activation and
service account, and the snippets run with ZenML's client in subprocesses."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import httpx

from pipelines.local_services import TeamLocalError, _write_private

BIN = Path(sys.executable).parent
SERVICE_ACCOUNT = "nizami-runner"
# The Kaggle kernels' own account: its token cannot read the runner's private secrets
# (docs/secrets.md, "The kernel's ZenML token"). Its key is the runner's private secret below.
KERNEL_ACCOUNT = "nizami-kaggle-kernel"
KERNEL_SECRET = "kaggle_kernel"
# Variables of the caller that must not leak into the servers or the runner.
FOREIGN_PREFIXES = ("ZENML_", "KAGGLE_", "AWS_")
FOREIGN_NAMES = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


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


# --- the ZenML server -------------------------------------------------------------------------


def _activate_server(url: str, admin_password: str) -> str:
    """Activate the fresh server with ``admin``; a service account's API key for the runner,
    and one for the kernels, kept as the runner's private secret ``kaggle_kernel``."""

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
    def account_key(name: str) -> str:
        account = call("POST", "/api/v1/service_accounts", token, json={"name": name,
                                                                        "active": True})
        key = call("POST", f"/api/v1/service_accounts/{account['id']}/api_keys", token,
                   json={"name": "team-local"})
        return key["body"]["key"]

    runner_key, kernel_key = account_key(SERVICE_ACCOUNT), account_key(KERNEL_ACCOUNT)
    runner = call("POST", "/api/v1/login",
                  data={"grant_type": "zenml-api-key", "password": runner_key})["access_token"]
    call("POST", "/api/v1/secrets", runner,
         json={"name": KERNEL_SECRET, "private": True, "values": {"api_key": kernel_key}})
    return runner_key


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
    "api_endpoint": kaggle_url, "kernel_api_key": "{{kaggle_kernel.api_key}}"})
# The Hugging Face Hub registry needs the internet: off this stack (ZenML Model versions stay).
c.update_stack("team", component_updates={T.MODEL_REGISTRY: []})
print("STACK_ID", c.get_stack("team").id)
"""


# `python -m kaggle_emulator` with its key and token taken from the environment,
# so that they are not on a command line (`ps` shows those to every user of the machine).
EMULATOR = """
import os, sys
from kaggle_emulator.__main__ import main
key, token = os.environ.pop("TEAM_KAGGLE_KEY"), os.environ.pop("TEAM_KAGGLE_TOKEN")
main(sys.argv[1:] + ["--key", key, "--token", token])
"""
