#!/usr/bin/env bash
# `make test`: lint, type checks, then unit, integration and end-to-end tests, then the load
# smoke run. The test harness (and the smoke run) start their own Redis, PostgreSQL,
# service replicas and nginx on free ports and tear them down; pytest exits non-zero on any
# failure and when no test ran, the smoke run on any failed request.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin  # installed by bootstrap.sh from uv.lock
failed=0

step() {
    echo "==> $*"
    "$@" || { echo "FAILED: $*"; failed=1; }
}

step $BIN/ruff check .
step $BIN/ruff format --check .
step $BIN/mypy shared/src services/identity/src services/conversation/src \
    services/recommendation/src services/learning/src deploy/local/src
step $BIN/v5-cluster openapi --check
step $BIN/pytest -q -m "not faults"  # the fault suite is `make faults`
step $BIN/python -m loadtests.smoke

exit $failed
