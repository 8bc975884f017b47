"""Pools against real and dead data stores: fast 503s, readiness, the shared rate limiter."""

import socket
import time

from fastapi.testclient import TestClient
from redis.asyncio import Redis

from v5_shared.ratelimit import RateLimit, RateLimiter
from v5_shared.service import create_service_app
from v5_shared.settings import Settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readiness_and_requests_fail_fast_when_data_stores_are_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from v5_shared.keys import generate_development_keys

    _, public, _ = generate_development_keys(tmp_path)
    dead = _closed_port()
    settings = Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{dead}/v5",
        redis_url=f"redis://127.0.0.1:{dead}/0",
        jwt_public_key_file=public,
        access_log=False,
    )
    app = create_service_app("probe", routers=[], settings=settings)
    # The service starts although both data stores are down, and says so quickly.
    with TestClient(app) as client:
        assert client.get("/livez").status_code == 200
        started = time.monotonic()
        ready = client.get("/readyz")
        assert time.monotonic() - started < 2.0
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "1"
        checks = ready.json()["checks"]
        assert checks["postgresql"].startswith("failed")
        assert checks["redis"].startswith("failed")


def test_readiness_is_ok_against_live_data_stores(db_dsn: str, redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from v5_shared.keys import generate_development_keys

    _, public, _ = generate_development_keys(tmp_path)
    settings = Settings(database_url=db_dsn, redis_url=redis_url, jwt_public_key_file=public)
    with TestClient(create_service_app("probe", routers=[], settings=settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"] == {"postgresql": "ok", "redis": "ok"}


async def test_rate_limiter_allows_the_burst_then_refuses(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(redis, "test")
    limit = RateLimit(per_second=1, burst=5)
    waits = [await limiter.retry_after("acct", limit) for _ in range(8)]
    assert waits[:5] == [0] * 5
    assert all(w >= 1 for w in waits[5:])
    # Another key has its own allowance.
    assert await limiter.retry_after("other", limit) == 0
    await redis.aclose()
