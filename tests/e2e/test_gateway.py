"""The gateway's own behaviour: routing over replicas, request ids, JSON errors, limits."""

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from v5_cluster.cluster import LocalCluster
from v5_cluster.config import SERVICES

from .accounts import register_and_login

GENRES = "/api/v1/v5/catalog/genres"


def test_healthz(api: httpx.Client) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_hello_is_the_framework_floor(api: httpx.Client) -> None:
    # What capacity runs compare the API with: a constant from a replica, through nginx and
    # the services' middleware (so it carries a request id), without a token.
    response = api.get("/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.headers["x-request-id"]


def test_openapi_lists_the_public_operations(api: httpx.Client) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/v1/v5/auth/register",
        "/api/v1/v5/auth/token",
        "/api/v1/v5/catalog/genres",
        "/api/v1/v5/catalog/artists",
        "/api/v1/v5/catalog/tracks/{track_id}",
        "/api/v1/v5/catalog/stats",
        "/healthz",
    ):
        assert path in paths, path
    assert not any(p in paths for p in ("/livez", "/readyz", "/metrics"))
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_unknown_path_is_json_404(api: httpx.Client) -> None:
    response = api.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert "x-request-id" in response.headers


def test_body_over_64_kib_is_json_413(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/v5/auth/register",
        content=b"x" * (65 * 1024),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "64 KiB" in response.json()["detail"]


def test_missing_or_bad_token_is_401_with_challenge(api: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Basic eA=="}):
        response = api.get(GENRES, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert isinstance(response.json()["detail"], str)


def test_security_headers(api: httpx.Client, auth_headers: dict[str, str]) -> None:
    response = api.get(GENRES, headers=auth_headers)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # One copy each, not the service's and the gateway's.
    assert len(response.headers.get_list("x-request-id")) == 1
    assert len(response.headers.get_list("x-content-type-options")) == 1


def test_request_id_reaches_every_log(
    api: httpx.Client, auth_headers: dict[str, str], cluster: LocalCluster
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    response = api.get(GENRES, headers={**auth_headers, "X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    made = api.get(GENRES, headers=auth_headers).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)

    logs = cluster.config.logs_dir

    def service_lines() -> list[dict[str, object]]:
        found = []
        for path in logs.glob("recommendation-*.log"):
            for line in path.read_text().splitlines():
                if request_id in line:
                    found.append(json.loads(line))
        return found

    lines = service_lines()
    assert lines, "the service logged the request with its id"
    assert all(entry["request_id"] == request_id for entry in lines)
    assert lines[0]["service"] == "recommendation"
    # The gateway's access log is buffered (flushed each second).
    for _ in range(30):
        access = (logs / "gateway-access.log").read_text()
        if request_id in access:
            break
        time.sleep(0.1)
    entry = next(json.loads(line) for line in access.splitlines() if request_id in line)
    assert entry["status"] == 200
    assert entry["upstream_addr"].startswith("127.0.0.1:")
    assert float(entry["upstream_response_time"]) >= 0


def test_requests_spread_over_both_replicas(
    api: httpx.Client, auth_headers: dict[str, str], cluster: LocalCluster
) -> None:
    marker = f"spread-{uuid.uuid4().hex}"
    for i in range(20):
        api.get(GENRES, headers={**auth_headers, "X-Request-ID": f"{marker}-{i}"})
    served_by = set()
    for path in cluster.config.logs_dir.glob("recommendation-*.log"):
        if marker in path.read_text():
            served_by.add(path.name)
    assert len(served_by) == 2


def test_every_replica_is_ready_and_measured(cluster: LocalCluster) -> None:
    for service in SERVICES:
        for port in cluster.config.replica_ports(service):
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["postgresql"] == "ok"
            assert ready.json()["checks"]["redis"] == "ok"
            metrics = httpx.get(f"{base}/metrics").text
            assert "v5_http_requests_total" in metrics


def test_service_port_without_token_is_401(cluster: LocalCluster) -> None:
    port = cluster.config.replica_ports("recommendation")[0]
    response = httpx.get(f"http://127.0.0.1:{port}{GENRES}")
    assert response.status_code == 401


def _burst(base_url: str, count: int, **request: object) -> list[httpx.Response]:
    """`count` requests as fast as a few keep-alive connections in parallel can send them."""
    workers = 8

    def send(n: int) -> list[httpx.Response]:
        with httpx.Client(base_url=base_url, timeout=10.0) as client:
            return [client.request(**request) for _ in range(n)]  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunks = pool.map(send, [count // workers] * workers)
    return [response for chunk in chunks for response in chunk]


def test_auth_is_rate_limited_per_address(gateway_url: str, cluster: LocalCluster) -> None:
    # Malformed bodies: the limiter counts them without any password hashing.
    responses = _burst(
        gateway_url,
        400,
        method="POST",
        url="/api/v1/v5/auth/token",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "a burst far above the limit must be refused"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert "rate limited" in limited[0].json()["detail"]
    assert all(r.status_code in (422, 429) for r in responses)
    # The whole allowance comes back at the configured rate, so later tests can register.
    config = cluster.config
    time.sleep(config.rate_limit_auth_burst / config.rate_limit_auth_rps + 0.5)
    again = httpx.post(
        f"{gateway_url}/api/v1/v5/auth/token",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert again.status_code == 422


def test_api_is_rate_limited_per_token(api: httpx.Client, gateway_url: str) -> None:
    _, token = register_and_login(api)
    headers = {"Authorization": f"Bearer {token}"}
    responses = _burst(gateway_url, 400, method="GET", url=GENRES, headers=headers)
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 429} and 429 in statuses and 200 in statuses
    # Another listener's token has its own allowance.
    _, other = register_and_login(api)
    assert api.get(GENRES, headers={"Authorization": f"Bearer {other}"}).status_code == 200
