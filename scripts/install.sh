#!/usr/bin/env bash
# Install LogLoupe into .venv (the README's first command uses this).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's python3 ships without venv/ensurepip (package python3-venv): install it when missing.
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e "${1:-.}"
# The libraries pip just wrote would count as more resident memory in the first runs (see the script).
.venv/bin/python scripts/uncache_libraries.py .venv
