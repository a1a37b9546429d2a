"""The image users get, built and run for real: ``docker run ... nizami-1.7b-cpu``.

A pipeline run of the tiny model (head_dim 32, as vLLM's CPU attention needs) on the local stack
with ``package.images: [cpu]``: the package step builds the CPU image with the Docker engine
that answers, or one started for this module (as root: Debian's ``docker.io``, data under
``~/.cache/nizami/docker``, where the base image made from Debian packages and the build cache
are kept between runs). Then the image runs with the README's flags on the host's network and a
loopback port (never Docker's bridge) and is checked as a user would: /health, the official
``openai`` client with a run-time key, 401 without, Docker's health status, a non-root user,
``docker stop`` exiting 0. Nothing of the test is left behind (containers, images, dangling
layers).
"""

from __future__ import annotations

import os
import uuid

import pytest
from helpers import ROOT, register_stack, run_pipeline, write_config

from bento.container import RUN_FLAGS, START_TIMEOUT_S, documented_command, smoke_test
from bento.engine import EngineError, ensure_engine, stop_engine
from bento.image import inspect_image

pytestmark = pytest.mark.e2e
KEY = "nz-image-key-0123456789abcdef"
NAME = f"nizami-image-test-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def engine():
    try:
        engine = ensure_engine()
    except EngineError as error:
        if os.geteuid() != 0:  # a user without Docker: nothing here can start an engine
            pytest.skip(f"no Docker engine for a non-root user: {error}")
        raise
    yield engine
    stop_engine(engine)  # only the dockerd this module started


def _dangling(engine) -> set[str]:
    return set(engine.run("images", "-q", "--filter", "dangling=true").stdout.split())


@pytest.fixture(scope="module")
def packaged(engine, tmp_path_factory):
    """The package step's metadata; afterwards the images and containers of the test are gone."""
    dangling = _dangling(engine)
    out = tmp_path_factory.mktemp("image-run")
    tiny = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32}  # fmt: skip
    config = write_config(
        out / "tiny-image.yaml",
        base_model={"tiny": tiny},
        evaluation={"max_examples": 4, "max_new_tokens": 4},
        package={"bento_model": NAME, "images": ["cpu"]},
        output_dir=str(out),
    )  # fmt: skip
    done = register_stack("local")
    assert done.returncode == 0, done.stderr
    from zenml.client import Client

    Client().activate_stack("local")
    run = run_pipeline(config)
    assert run.status.value == "completed"
    yield run.steps["package"].run_metadata
    engine.run("rm", "-f", *engine.run("ps", "-aq", "--filter", f"ancestor={NAME}-cpu:latest")
               .stdout.split(), check=False)  # fmt: skip
    images = engine.run("images", "-q", f"{NAME}-cpu").stdout.split()
    if images:
        engine.run("rmi", "-f", *set(images))
    assert engine.run("images", "-q", f"{NAME}-cpu").stdout.strip() == ""
    assert _dangling(engine) <= dangling, "the test left dangling images"


def test_the_package_step_built_the_cpu_image_and_docker_confirms_it(engine, packaged):
    tags = packaged["images"]["cpu"]
    assert tags[1] == f"{NAME}-cpu:latest" and tags[0].startswith(f"{NAME}-cpu:")
    for tag in tags:
        inspected = inspect_image(engine, tag)
        assert inspected["id"] == packaged["image_ids"]["cpu"]
        assert inspected["size_bytes"] == packaged["image_sizes_bytes"]["cpu"]
    # The GPU variant was not asked for (package.images): no tag, its context and the reason.
    assert packaged["images"]["gpu"] == [] and "gpu" not in packaged["image_ids"]
    assert "package.images" in packaged["images_not_built"]["gpu"]
    assert (ROOT / packaged["build_contexts"]["gpu"] / "env/docker/Dockerfile").is_file()


def test_the_readme_gives_the_documented_run_commands():
    readme = (ROOT / "README.md").read_text()
    assert documented_command("nizami-1.7b-cpu", "cpu") in readme
    assert documented_command("nizami-1.7b", "gpu") in readme
    assert "--gpus" in RUN_FLAGS["gpu"] and "--shm-size" in RUN_FLAGS["cpu"]


def test_the_image_holds_no_compiler_and_no_apt_lists(engine, packaged):
    tag = packaged["images"]["cpu"][0]
    done = engine.run(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c",
        "command -v gcc cc make; ls /var/lib/apt/lists | grep -v -x -e lock -e partial; "
        "python -c 'import setuptools, vllm._C'",
        check=False, timeout=300,
    )  # fmt: skip
    assert done.stdout.strip() == "" and done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_documented(engine, packaged):
    """/health, a chat completion with the key, 401 without, healthy, non-root, clean stop."""
    report = smoke_test(engine, packaged["images"]["cpu"][0], KEY)
    assert report.start_s < START_TIMEOUT_S
    assert report.completion_tokens == 8 and report.user == "bentoml"
    assert report.exit_code == 0 and report.stop_s < 40
    assert engine.run("ps", "-aq", "--filter", f"ancestor={NAME}-cpu:latest").stdout == ""
