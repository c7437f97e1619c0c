#!/usr/bin/env bash
# Install Circinus with its test tools, then run every check CI runs: lint, types and tests,
# including the integration tests against a real PostgreSQL server started on 127.0.0.1.
# Extra arguments go to pytest (e.g. `scripts/test.sh -k jellybean`).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[test,examples,ray,service]'
ruff check src tests scripts
mypy
if url=$(bash scripts/postgres.sh); then
  export CIRCINUS_TEST_POSTGRES_URL="$url"
elif [[ "${CI:-}" == "true" ]]; then
  echo "error: could not start PostgreSQL for the integration tests" >&2
  exit 1
else
  echo "warning: PostgreSQL not started; its integration tests will be skipped" >&2
fi
# Two workers (CI has 2 cores): a module's tests stay on one worker, the integration tests all
# on one (tests/conftest.py). Run `python -m pytest` directly for one process.
python -m pytest -n 2 --dist loadgroup "$@"
