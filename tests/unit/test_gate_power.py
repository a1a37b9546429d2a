"""bench/gate_power.py: the simulation runs the gate's own rule, and its extremes are right."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT


@pytest.fixture(scope="module")
def gate_power():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gate_power
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return gate_power


def test_identical_versions_always_pass_and_a_large_drop_is_always_caught(gate_power) -> None:
    rng = np.random.default_rng(0)
    # no churn, no drop: every simulated candidate answers exactly as production: bound 0
    assert gate_power.caught(308, 0.6, 0.0, 0.0, 0.05, 0.05, 200, rng) == 0.0
    assert gate_power.caught(308, 0.6, 0.20, 0.20, 0.05, 0.05, 200, rng) == 1.0
    # the rule before non-inferiority lets a 6-point drop through most of the time at 50
    assert gate_power.caught(50, 0.6, 0.06, 0.10, 0.05, 0.05, 400, rng, old_rule=True) < 0.3
    # at the margin, at most alpha of the candidates get through (exact bound: conservative)
    assert gate_power.caught(308, 0.6, 0.05, 0.10, 0.05, 0.05, 1000, rng) > 0.9


def test_an_impossible_drop_is_refused(gate_power) -> None:
    with pytest.raises(ValueError, match="impossible"):
        gate_power.caught(50, 0.1, 0.5, 0.5, 0.05, 0.05, 10, np.random.default_rng(0))


def test_the_script_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gate_power.py"), "--n", "50", "--trials", "50",
         "--churn", "0.1"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert "| true drop | old rule n=50, churn 10 % | gate n=50, churn 10 % |" in out
    assert out.count("\n| ") == 9  # header + 8 drops
