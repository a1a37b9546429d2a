#!/usr/bin/env bash
# Register the stack described by stacks/<name>.yaml (once) and make it the active stack.
# Idempotent, in any order: safe to run before every pipeline run. Usage: stacks/register.sh [name]
set -euo pipefail
name=${1:-local}
cd "$(dirname "$0")/.."
export ZENML_ANALYTICS_OPT_IN=${ZENML_ANALYTICS_OPT_IN:-false}
[ -f "stacks/$name.yaml" ] || { echo "stacks/$name.yaml: no such stack definition" >&2; exit 2; }
[ -d .zen ] || zenml init >/dev/null
# The project's own flavors (pipelines/flavors.py), registered before any stack import needs
# them; one registered from an older source path is registered again from the current one.
python -m pipelines.flavors
# Components that exist are used as they are (you may have pointed them at your bucket or
# cluster); missing ones are created; a flavor conflict is named with the command that fixes it.
python -m pipelines.stack_import "$name"
# What the stack's components need and this environment lacks (ZenML's requirements: e.g. the
# `kubernetes` client for team-k8s), installed with every installed package held at its version.
python -m pipelines.stack_requirements "$name"
# Refuse a stack that cannot work before it becomes active: a kaggle step operator in server
# mode needs a remote artifact store and a ZenML server (the message says what to do instead).
python -m kaggle_orchestrator.stack_check "$name"
zenml stack set "$name" >/dev/null
echo "active stack: $name"
# W&B is decided at each run (WANDB_API_KEY or a ZenML secret `wandb`, and W&B answering);
# this prints what a run started now would do. Nothing about W&B is stored here.
python -m pipelines.tracker
