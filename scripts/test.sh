#!/usr/bin/env bash
# Install everything the tests need (Debian packages included) and run checks and the whole suite.
# The README's second command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests drive for real (skipped when already present).
need=()
command -v logger >/dev/null || need+=(bsdutils)
command -v victoria-metrics >/dev/null || [ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the UI tests drive Debian's Chromium (never a downloaded one)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)  # ... and Debian's Firefox ESR over WebDriver BiDi
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi

bash scripts/install.sh ".[test]"
make check
make test
