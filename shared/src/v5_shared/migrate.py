"""Schema migrations: ordered SQL files, each applied exactly once, in its own transaction,
under a PostgreSQL advisory lock so that concurrent runners (several replicas, a compose job,
a Kubernetes Job) never apply one twice.

The lock is transaction-scoped (`pg_advisory_xact_lock`), taken at the start of every
transaction here, and what is applied is read again under it: a session-scoped lock would
need every statement on one server connection, which a transaction pooler (PgBouncer with
`pool_mode = transaction`) does not promise between transactions; there a session lock is
taken on one server connection and its unlock may run on another, or two runners' sessions
may be the same server connection and both hold it. The key is the same as the session lock
of earlier versions (a session and a transaction lock on one key exclude each other), so old
and new runners exclude each other too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any fixed 64-bit number works; it only has to be the same for every runner.
MIGRATION_LOCK_ID = 0x56355F4D49475241  # "V5_MIGRA"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def bundled_migrations() -> list[Migration]:
    folder = resources.files("v5_shared") / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text()) for f in files]


def _check_unchanged(migration: Migration, applied_checksum: str) -> None:
    if applied_checksum != migration.checksum:
        raise MigrationError(
            f"migration {migration.version} was changed after it was applied; "
            "add a new migration instead"
        )


async def _lock(conn: asyncpg.Connection) -> None:
    """The migration lock, until the current transaction ends (commit or rollback)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_ID)


async def apply_migrations(dsn: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; return the versions applied by this call."""
    migrations = bundled_migrations() if migrations is None else migrations
    # No statement cache: asyncpg then uses only unnamed prepared statements, which a
    # transaction pooler can serve (named ones live on one server connection).
    conn = await asyncpg.connect(dsn, timeout=10, statement_cache_size=0)
    try:
        async with conn.transaction():
            await _lock(conn)
            await conn.execute(_CREATE_TABLE)
            applied: dict[str, str] = {
                row["version"]: row["checksum"]
                for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
            }
        # An edited migration is refused before anything new is applied.
        for migration in migrations:
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await _lock(conn)
                # Read again under the lock: another runner may have applied it meanwhile.
                known: str | None = await conn.fetchval(
                    "SELECT checksum FROM schema_migrations WHERE version = $1",
                    migration.version,
                )
                if known is not None:
                    _check_unchanged(migration, known)
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.close()
