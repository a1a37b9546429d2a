"""``stacks/register.sh`` registers the stacks in any order and again (``pipelines.stack_import``).

On a throwaway ZenML store, with the real stack files: ``team`` then ``team-k8s`` after the
documented ``zenml artifact-store update`` of their shared ``nizami_s3`` (which ``zenml stack
import`` refused: "configured differently"), a re-registration that keeps what was pointed
elsewhere and restores the file's components, and a flavor conflict that changes nothing and
names the command that resolves it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_STORE", "WANDB_"))}
    return env | {"ZENML_CONFIG_PATH": str(tmp_path / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false",
                  "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}


def _py(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_stacks_register_in_any_order_and_again(tmp_path):
    env = _env(tmp_path)
    assert _py(env, "-m", "pipelines.flavors").returncode == 0
    team = _py(env, "-m", "pipelines.stack_import", "team")
    assert team.returncode == 0 and "stack 'team' registered" in team.stdout, team.stderr
    point = _py(env, "-c", "from zenml.client import Client; Client().update_stack_component("
                "'nizami_s3', 'artifact_store', configuration={'path': 's3://our-bucket'})")
    assert point.returncode == 0, point.stderr
    k8s = _py(env, "-m", "pipelines.stack_import", "team-k8s")
    assert k8s.returncode == 0, k8s.stdout + k8s.stderr
    assert "artifact_store nizami_s3: exists, used as it is (configured here, not as the " \
           "file: path)" in k8s.stdout
    assert "orchestrator nizami_k8s: created" in k8s.stdout
    # its requirements (ZenML's: the kubernetes client, <26) install with it, pins held
    needs = _py(env, "-m", "pipelines.stack_requirements", "team-k8s")
    assert needs.returncode == 0, needs.stdout + needs.stderr
    client = _py(env, "-c", "import kubernetes; print(kubernetes.__version__)")
    assert client.returncode == 0 and int(client.stdout.split(".")[0]) < 26, client.stderr
    drop = _py(env, "-c", "from zenml.client import Client; Client().update_stack('team', "
               "component_updates={'model_registry': []})")
    assert drop.returncode == 0, drop.stderr
    again = _py(env, "-m", "pipelines.stack_import", "team")
    assert "stack 'team' updated to the components of team.yaml" in again.stdout, again.stderr
    same = _py(env, "-m", "pipelines.stack_import", "team")
    assert "stack 'team' already registered" in same.stdout
    check = _py(env, "-c", "from zenml.client import Client; c = Client(); "
                "print(c.get_stack('team').components['model_registry'][0].name, "
                "c.get_stack_component('artifact_store', 'nizami_s3').configuration['path'])")
    assert check.stdout.split()[-2:] == ["hf_hub", "s3://our-bucket"], check.stderr


@pytest.mark.slow
def test_a_flavor_conflict_changes_nothing_and_says_how_to_resolve_it(tmp_path):
    env = _env(tmp_path)
    assert _py(env, "-m", "pipelines.flavors").returncode == 0
    clash = _py(env, "-c", "from zenml.client import Client; Client().create_stack_component("
                "'nizami_wandb', 'wandb', 'experiment_tracker', {'api_key': 'x'})")
    assert clash.returncode == 0, clash.stderr
    done = _py(env, "-m", "pipelines.stack_import", "local")
    assert done.returncode == 1
    assert "the experiment_tracker 'nizami_wandb' exists with flavor 'wandb', the file wants " \
           "'nizami_wandb'. Nothing was changed." in done.stderr, done.stderr
    assert "zenml experiment-tracker rename nizami_wandb nizami_wandb_old" in done.stderr
    stacks = _py(env, "-c", "from zenml.client import Client; "
                 "print([s.name for s in Client().list_stacks().items])")
    assert "'local'" not in stacks.stdout


def test_stack_requirements_are_checked_and_installed_without_moving_a_pin():
    from pipelines.stack_requirements import install, missing

    assert missing(["pytest", "PyYAML>=5"]) == []
    assert missing(["pytest<1", "no-such-package-nizami"]) == ["pytest<1", "no-such-package-nizami"]
    moved = install(["pytest<9"])  # the project pins pytest 9.2.0: held, so pip refuses
    assert moved.returncode != 0 and "pytest" in moved.stderr
    from importlib import metadata

    assert metadata.version("pytest") == "9.2.0"
