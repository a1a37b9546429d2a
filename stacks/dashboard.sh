#!/usr/bin/env bash
# Start the local ZenML server and dashboard (a daemon on 127.0.0.1), connect this ZenML config
# to it, make sure the `local` stack is registered and active there, and print the URL.
# Idempotent: a server that is already up is reused. Usage: [PORT=8237] stacks/dashboard.sh
# Stop it with `zenml logout --local`. The server is NO_AUTH and listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENML_ANALYTICS_OPT_IN=${ZENML_ANALYTICS_OPT_IN:-false}
port=${PORT:-8237}
url="http://127.0.0.1:$port"

healthy() { python - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/health", timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
EOF
}

# `zenml login --local` reuses a local daemon that is already running and (re)connects the
# client (this ZENML_CONFIG_PATH) to it.
zenml login --local --port "$port"
for _ in $(seq 60); do healthy "$url" && break; sleep 1; done
healthy "$url" || { echo "the ZenML server at $url did not come up" >&2; exit 1; }

stacks/register.sh local
echo "ZenML dashboard: $url  (runs: $url/projects/default/runs; stop: zenml logout --local)"
