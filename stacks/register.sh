#!/usr/bin/env bash
# Register the stack described by stacks/<name>.yaml (once) and make it the active stack.
# Idempotent, in any order: safe to run before every pipeline run. Usage: stacks/register.sh [name]
set -euo pipefail
name=${1:-local}
cd "$(dirname "$0")/.."
export ZENML_ANALYTICS_OPT_IN=${ZENML_ANALYTICS_OPT_IN:-false}
[ -f "stacks/$name.yaml" ] || { echo "stacks/$name.yaml: no such stack definition" >&2; exit 2; }
[ -d .zen ] || zenml init >/dev/null
# In one Python process (pipelines/register_stack.py; ZenML loads once, not six times):
# - the project's own flavors (pipelines/flavors.py), registered before the stack needs them;
#   one registered from an older source path is registered again from the current one;
# - the stack (pipelines/stack_import.py): components that exist are used as they are (you may
#   have pointed them at your bucket or cluster), missing ones are created, and a flavor
#   conflict is named with the command that fixes it;
# - what the stack's components need and this environment lacks (ZenML's requirements, e.g. the
#   `kubernetes` client for team-k8s), installed with every installed package held at its
#   version (pipelines/stack_requirements.py);
# - a stack that cannot work is refused before it becomes active: a kaggle step operator in
#   server mode needs a remote artifact store and a ZenML server (kaggle_orchestrator/stack_check.py);
# - the stack is made active, and what W&B would do for a run started now is printed (W&B is
#   decided at each run from WANDB_API_KEY or a ZenML secret `wandb`; nothing is stored here).
python -m pipelines.register_stack "$name"
