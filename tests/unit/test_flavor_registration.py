"""pipelines/flavors.py: an existing store keeps working after a flavor's module moved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.stack import StackComponent
client = Client()
kind = StackComponentType.STEP_OPERATOR
client.create_flavor("old_flavor_path.KaggleStepOperatorFlavor", kind)
client.create_stack_component("kaggle", "kaggle", kind, {})
from pipelines.flavors import register_flavors
print(register_flavors())
print(client.get_flavor_by_name_and_type("kaggle", kind).source)
component = StackComponent.from_model(client.get_stack_component(kind, "kaggle"))
print(type(component).__module__)
print(register_flavors())
"""


@pytest.mark.slow
def test_a_flavor_registered_from_a_moved_path_is_updated_in_place(tmp_path):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "old_flavor_path.py").write_text(  # a store from before the move
        "from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import "
        "KaggleStepOperatorFlavor as _Moved\n\nclass KaggleStepOperatorFlavor(_Moved):\n"
        "    pass\n"
    )
    env = os.environ | {"PYTHONPATH": f"{tmp_path / 'mod'}:{ROOT}",
                        "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}
    (tmp_path / "probe.py").write_text(PROBE)  # a main module: ZenML's source root
    done = subprocess.run([sys.executable, "probe.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    first, source, module, again = done.stdout.strip().splitlines()[-4:]
    assert "'kaggle': updated to kaggle_orchestrator.flavors.kaggle_step_operator_flavor" in first
    assert source.endswith("kaggle_step_operator_flavor.KaggleStepOperatorFlavor")
    assert module == "kaggle_orchestrator.step_operators.kaggle_step_operator"  # still loads
    assert "'kaggle': registered" in again and "updated" not in again  # idempotent
