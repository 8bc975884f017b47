"""The shared HTTP conventions on a small app: JSON errors, 503 for dead data stores,
request ids and security headers."""

import asyncpg
import pytest
import redis.exceptions
from fastapi import FastAPI
from fastapi.testclient import TestClient

from v5_shared.errors import install_error_handlers
from v5_shared.middleware import RequestContextMiddleware
from v5_shared.schemas import RequestModel


class Body(RequestModel):
    name: str


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="test", log_requests=False)

    @app.get("/redis-down")
    async def redis_down() -> None:
        raise redis.exceptions.ConnectionError("refused")

    @app.get("/postgres-down")
    async def postgres_down() -> None:
        raise asyncpg.CannotConnectNowError("starting up")

    @app.get("/timeout")
    async def timeout() -> None:
        raise TimeoutError

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a bug")

    @app.post("/items")
    async def items(body: Body) -> dict[str, str]:
        return {"name": body.name}

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("path", "dependency"),
    [("/redis-down", "redis"), ("/postgres-down", "postgresql"), ("/timeout", "a data store")],
)
def test_dead_dependency_is_503_with_retry_after(
    client: TestClient, path: str, dependency: str
) -> None:
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert dependency in response.json()["detail"]


def test_unexpected_error_is_json_500_without_trace(client: TestClient) -> None:
    response = client.get("/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "Traceback" not in response.text


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_unknown_fields_are_422_and_input_is_not_echoed(client: TestClient) -> None:
    response = client.post("/items", json={"name": "x", "is_admin": True, "password": "s3cret!"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    assert all(set(item) == {"loc", "msg", "type"} for item in detail)
    assert "s3cret!" not in response.text


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/nope")
    assert len(made.headers["x-request-id"]) == 32
    # A request id that could inject into logs or headers is replaced, not echoed.
    hostile = client.get("/nope", headers={"X-Request-ID": "a b<script>"})
    assert hostile.headers["x-request-id"] != "a b<script>"


def test_security_headers_on_every_response(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
