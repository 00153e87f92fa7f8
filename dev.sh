#!/usr/bin/env bash
# Set up (if needed) and start the whole system on embedded NATS and Postgres: ./dev.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/opsledger dev "$@"
