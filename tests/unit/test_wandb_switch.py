"""W&B online or offline is decided per run from what is set now, with the true reason.

Before: ``stacks/register.sh`` stored the key in the ZenML secret ``wandb`` and switched the
shared tracker component online, so the choice stuck after ``unset WANDB_API_KEY``,
``WANDB_MODE=offline`` was reported as "no key", and registering a second stack with a key set
failed ("configured differently"). W&B itself is never contacted: a loopback server stands in
for "W&B answers", a closed port for "W&B does not".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import answering_server, refused_port

from pipelines import tracker

ROOT = Path(__file__).resolve().parents[2]
KEY = "wandb-key-made-up-for-this-test-" + os.urandom(4).hex()


@pytest.fixture
def wandb_answers(monkeypatch):
    with answering_server() as url:
        monkeypatch.setenv("WANDB_BASE_URL", url)
        for name in ("WANDB_API_KEY", "WANDB_MODE", tracker.DECISION_ENV):
            monkeypatch.delenv(name, raising=False)
        yield


def _refused_url() -> str:
    return f"http://127.0.0.1:{refused_port()}"


@pytest.mark.slow
def test_each_decision_follows_the_environment_of_that_moment(wandb_answers, monkeypatch):
    none = tracker.decide()
    assert not none.online and "no WANDB_API_KEY" in none.reason
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    online = tracker.decide()
    assert online.online and online.key == KEY and online.reason == "key from WANDB_API_KEY"
    assert KEY not in repr(online) and KEY not in online.describe()
    monkeypatch.setenv("WANDB_MODE", "offline")
    forced = tracker.decide()
    assert not forced.online and forced.reason == "WANDB_MODE=offline is set"  # the true reason
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_BASE_URL", _refused_url())
    silent = tracker.decide()
    assert not silent.online and "key from WANDB_API_KEY, but W&B at" in silent.reason
    assert "does not answer: ConnectError" in silent.reason
    monkeypatch.delenv("WANDB_API_KEY")  # unset: the next run is offline, nothing stuck
    assert not tracker.decide().online


def test_a_run_decides_once_and_its_step_processes_reuse_it(wandb_answers, monkeypatch):
    """The first step decides; later steps and a Kaggle step's local entrypoint (a child
    process) take the same decision without probing again; another run decides afresh."""
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert tracker.current("run-1").online  # decided, recorded for this run
    monkeypatch.setenv("WANDB_BASE_URL", _refused_url())  # probing now would go offline
    assert tracker.current("run-1").online
    child = ("import sys; from pipelines.tracker import current; d = current(sys.argv[1]); "
             "print(d.online, d.reason)")
    said = subprocess.run([sys.executable, "-c", child, "run-1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip()
    assert said == "True key from WANDB_API_KEY", said
    said = subprocess.run([sys.executable, "-c", child, "run-2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip()
    assert said.startswith("False key from WANDB_API_KEY, but W&B at"), said


@pytest.mark.slow
def test_stacks_register_in_any_order_with_or_without_a_key(tmp_path):
    """The real ``stacks/register.sh`` on a throwaway store: with a key set, ``kaggle`` then
    ``local`` (they share the tracker); then ``local`` again without it. Nothing about W&B is
    stored: no ZenML secret, no key in the component or anywhere in the store's files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "NIZAMI_WANDB"))}
    env |= {"ZENML_CONFIG_PATH": str(tmp_path / "zenml"), "ZENML_ANALYTICS_OPT_IN": "false",
            "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}

    def register(name: str, **extra: str) -> str:
        done = subprocess.run(["bash", "stacks/register.sh", name], cwd=ROOT, env=env | extra,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "W&B online (key from WANDB_API_KEY)" in register("kaggle", WANDB_API_KEY=KEY)
    assert "W&B online (key from WANDB_API_KEY)" in register("local", WANDB_API_KEY=KEY)
    said = register("local")
    assert "W&B offline (no WANDB_API_KEY in the environment and no ZenML secret" in said
    probe = ("from zenml.client import Client; c = Client(); "
             "print([s.name for s in c.list_secrets().items]); "
             "print(c.get_stack_component('experiment_tracker', 'nizami_wandb').configuration)")
    secrets, config = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=300,
                                     check=True).stdout.strip().splitlines()[-2:]
    assert secrets == "[]" and "api_key" not in config, (secrets, config)
    stored = [p for p in (tmp_path / "zenml").rglob("*") if p.is_file()
              and KEY.encode() in p.read_bytes()]
    assert not stored, stored


def test_the_tracker_opens_the_run_in_this_runs_mode_and_leaves_the_users_key(
    wandb_answers, monkeypatch
):
    """ZenML's tracker set ``WANDB_API_KEY`` from its config and popped it after each step; the
    project's takes this run's decision and puts the user's own variable back."""
    import datetime
    import uuid
    from types import SimpleNamespace

    from zenml.enums import StackComponentType
    from zenml.integrations.wandb.experiment_trackers import run_initialization

    from pipelines.wandb_flavor import NizamiWandbConfig
    from pipelines.wandb_tracker import NizamiWandbTracker

    now = datetime.datetime.now()
    made = NizamiWandbTracker(
        name="nizami_wandb", id=uuid.uuid4(), config=NizamiWandbConfig(project_name="p"),
        flavor="nizami_wandb", type=StackComponentType.EXPERIMENT_TRACKER, user=None,
        created=now, updated=now,
    )
    opened: list[tuple[dict, str | None]] = []
    monkeypatch.setattr(run_initialization, "build_wandb_initialization",
                        lambda **_: {"name": "r_train", "settings": {"silent": True}})
    monkeypatch.setattr(made, "get_settings", lambda info: None)
    monkeypatch.setattr(made, "_initialize_wandb", lambda info, **kwargs: opened.append(
        (kwargs, os.environ.get("WANDB_API_KEY"))))
    finished: list[int] = []
    monkeypatch.setitem(sys.modules, "wandb", type(sys)("wandb"))
    sys.modules["wandb"].finish = lambda exit_code=0: finished.append(exit_code)

    made.prepare_step_run(SimpleNamespace(run_id=1))  # no key: offline
    made.cleanup_step_run(None, step_failed=False)
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    made.prepare_step_run(SimpleNamespace(run_id=2))  # the next run
    made.cleanup_step_run(None, step_failed=True)
    assert [kwargs["settings"]["mode"] for kwargs, _ in opened] == ["offline", "online"]
    assert opened[1][1] == KEY and opened[0][0]["settings"]["silent"] is True
    assert os.environ["WANDB_API_KEY"] == KEY and finished == [0, 1]
