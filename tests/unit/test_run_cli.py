"""``python -m pipelines.run``: --no-cache wins over a run config's ``enable_cache: true``, and
each run has a name of its own (a failed run is found by it, not as the store's newest)."""

from __future__ import annotations

import pytest

from pipelines.run import load_run_config


@pytest.mark.parametrize("run_config", ["stacks/run-configs/local.yaml",
                                        "stacks/run-configs/kaggle.yaml"])
def test_no_cache_turns_caching_off_everywhere_in_the_run_config(run_config):
    kept = load_run_config(run_config)
    assert kept.get("enable_cache") is True  # what the shipped run config says
    forced = load_run_config(run_config, no_cache=True)
    assert forced["enable_cache"] is False
    assert all(step.get("enable_cache") is False for step in forced["steps"].values())
    assert forced["steps"].keys() == kept["steps"].keys()  # nothing else changed
    assert load_run_config(None, no_cache=True) == {"enable_cache": False}
