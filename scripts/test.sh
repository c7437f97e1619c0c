#!/usr/bin/env bash
# Install Circinus with its test tools, then run every check CI runs: lint, types and tests.
# Extra arguments go to pytest (e.g. `scripts/test.sh -k jellybean`).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[test]'
ruff check src tests scripts
mypy
python -m pytest "$@"
