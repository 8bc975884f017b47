#!/usr/bin/env bash
# `make test`: lint, type checks, then unit, integration and end-to-end tests. The test
# harness starts its own Redis, PostgreSQL, service replicas and nginx on free ports and
# tears them down; pytest exits non-zero on any failure and when no test ran.
set -uo pipefail
cd "$(dirname "$0")/../.."
UV=$(command -v uv || echo "$HOME/.local/bin/uv")
RUN="$UV run --frozen --quiet"
failed=0

step() {
    echo "==> $*"
    "$@" || { echo "FAILED: $*"; failed=1; }
}

step $RUN ruff check .
step $RUN ruff format --check .
step $RUN mypy shared/src services/identity/src services/conversation/src \
    services/recommendation/src services/learning/src deploy/local/src
step $RUN v5-cluster openapi --check
step $RUN pytest -q

exit $failed
