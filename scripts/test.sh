#!/usr/bin/env bash
# Sets up a virtual environment (if needed), installs framework with its test extras, and
# runs the whole test suite. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FW_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || { echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv'"; exit 1; }
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test]"
"$VENV/bin/python" -m pytest tests -p no:cacheprovider "$@"
