#!/usr/bin/env bash
# Installs what the local cluster and the tests need, only what is missing:
# Debian packages (redis-server, postgresql, nginx; redis-sentinel, pgbouncer and
# prometheus's promtool for the highly available data tier and observability tests; chromium
# and chromium-driver for the demo page's browser tests) and the
# Python environment (.venv, exactly as uv.lock pins it, installed with uv).
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || need+=(nginx)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Debian's Chromium and its driver for the demo page's browser tests (no downloaded browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi

# uv from PATH, else the PyPI package run as a module (no PATH or shim changes needed).
if command -v uv >/dev/null 2>&1; then
    uv=(uv)
else
    if ! python3 -m uv --version >/dev/null 2>&1; then
        echo "installing uv"
        python3 -m pip install --quiet uv 2>/dev/null \
            || python3 -m pip install --quiet --user uv 2>/dev/null \
            || python3 -m pip install --quiet --user --break-system-packages uv
    fi
    uv=(python3 -m uv)
fi
"${uv[@]}" sync --frozen --quiet
