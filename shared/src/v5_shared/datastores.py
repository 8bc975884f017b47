"""Connection pools for PostgreSQL (asyncpg) and Redis (redis-py with hiredis), with timeouts.

Both are created without connecting, so a service starts (and answers /livez and a fast 503)
while a data store is down, and recovers by itself once it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import asyncpg
import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.maint_notifications import MaintNotificationsConfig

from .redis_sentinel import close_sentinels, create_sentinel_redis
from .redis_url import sentinel_url
from .settings import Settings


class DependencyUnavailable(RuntimeError):
    """A data store did not answer in time; answered as 503 with Retry-After."""

    def __init__(self, dependency: str, reason: str = "unavailable") -> None:
        super().__init__(f"{dependency} {reason}")
        self.dependency = dependency


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json and jsonb are built-in types: asyncpg knows their OIDs, so setting their codecs
    # sends nothing to the server (nothing that a transaction pooler could misroute).
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )
    await conn.set_type_codec(
        "json",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


def create_db_pool(settings: Settings) -> asyncpg.Pool:
    """A pool that opens connections on demand (min_size 0 at creation, so no connect here).

    It also works through a transaction pooler (PgBouncer with ``pool_mode = transaction``),
    where consecutive transactions of one connection may run on different server
    connections, with DB_STATEMENT_CACHE_SIZE=0: asyncpg then prepares every statement as
    the unnamed statement and parses it again in the same round trip as it runs, so no
    named prepared statement is ever left on a server connection. Nothing else here depends
    on the server session: the only startup parameter is application_name (which PgBouncer
    tracks); the services never SET, LISTEN, take a session advisory lock or make temporary
    tables, and what must happen together runs in one transaction. The schema has only
    built-in types, so asyncpg never introspects one (its introspection turns `jit` off and
    on again for the session, which a pooler would spread over server connections). The
    reset that the pool sends on release (RESET ALL, UNLISTEN *, pg_advisory_unlock_all(),
    CLOSE ALL) runs on whichever server connection the pooler picks: harmless, since no
    session state is set.
    """
    return asyncpg.create_pool(
        dsn=settings.database_url,
        min_size=0,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        statement_cache_size=settings.db_statement_cache_size,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        server_settings={"application_name": settings.service_name},
    )


def create_redis(settings: Settings) -> Redis:
    """One Redis server (redis://, rediss://, unix://), or the master of a Sentinel set
    (redis+sentinel://, see redis_sentinel.py), with the same timeouts and pool bounds."""
    sentinels = sentinel_url(settings.redis_url)
    if sentinels is not None:
        return create_sentinel_redis(settings, sentinels)
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        # Waiting for a free connection is bounded too: a stuck Redis must not queue requests.
        timeout=settings.redis_socket_timeout_seconds,
        socket_connect_timeout=settings.redis_connect_timeout_seconds,
        socket_timeout=settings.redis_socket_timeout_seconds,
        health_check_interval=30,
        # Maintenance notifications (on by default since redis-py 8) turn off the pool's
        # check of a connection as it is handed out, so connections that a Redis restart
        # closed would each fail one request long after Redis is back.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return Redis(connection_pool=pool)


@dataclass
class DataStores:
    """The process's pools; one per replica, shared by every request."""

    settings: Settings
    db: asyncpg.Pool
    redis: Redis

    @classmethod
    async def open(cls, settings: Settings) -> DataStores:
        pool = create_db_pool(settings)
        await pool  # with min_size 0 this initialises the pool without connecting
        stores = cls(settings=settings, db=pool, redis=create_redis(settings))
        await stores._warm_up(settings.db_pool_min_size)
        return stores

    async def _warm_up(self, connections: int) -> None:
        # Best effort: open a few connections now so the first requests do not pay for them.
        async def one() -> None:
            async with self.connection():
                await asyncio.sleep(0)

        if connections:
            await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.db.close(), timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            self.db.terminate()
        await self.redis.aclose()
        await close_sentinels(self.redis)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; a connect failure or a full pool becomes DependencyUnavailable."""
        try:
            conn = await self.db.acquire(timeout=self.settings.db_acquire_timeout_seconds)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DependencyUnavailable("postgresql") from exc
        try:
            # The pool hands out a proxy that behaves as a Connection.
            yield cast(asyncpg.Connection, conn)
        finally:
            await self.db.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def check_postgres(self) -> None:
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1", timeout=self.settings.db_connect_timeout_seconds)

    async def check_redis(self) -> None:
        await self.redis.ping()
