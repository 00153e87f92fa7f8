#!/usr/bin/env bash
# Creates .venv with a supported Python (3.11 or 3.12) and installs OpsLedger with its dev extra.
# Re-running is cheap: it reinstalls only when pyproject.toml changed. Sourced by dev.sh/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

pick_python() {
  local candidates=("${PYTHON:-}" python3.12 python3.11 python3)
  for py in "${candidates[@]}"; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)'; then
      echo "$py"; return 0
    fi
  done
  echo "OpsLedger needs Python 3.11 or 3.12 (the embedded Postgres wheel stops at 3.12);" \
       "set PYTHON=/path/to/python3.12" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(pick_python)"
  echo "creating $venv with $("$py" --version)" >&2
  "$py" -m venv "$venv"
fi

stamp="$venv/.opsledger-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing OpsLedger and its dependencies into $venv ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
  echo "$want" > "$stamp"
fi
