"""REDIS_URL forms and the Redis clients built from them: pure logic, no server (nothing
here connects; against real servers see tests/faults/test_redis_sentinel.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from unittest.mock import AsyncMock

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError

from v5_shared.datastores import create_redis
from v5_shared.redis_sentinel import (
    BlockingSentinelConnectionPool,
    MasterConnection,
    close_sentinels,
)
from v5_shared.redis_url import (
    DEFAULT_SENTINEL_PORT,
    RedisURLError,
    SentinelURL,
    parse_sentinel_url,
    sentinel_url,
)
from v5_shared.settings import Settings

THREE = "s1.example:26379,s2.example:26380,10.0.0.3:26381"


# parsing ----------------------------------------------------------------------------------
def test_the_full_form() -> None:
    parsed = parse_sentinel_url(
        f"redis+sentinel://app:s3cret@{THREE}/v5-main/2"
        "?sentinel_username=watcher&sentinel_password=sentinel-pw"
    )
    assert parsed == SentinelURL(
        sentinels=(("s1.example", 26379), ("s2.example", 26380), ("10.0.0.3", 26381)),
        master_name="v5-main",
        db=2,
        username="app",
        password="s3cret",
        sentinel_username="watcher",
        sentinel_password="sentinel-pw",
    )


@pytest.mark.parametrize(
    ("url", "db"),
    [
        (f"redis+sentinel://{THREE}/mymaster", 0),
        (f"redis+sentinel://{THREE}/mymaster/", 0),
        (f"redis+sentinel://{THREE}/mymaster/0", 0),
        (f"redis+sentinel://{THREE}/mymaster/15/", 15),
        (f"REDIS+SENTINEL://{THREE}/mymaster/3", 3),
    ],
)
def test_the_database_is_optional(url: str, db: int) -> None:
    parsed = parse_sentinel_url(url)
    assert (parsed.master_name, parsed.db) == ("mymaster", db)
    assert parsed.username is parsed.password is parsed.sentinel_password is None


def test_addresses_default_port_ipv6_and_spaces() -> None:
    parsed = parse_sentinel_url("redis+sentinel://a, b:1,[::1]:26390,[fe80::2]/m")
    assert parsed.sentinels == (
        ("a", DEFAULT_SENTINEL_PORT),
        ("b", 1),
        ("::1", 26390),
        ("fe80::2", DEFAULT_SENTINEL_PORT),
    )


def test_credentials_are_percent_decoded() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://us%40er:p%3Aw%2Fd%40@h:1/my%20master?sentinel_password=a%26b%3D"
    )
    assert parsed.username == "us@er"
    assert parsed.password == "p:w/d@"
    assert parsed.master_name == "my master"
    assert parsed.sentinel_password == "a&b="


@pytest.mark.parametrize(
    ("userinfo", "username", "password"),
    [(":pw", None, "pw"), ("user:", "user", None), ("user", "user", None), ("u:p:q", "u", "p:q")],
)
def test_user_and_password_are_each_optional(
    userinfo: str, username: str | None, password: str | None
) -> None:
    parsed = parse_sentinel_url(f"redis+sentinel://{userinfo}@h:1/m")
    assert (parsed.username, parsed.password) == (username, password)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///m", "no sentinel addresses"),
        ("redis+sentinel://user:pw@/m", "no sentinel addresses"),
        ("redis+sentinel://h:1", "no master name"),
        ("redis+sentinel://h:1/", "no master name"),
        ("redis+sentinel://h:1//0", "no master name"),
        ("redis+sentinel://h:1/m/x", "is not a non-negative integer"),
        ("redis+sentinel://h:1/m/-1", "is not a non-negative integer"),
        ("redis+sentinel://h:1/m/0/extra", "more than /<master-name>/<db>"),
        ("redis+sentinel://h:0/m", "port must be a number from 1 to 65535"),
        ("redis+sentinel://h:65536/m", "port must be a number from 1 to 65535"),
        ("redis+sentinel://h:port/m", "port must be a number from 1 to 65535"),
        ("redis+sentinel://h:/m", "has an empty port"),
        ("redis+sentinel://:26379/m", "has no host"),
        ("redis+sentinel://a:1,,b:2/m", "empty sentinel address"),
        ("redis+sentinel://a:1,/m", "empty sentinel address"),
        ("redis+sentinel://a:1,a:1/m", "listed twice"),
        ("redis+sentinel://::1:26379/m", "write an IPv6 address as [addr]:port"),
        ("redis+sentinel://[::1/m", "not a URL"),
        ("redis+sentinel://[::1]x/m", "expected ':port' after ']'"),
        ("redis+sentinel://h:1/m#frag", "fragment"),
        ("redis+sentinel://h:1/m?socket_timeout=5", "REDIS_SOCKET_TIMEOUT_SECONDS"),
        ("redis+sentinel://h:1/m?db=1", "unknown query parameter(s) db"),
        ("redis+sentinel://h:1/m?sentinel_password=a&sentinel_password=b", "more than once"),
        ("redis+sentinel://h:1/m?sentinel_password", "malformed"),
    ],
)
def test_wrong_forms_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(RedisURLError) as refused:
        parse_sentinel_url(url)
    message = str(refused.value)
    assert reason in message
    assert message.startswith("REDIS_URL: ")
    assert "redis+sentinel://[[user]:password@]host:port" in message  # the expected form


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://h:1/m",
        "redis-sentinel://h:1/m",
        "rediss+sentinel://h:1/m",
        "redis+sentinels://h:1/m",
    ],
)
def test_other_sentinel_schemes_are_refused(url: str) -> None:
    with pytest.raises(RedisURLError, match="is not supported; a Sentinel set is redis\\+sentinel"):
        sentinel_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:56379/0",
        "rediss://user:pw@redis.example:6380/1",
        "unix:///run/redis.sock?db=2",
        "http://not-redis/0",  # left to redis-py, which refuses it as it always did
    ],
)
def test_other_urls_are_not_sentinel_urls(url: str) -> None:
    assert sentinel_url(url) is None


def test_no_message_or_repr_shows_a_password() -> None:
    secret = "hunter2-secret"
    for url in (
        f"redis+sentinel://u:{secret}@h:1,h:1/m",
        f"redis+sentinel://u:{secret}@h:1/m?sentinel_password={secret}&bogus=1",
        f"redis+sentinel://u:{secret}@h:1/m?sentinel_password={secret}&sentinel_password=x",
        f"redis+sentinel://u:{secret}@h:x/m",
        f"redis+sentinel://u:{secret}@h:1/m/0/1",
    ):
        with pytest.raises(RedisURLError) as refused:
            parse_sentinel_url(url)
        assert secret not in str(refused.value)
    parsed = parse_sentinel_url(f"redis+sentinel://u:{secret}@h:1/m?sentinel_password={secret}")
    assert secret not in repr(parsed)
    assert repr(parsed) == "SentinelURL(h:1/m/0)"


# clients ----------------------------------------------------------------------------------
def _settings(url: str, **overrides: Any) -> Settings:
    return Settings(
        redis_url=url,
        redis_max_connections=overrides.get("max_connections", 17),
        redis_connect_timeout_seconds=overrides.get("connect", 0.7),
        redis_socket_timeout_seconds=overrides.get("socket", 0.9),
    )


@pytest.mark.parametrize(
    ("url", "connection_class", "where"),
    [
        ("redis://127.0.0.1:56379/3", Connection, {"host": "127.0.0.1", "port": 56379, "db": 3}),
        ("rediss://r.example:6380/1", SSLConnection, {"host": "r.example", "port": 6380, "db": 1}),
        ("unix:///run/redis.sock?db=2", UnixDomainSocketConnection, {"path": "/run/redis.sock"}),
    ],
)
def test_a_single_server_url_keeps_the_blocking_pool(
    url: str, connection_class: type, where: dict[str, Any]
) -> None:
    redis = create_redis(_settings(url))
    pool = redis.connection_pool
    assert type(pool) is BlockingConnectionPool
    assert pool.connection_class is connection_class
    assert pool.max_connections == 17
    assert pool.timeout == 0.9
    kwargs = pool.connection_kwargs
    assert {k: kwargs[k] for k in where} == where
    assert kwargs["socket_connect_timeout"] == 0.7
    assert kwargs["socket_timeout"] == 0.9
    assert kwargs["health_check_interval"] == 30
    assert not pool.maint_notifications_enabled()


def test_a_sentinel_url_gives_a_client_of_the_named_master() -> None:
    url = f"redis+sentinel://app:pw@{THREE}/v5-main/4?sentinel_password=spw"
    redis = create_redis(_settings(url))
    assert type(redis) is Redis
    pool = redis.connection_pool
    assert isinstance(pool, BlockingSentinelConnectionPool)
    assert isinstance(pool, SentinelConnectionPool)
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.service_name == "v5-main"
    assert pool.is_master
    assert pool.connection_class is MasterConnection
    assert issubclass(MasterConnection, SentinelManagedConnection)
    # The same bounds and timeouts as the single-server pool.
    assert pool.max_connections == 17
    assert pool.timeout == 0.9
    kwargs = pool.connection_kwargs
    assert kwargs["db"] == 4
    assert (kwargs["username"], kwargs["password"]) == ("app", "pw")
    assert kwargs["socket_connect_timeout"] == 0.7
    assert kwargs["socket_timeout"] == 0.9
    assert kwargs["health_check_interval"] == 30
    assert "host" not in kwargs  # the address comes from the sentinels
    assert not pool.maint_notifications_enabled()
    # The sentinels: each asked once per lookup, with the same timeouts and their password.
    sentinels = pool.sentinel_manager.sentinels
    addresses = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ]
    assert addresses == [("s1.example", 26379), ("s2.example", 26380), ("10.0.0.3", 26381)]
    for sentinel in sentinels:
        skw = sentinel.connection_pool.connection_kwargs
        assert skw["password"] == "spw"
        assert skw["username"] is None
        assert skw["socket_connect_timeout"] == 0.7
        assert skw["socket_timeout"] == 0.9
        assert skw["retry"].get_retries() == 0
        assert not sentinel.connection_pool.maint_notifications_enabled()


def test_without_credentials_nothing_is_sent() -> None:
    pool = create_redis(_settings(f"redis+sentinel://{THREE}/m")).connection_pool
    assert pool.connection_kwargs["db"] == 0
    assert pool.connection_kwargs["username"] is pool.connection_kwargs["password"] is None
    for sentinel in pool.sentinel_manager.sentinels:
        assert sentinel.connection_pool.connection_kwargs["password"] is None


def test_a_wrong_sentinel_url_is_a_configuration_error_at_start() -> None:
    with pytest.raises(ValueError, match="REDIS_URL: no master name"):
        create_redis(_settings("redis+sentinel://h1:26379,h2:26379"))


async def test_the_sentinel_pool_waits_for_a_free_connection_then_refuses() -> None:
    redis = create_redis(_settings("redis+sentinel://h:1/m", max_connections=1, socket=0.2))
    pool = redis.connection_pool
    pool.get_available_connection()  # the only connection, in use (never connected)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="No connection available"):
        await pool.get_connection()
    assert 0.15 <= time.monotonic() - started < 1.0
    await close_sentinels(redis)


def _master_connection() -> MasterConnection:
    pool = SentinelConnectionPool("m", sentinel_manager=None)
    connection = MasterConnection(connection_pool=pool, host="127.0.0.1", port=1)
    connection.disconnect = AsyncMock()
    return connection


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ReadOnlyError("You can't write against a read only replica."), "now a slave"),
        (ResponseError("NOREPLICAS Not enough good replicas to write."), "NOREPLICAS"),
    ],
)
def test_a_demoted_or_cut_off_master_drops_the_connection(
    monkeypatch: pytest.MonkeyPatch, error: ResponseError, message: str
) -> None:
    async def answer(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(AbstractConnection, "read_response", answer)
    connection = _master_connection()
    with pytest.raises(ConnectionError, match=message):
        asyncio.run(connection.read_response())
    connection.disconnect.assert_awaited_once()


def test_other_errors_keep_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def answer(*_args: Any, **_kwargs: Any) -> Any:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    monkeypatch.setattr(AbstractConnection, "read_response", answer)
    connection = _master_connection()
    with pytest.raises(ResponseError, match="WRONGTYPE") as raised:
        asyncio.run(connection.read_response())
    assert not isinstance(raised.value, ConnectionError)
    connection.disconnect.assert_not_awaited()


async def test_closing_closes_the_sentinel_clients_too() -> None:
    redis = create_redis(_settings(f"redis+sentinel://{THREE}/m"))
    sentinels = redis.connection_pool.sentinel_manager.sentinels
    closed = [AsyncMock(wraps=s.aclose) for s in sentinels]
    for sentinel, spy in zip(sentinels, closed, strict=True):
        sentinel.aclose = spy
    await redis.aclose()
    await close_sentinels(redis)
    for spy in closed:
        spy.assert_awaited_once()
    # A single-server client has no sentinels: nothing to do, no error.
    plain = create_redis(_settings("redis://127.0.0.1:1/0"))
    await plain.aclose()
    await close_sentinels(plain)
