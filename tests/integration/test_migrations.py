import asyncio
import uuid

import asyncpg
import pytest

from v5_shared.migrate import Migration, MigrationError, apply_migrations, bundled_migrations


async def _fresh_database(admin_dsn: str) -> str:
    name = f"m_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def test_concurrent_runners_apply_each_migration_once(template_db: str) -> None:
    dsn = await _fresh_database(template_db)
    results = await asyncio.gather(*(apply_migrations(dsn) for _ in range(4)))
    applied = [version for result in results for version in result]
    expected = [m.version for m in bundled_migrations()]
    assert sorted(applied) == sorted(expected)  # every one exactly once, across all runners
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == expected
        assert await conn.fetchval("SELECT to_regclass('users') IS NOT NULL")
    finally:
        await conn.close()
    assert await apply_migrations(dsn) == []


async def test_a_failing_migration_leaves_nothing_half_done(template_db: str) -> None:
    dsn = await _fresh_database(template_db)
    broken = [
        Migration("0001_ok", "CREATE TABLE ok_table (id int)"),
        Migration("0002_broken", "CREATE TABLE half (id int); SELECT no_such_function();"),
    ]
    with pytest.raises(asyncpg.PostgresError):
        await apply_migrations(dsn, broken)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('ok_table') IS NOT NULL")
        assert not await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == ["0001_ok"]
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(template_db: str) -> None:
    dsn = await _fresh_database(template_db)
    await apply_migrations(dsn, [Migration("0001_a", "CREATE TABLE a (id int)")])
    with pytest.raises(MigrationError, match="changed"):
        await apply_migrations(dsn, [Migration("0001_a", "CREATE TABLE a (id bigint)")])
