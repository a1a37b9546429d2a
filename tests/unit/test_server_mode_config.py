"""Server mode's pure parts: pinned kernel requirements, the environment that may travel, the
pushed script, and the kernel's run of ZenML's entrypoint (token from the bundle, never shown).
The whole path against a ZenML server, S3 and the emulator: tests/integration/
test_kaggle_server_mode.py."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import ROOT
from zenml.config import DockerSettings
from zenml.enums import StackComponentType

from kaggle_orchestrator import kernel
from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings
from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import (
    OPERATOR_WIDE,
    OperatorSettingError,
)
from kaggle_orchestrator.stack_check import server_mode_problem
from kaggle_orchestrator.step_operators import server_mode
from kaggle_orchestrator.step_operators.kaggle_step_operator import KaggleStepOperator

RUN_ID = uuid.UUID("0123456789abcdef0123456789abcdef")


def _token(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_requirements_are_pinned_to_this_environment():
    assert server_mode.pin("s3fs>2022.3.0,!=2025.3.1") == f"s3fs=={metadata.version('s3fs')}"
    assert server_mode.pin("zenml[s3]>=0.90") == f"zenml[s3]=={metadata.version('zenml')}"
    assert server_mode.pin("not-installed-here-xyz>=1") == "not-installed-here-xyz>=1"
    assert server_mode.pin("pywin32; sys_platform == 'win32'") is None
    with pytest.raises(server_mode.ServerModeError, match="kernel requirement"):
        server_mode.pin("not a requirement ==")


class _Stack:
    """What ZenML's requirement gathering asks of a stack."""

    def requirements(self, exclude_components=None) -> set[str]:
        return {"s3fs>2022.3.0,!=2025.3.1", "boto3", "wandb>=0.12.12,<1.0.0"}


def test_kernel_requirements_gather_stack_and_step_and_pin_them():
    config = KaggleStepOperatorConfig()
    docker = DockerSettings(requirements=["moto"])
    requirements = server_mode.kernel_requirements(docker, _Stack(), config.packages,
                                                   ("boto3==1.0.0",))
    assert requirements[0] == f"zenml=={metadata.version('zenml')}"
    assert f"s3fs=={metadata.version('s3fs')}" in requirements
    assert f"moto=={metadata.version('moto')}" in requirements  # the step's own requirement
    assert "boto3==1.0.0" in requirements  # extra_requirements win over a gathered pin
    names = [r.split("==")[0].lower() for r in requirements]
    assert len(names) == len(set(names)) and names.count("wandb") == 1
    assert all("==" in r for r in requirements)


def test_only_zenml_variables_and_the_run_scoped_token_travel():
    token = _token({"user_id": str(uuid.uuid4()), "pipeline_run_id": str(RUN_ID)})
    environment = {
        "ZENML_STORE_URL": "https://zenml.example", "ZENML_STORE_API_TOKEN": token,
        "ZENML_ACTIVE_STACK_ID": str(uuid.uuid4()), "DISABLE_CREDENTIALS_DISK_CACHING": "true",
        "ZENML_STEP_OPERATOR": "True", "TOKENIZERS_PARALLELISM": "false",
    }
    assert server_mode.kernel_environment(environment, RUN_ID) == environment
    for name in ("HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "ZENML_STORE_API_KEY"):
        with pytest.raises(server_mode.ServerModeError, match=f"{name}.*ZenML secret"):
            server_mode.kernel_environment(environment | {name: "x"}, RUN_ID)


def test_a_token_not_scoped_to_the_run_is_refused():
    other_run = _token({"user_id": "u", "pipeline_run_id": str(uuid.uuid4())})
    generic = _token({"user_id": "u", "exp": 1})
    for token in (other_run, generic):
        with pytest.raises(server_mode.ServerModeError, match="not scoped to its pipeline run"):
            server_mode.kernel_environment({"ZENML_STORE_API_TOKEN": token}, RUN_ID)
    with pytest.raises(server_mode.ServerModeError, match="not a JWT"):
        server_mode.kernel_environment({"ZENML_STORE_API_TOKEN": "opaque"}, RUN_ID)


def test_server_mode_is_remote_and_standalone_is_not():
    assert KaggleStepOperatorConfig(mode="server").is_remote is True
    assert KaggleStepOperatorConfig().is_remote is False
    assert KaggleStepOperatorConfig(mode="server").is_local is False


def test_the_stack_check_says_what_to_do_instead():
    local_store = server_mode_problem("kaggle_server", "team", "default", True, "/root/x",
                                      False, "https://zenml.example")
    assert "cannot reach the local artifact store 'default' (/root/x)" in local_store
    assert "--flavor=s3" in local_store and "zenml stack update team -a" in local_store
    assert "zenml step-operator update kaggle_server --mode=standalone" in local_store
    local_zenml = server_mode_problem("kaggle_server", "team", "s3", False, "s3://b", True,
                                      "sqlite:////x/zenml.db")
    assert "local ZenML store (sqlite:////x/zenml.db)" in local_zenml
    assert "ZENML_STORE_URL and ZENML_STORE_API_KEY" in local_zenml
    assert server_mode_problem("k", "team", "s3", False, "s3://b", False, "https://z") == ""


COMMAND = ["python", "-m", "zenml.entrypoints.entrypoint", "--entrypoint_config_source",
           "zenml.step_operators.step_operator_entrypoint_configuration."
           "StepOperatorEntrypointConfiguration", "--snapshot_id", str(uuid.uuid4()),
           "--step_name", "train", "--step_run_id", str(uuid.uuid4())]


def test_the_server_mode_script_holds_the_command_but_no_environment():
    names = kernel.KernelNames.for_step_run("nizami", "train", RUN_ID)
    script = kernel.kernel_script("alice", names, ["zenml==0.98.0"], command=COMMAND,
                                  env=server_mode.KERNEL_EXTRA_ENV)
    namespace: dict = {"__name__": "not_main"}
    exec(script, namespace)
    config = namespace["CONFIG"]
    assert config["command"] == COMMAND
    assert config["environment_file"] == kernel.ENVIRONMENT_FILE
    assert config["env"]["WANDB_DIR"] == "/kaggle/working"
    assert "ZENML_STORE" not in json.dumps(config) and "TOKEN" not in json.dumps(config)


def test_the_kernel_runs_the_entrypoint_with_the_bundles_environment(tmp_path, capfd):
    """The entrypoint gets the environment; the unpacked file is gone before it starts; the
    token is printed nowhere."""
    names = kernel.KernelNames.for_step_run("nizami", "train", RUN_ID)
    out = tmp_path / "seen.json"
    probe = ["python", "-c",
             "import json, os, sys; json.dump({'token': os.environ['ZENML_STORE_API_TOKEN'], "
             "'file_left': os.path.exists(sys.argv[2])}, open(sys.argv[1], 'w'))",
             str(out), str(tmp_path / "bundle" / kernel.ENVIRONMENT_FILE)]
    script = kernel.kernel_script("alice", names, [], command=probe)
    namespace: dict = {"__name__": "not_main"}
    exec(script, namespace)
    (tmp_path / "bundle").mkdir()
    secret = "tok-" + uuid.uuid4().hex
    (tmp_path / "bundle" / kernel.ENVIRONMENT_FILE).write_text(json.dumps({
        "ZENML_STORE_API_TOKEN": secret, "ZENML_STORE_URL": "https://zenml.example"}))
    status = namespace["run_entrypoint"](str(tmp_path / "bundle"), probe)
    assert status == 0
    seen = json.loads(out.read_text())
    assert seen == {"token": secret, "file_left": False}
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    assert "https://zenml.example" in captured.out


class _StepConfig:
    docker_settings = DockerSettings()

    def __init__(self, settings: dict) -> None:
        self.settings = {"step_operator": KaggleStepOperatorSettings(**settings)}

    def uses_step_operator(self, name):
        return True


class _Snapshot:
    def __init__(self, settings: dict) -> None:
        self.step_configurations = {"train": SimpleNamespace(config=_StepConfig(settings))}


def _operator(mode: str) -> KaggleStepOperator:
    return KaggleStepOperator(
        name="kaggle", id=uuid.uuid4(), config=KaggleStepOperatorConfig(mode=mode),
        flavor="kaggle", type=StackComponentType.STEP_OPERATOR, user=None,
        created=datetime.now(), updated=datetime.now(),
    )


@pytest.mark.parametrize("key", OPERATOR_WIDE)
def test_a_step_setting_cannot_choose_what_the_operator_chooses(key):
    value = {"mode": "server", "packages": ["zenml"], "resume_marker": "x.json"}[key]
    with pytest.raises(OperatorSettingError, match=f"{key} in a step's step_operator settings"):
        KaggleStepOperatorSettings(**{key: value})
    # ZenML's own conversion of a run config's settings lets the error through as it is
    from zenml.config.base_settings import BaseSettings
    from zenml.config.settings_resolver import SettingsResolver

    resolver = SettingsResolver(key="step_operator", settings=BaseSettings(**{key: value}))
    with pytest.raises(OperatorSettingError, match="zenml step-operator update"):
        resolver._convert_settings(KaggleStepOperatorSettings)
    # the operator's own config under a step's settings is no step's choice
    operator = _operator("server")
    given = {"step_operator:kaggle": KaggleStepOperatorSettings(timeout_s=60)}
    snapshot = SimpleNamespace(pipeline_configuration=SimpleNamespace(settings=given))
    assert operator.get_settings(snapshot).timeout_s == 60
    assert KaggleStepOperatorConfig(**{key: value})


def test_the_mode_is_chosen_once_and_picks_the_strategy():
    standalone, server = _operator("standalone"), _operator("server")
    assert type(standalone.submission).__name__ == "StandaloneSubmission"
    assert standalone.submission is standalone.submission  # built once
    assert standalone.get_docker_builds(_Snapshot({"timeout_s": 60})) == []
    assert type(server.submission) is server_mode.ServerSubmission
    (build,) = server.get_docker_builds(_Snapshot({"timeout_s": 60}))
    assert build.settings.skip_build and build.settings.parent_image == server_mode.KAGGLE_IMAGE
    assert build.step_name == "train"


def test_a_step_whose_submit_pushed_nothing_is_cancelled_and_cleaned_up_quietly():
    submission = _operator("server").submission
    step_run = SimpleNamespace(id=uuid.uuid4(), run_metadata={})
    submission.cancel(step_run)  # no kernel, no bundle: no Kaggle client is even built
    submission.cleanup(step_run)
    with pytest.raises(server_mode.ServerModeError, match="not submitted in server mode"):
        submission.get_status(step_run)


def test_no_run_config_sets_what_the_operator_chooses():
    for path in sorted((ROOT / "stacks" / "run-configs").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        for name, step in (config.get("steps") or {}).items():
            given = (step.get("settings") or {}).get("step_operator") or {}
            assert not set(OPERATOR_WIDE) & set(given), f"{path.name}: step {name}"


def test_server_mode_module_does_not_import_the_kaggle_client():
    import subprocess
    import sys

    code = ("import sys, kaggle_orchestrator.step_operators.kaggle_step_operator\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('kaggle', 'kagglesdk', "
            "'tenacity')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2], check=True)
    assert done.stdout.strip() == "[]"  # the kernel's ZenML instantiates the operator too
