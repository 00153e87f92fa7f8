#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite against real Postgres and NATS:
# OPSLEDGER_DATABASE_URL / OPSLEDGER_NATS_URL when set, else embedded servers. ./test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
