"""The gateway's configuration for Kubernetes, rendered from the same nginx/ files as every
other mode into deploy/k8s/base/gateway/, where kustomize's configMapGenerator picks it up
(kustomize refuses files outside the kustomization root). The files are committed, and
`v5-cluster k8s-gateway --check` (and a unit test) fail when they drift from nginx/."""

from __future__ import annotations

import sys
from pathlib import Path
from string import Template

from .config import REPO_ROOT, SERVICES
from .render import NGINX_TEMPLATE, OPENAPI_FILE

NGINX_MAIN = REPO_ROOT / "nginx" / "nginx.conf"
K8S_GATEWAY_DIR = REPO_ROOT / "deploy" / "k8s" / "base" / "gateway"

# The ports of the Services in deploy/k8s/base (the same as in docker-compose.yml).
SERVICE_PORT = 8000
# Unprivileged, so nginx runs as a non-root user without NET_BIND_SERVICE.
GATEWAY_PORT = 8080
# Where the gateway Deployment mounts the merged OpenAPI document.
OPENAPI_PATH = "/usr/share/v5/openapi.json"
# Where the demo page would be; the gateway Deployment mounts nothing there (the API only).
WEB_PATH = "/usr/share/v5/web"
# The template's proxy_next_upstream_tries: how many entries each upstream gets (see below).
UPSTREAM_ENTRIES = 3
# Per gateway pod, as in docker-compose.yml.
RATE_LIMITS = {
    "RATE_LIMIT_AUTH_RPS": "10",
    "RATE_LIMIT_AUTH_BURST": "20",
    "RATE_LIMIT_API_RPS": "50",
    "RATE_LIMIT_API_BURST": "100",
}

HEADER = """\
# Rendered from nginx/templates/gateway.conf.template by `v5-cluster k8s-gateway`; edit the
# template and run that command again (a unit test fails when this file is out of date).
"""


def upstream_servers(service: str) -> str:
    """One Service name per upstream: its cluster IP stays put while pods come and go, and
    kube-proxy spreads new connections over the ready pods. The same entry is listed
    UPSTREAM_ENTRIES times so that nginx retries a refused connection (a pod that died before
    its readiness probe noticed) on a new connection, which kube-proxy sends to a pod chosen
    again; max_fails=0 so that nginx never takes the whole Service out of rotation."""
    entry = f"server {service}:{SERVICE_PORT} max_fails=0;"
    return " ".join([entry] * UPSTREAM_ENTRIES)


def k8s_gateway_variables() -> dict[str, str]:
    values = {f"{s.upper()}_SERVERS": upstream_servers(s) for s in SERVICES}
    values.update(
        GATEWAY_PORT=str(GATEWAY_PORT),
        OPENAPI_FILE=OPENAPI_PATH,
        # Kubernetes serves the API only: nothing is mounted here, so / answers 404.
        WEB_DIR=WEB_PATH,
        # Container logs are what the cluster collects.
        ACCESS_LOG="/dev/stdout",
        **RATE_LIMITS,
    )
    return values


def render_k8s_gateway(template_text: str | None = None) -> str:
    text = template_text if template_text is not None else NGINX_TEMPLATE.read_text()
    # safe_substitute leaves nginx's own $variables alone: only our upper-case names match.
    return HEADER + Template(text).safe_substitute(k8s_gateway_variables())


def k8s_gateway_files() -> dict[str, str]:
    """File name in deploy/k8s/base/gateway/ -> its expected content."""
    return {
        "gateway.conf": render_k8s_gateway(),
        # The container's main configuration, as compose mounts it.
        "nginx.conf": NGINX_MAIN.read_text(),
        "openapi.json": OPENAPI_FILE.read_text(),
    }


def write_or_check_k8s_gateway(*, check: bool, directory: Path = K8S_GATEWAY_DIR) -> int:
    expected = k8s_gateway_files()
    if check:
        stale = [
            name
            for name, text in expected.items()
            if not (directory / name).is_file() or (directory / name).read_text() != text
        ]
        if stale:
            print(
                f"out of date in {directory}: {', '.join(stale)}; run `v5-cluster k8s-gateway`",
                file=sys.stderr,
            )
            return 1
        print(f"{directory} is up to date")
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        (directory / name).write_text(text)
    print(f"wrote {', '.join(expected)} in {directory}")
    return 0
