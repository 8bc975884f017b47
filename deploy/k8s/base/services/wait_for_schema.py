"""Init container of every service pod: wait until PostgreSQL has every schema migration that
this image carries, then exit 0 so that the service starts.

The v5-migrate Job applies the migrations. Without this wait a service that starts first
fails at start-up (the catalog tables are missing) and backs off in CrashLoopBackOff, or, as
identity does, turns ready and answers 500s. During an upgrade the new pods wait for the new
image's migrations while the old pods keep serving. It reads the service's own settings
(DATABASE_URL, DB_STATEMENT_CACHE_SIZE behind a pooler) and logs one JSON line per change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

import asyncpg

from v5_shared.migrate import bundled_migrations
from v5_shared.settings import Settings

POLL_SECONDS = 2.0


def missing(wanted: Iterable[str], applied: Iterable[str]) -> list[str]:
    """The wanted migration versions that are not applied yet, in order."""
    done = set(applied)
    return sorted(version for version in wanted if version not in done)


async def applied_versions(settings: Settings) -> set[str]:
    conn = await asyncpg.connect(
        settings.database_url,
        timeout=settings.db_connect_timeout_seconds,
        statement_cache_size=settings.db_statement_cache_size,
    )
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations")
    finally:
        await conn.close()
    return {row["version"] for row in rows}


async def check(settings: Settings, wanted: list[str]) -> dict[str, object]:
    """What there is to wait for, as a log record; {} when the schema is up to date."""
    try:
        pending = missing(wanted, await applied_versions(settings))
    except asyncpg.UndefinedTableError:
        pending = wanted  # no migration has run yet
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The type only: the message may name the DSN's user and host.
        return {"event": "postgresql_unavailable", "error": type(exc).__name__}
    return {"event": "waiting_for_migrations", "missing": pending} if pending else {}


async def wait(settings: Settings, poll_seconds: float = POLL_SECONDS) -> None:
    wanted = [migration.version for migration in bundled_migrations()]
    last: dict[str, object] | None = None
    while state := await check(settings, wanted):
        if state != last:
            print(json.dumps({"logger": "wait_for_schema", **state}), flush=True)
            last = state
        await asyncio.sleep(poll_seconds)
    print(json.dumps({"logger": "wait_for_schema", "event": "schema_ready"}), flush=True)


if __name__ == "__main__":
    asyncio.run(wait(Settings()))
