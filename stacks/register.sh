#!/usr/bin/env bash
# Register the stack described by stacks/<name>.yaml (once) and make it the active stack.
# Idempotent: safe to run before every pipeline run. Usage: stacks/register.sh [name]
set -euo pipefail
name=${1:-local}
cd "$(dirname "$0")/.."
export ZENML_ANALYTICS_OPT_IN=${ZENML_ANALYTICS_OPT_IN:-false}
[ -f "stacks/$name.yaml" ] || { echo "stacks/$name.yaml: no such stack definition" >&2; exit 2; }
[ -d .zen ] || zenml init >/dev/null
if zenml stack describe "$name" >/dev/null 2>&1; then
  echo "stack '$name' already registered"
else
  zenml stack import "$name" -f "stacks/$name.yaml"
fi
zenml stack set "$name" >/dev/null
echo "active stack: $name"
