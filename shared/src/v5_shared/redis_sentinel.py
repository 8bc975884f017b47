"""The Redis client for a Sentinel set (REDIS_URL ``redis+sentinel://...``), built from
redis-py's own Sentinel support: the master's address comes from the sentinels, not from
the URL, and everything about failover is redis-py's.

- A new connection asks the sentinels for the master (``SENTINEL MASTERS``, the first
  sentinel that answers and does not see the master as down wins); when the address has
  changed, the pool closes its idle connections, so they reconnect to the new master.
- A connection to a dead master fails like one to a single dead Redis (a ConnectionError,
  answered as a fast 503) and is dropped; while the sentinels still see the master as down
  and have not promoted a replica, asking them gives MasterNotFoundError (a ConnectionError
  too), so requests keep failing fast until the promotion and then reach the new master.
- A connection to a master that was demoted (a manual failover, or an old master that came
  back as a replica) answers writes with READONLY: redis-py's SentinelManagedConnection
  disconnects it and raises ConnectionError, and the next connection re-resolves (the
  sentinels also close a demoted master's client connections when they reconfigure it).
  With ``min-replicas-to-write`` on the servers, an old master that is still up refuses
  writes with NOREPLICAS once its replicas have left it: MasterConnection below treats that
  like READONLY.
- Lua scripts run through ``register_script`` (EVALSHA); a new master that never saw a
  script answers NOSCRIPT, and redis-py loads the script and runs it again.

The pool keeps the single-server client's semantics: at most REDIS_MAX_CONNECTIONS
connections, and a request waits for a free one for at most REDIS_SOCKET_TIMEOUT_SECONDS
before a ConnectionError (a 503) instead of queueing behind a stuck Redis. redis-py's
SentinelConnectionPool is a plain ConnectionPool, which would refuse a request at once when
all connections are in use (MaxConnectionsError) rather than wait; so the pool here is
SentinelConnectionPool combined with BlockingConnectionPool (redis-py's own two classes; the
combination adds no code, and ``master_for`` takes the pool class as a parameter).

Replication is asynchronous, so a failover can lose writes that the old master acknowledged:
after a crash, those it had not yet sent to a replica (none in the fault test); after a
planned failover (``SENTINEL FAILOVER``), those it took between the promotion and the moment
its clients left it (about a second with ``min-replicas-to-write 1``, about ten without).
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

from .redis_url import SentinelURL
from .settings import Settings

HEALTH_CHECK_INTERVAL_SECONDS = 30


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """A SentinelConnectionPool whose requests wait (bounded) for a free connection.

    The method resolution order puts SentinelConnectionPool's address lookup and reset first
    and BlockingConnectionPool's get_connection/release (a condition with a timeout around
    ConnectionPool's) under it; apart from ``__init__``, which both chain through super(),
    neither class defines what the other does.
    """


class MasterConnection(SentinelManagedConnection):
    """redis-py's connection to the set's master, which already turns READONLY (a master
    that was demoted) into a disconnect and a ConnectionError; NOREPLICAS (a master that
    refuses writes because it has lost its replicas, with ``min-replicas-to-write``: the
    old master of a failover that is still up, or one cut off from the rest) is treated
    the same, so it is a 503 and the next connection asks the sentinels again rather than
    a 500."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ResponseError as exc:
            if not str(exc).startswith("NOREPLICAS"):
                raise
            await self.disconnect()
            raise ConnectionError("the Redis master has no replica in sync (NOREPLICAS)") from exc


def connection_options(settings: Settings) -> dict[str, Any]:
    """What every connection of the master's pool gets: the same timeouts, health checks
    and pool bounds as the single-server pool in datastores.create_redis."""
    return {
        "connection_class": MasterConnection,
        "max_connections": settings.redis_max_connections,
        # BlockingConnectionPool's wait for a free connection.
        "timeout": settings.redis_socket_timeout_seconds,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        # As for one server: with maintenance notifications on, the pool would not check a
        # connection as it hands it out, so each connection that the old master's death
        # closed would fail one more request after the failover.
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def sentinel_options(settings: Settings, url: SentinelURL) -> dict[str, Any]:
    """The connections to the sentinels themselves."""
    return {
        "username": url.sentinel_username,
        "password": url.sentinel_password,
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        # A sentinel is asked once per lookup: redis-py's client default would retry a dead
        # one 10 times with backoff (seconds), while the next sentinel can answer at once.
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def create_sentinel_redis(settings: Settings, url: SentinelURL) -> Redis:
    """A client of the set's current master; connects on first use, not here."""
    sentinel = Sentinel(list(url.sentinels), sentinel_kwargs=sentinel_options(settings, url))
    client = sentinel.master_for(
        url.master_name,
        connection_pool_class=BlockingSentinelConnectionPool,
        db=url.db,
        username=url.username,
        password=url.password,
        **connection_options(settings),
    )
    return cast(Redis, client)


async def close_sentinels(redis: Redis) -> None:
    """Close the connections to the sentinels behind a client made here (the client's own
    ``aclose`` closes only the master's pool); nothing for any other client."""
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        await pool.sentinel_manager.aclose()
