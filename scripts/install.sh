#!/usr/bin/env bash
# Install LogLoupe into .venv (the README's first command uses this).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e "${1:-.}"
