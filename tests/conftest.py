"""The test harness's servers: one throwaway local cluster per test session (real Redis,
PostgreSQL, two replicas of each service and nginx), on free ports, in a temporary folder,
started only when a test asks for it and torn down at the end."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from v5_cluster.cluster import LocalCluster
from v5_cluster.config import ClusterConfig, ephemeral_config
from v5_shared.migrate import apply_migrations

TEMPLATE_DB = "v5_test_template"


def make_test_config(state_dir: Path) -> ClusterConfig:
    config = ephemeral_config(
        state_dir,
        service_env={
            "LOG_LEVEL": "info",
            # Cheap hashing keeps the suite fast; production cost is the default.
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "8192",
            "ARGON2_PARALLELISM": "1",
        },
    )
    # Auth limits high enough for the suite's registrations; the rate-limit tests send
    # bursts well above them.
    config.rate_limit_auth_rps = 50
    config.rate_limit_auth_burst = 100
    config.rate_limit_api_rps = 50
    config.rate_limit_api_burst = 100
    return config


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    # Not pytest's tmp_path_factory: another pytest session on this machine prunes old
    # basetemp folders, which would delete a running cluster's data under it.
    state = Path(tempfile.mkdtemp(prefix="v5-test-cluster-"))
    # PostgreSQL runs as the postgres user, and nginx's workers as nobody: both must be
    # able to reach their folders.
    state.chmod(0o755)
    local = LocalCluster(make_test_config(state))
    try:
        local.up(timeout=180)
    except Exception:
        print(local.tail(sorted(p.name for p in local.config.logs_dir.glob("*.log"))))
        local.down()
        raise
    yield local
    local.down()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway_url(cluster: LocalCluster) -> str:
    return cluster.config.gateway_url


@pytest.fixture(scope="session")
def template_db(cluster: LocalCluster) -> str:
    """A migrated, empty database that per-test databases are copied from."""
    admin = f"postgresql://postgres@127.0.0.1:{cluster.config.postgres_port}/postgres"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()
        await apply_migrations(
            f"postgresql://postgres@127.0.0.1:{cluster.config.postgres_port}/{TEMPLATE_DB}"
        )

    asyncio.run(create())
    return admin


@pytest.fixture
async def db_dsn(cluster: LocalCluster, template_db: str) -> AsyncIterator[str]:
    """A fresh database with every migration applied, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(template_db)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await conn.close()
    yield f"postgresql://postgres@127.0.0.1:{cluster.config.postgres_port}/{name}"
    conn = await asyncpg.connect(template_db)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def redis_url(cluster: LocalCluster) -> AsyncIterator[str]:
    """Redis database 1 (the services use 0), emptied before and after the test."""
    url = f"redis://127.0.0.1:{cluster.config.redis_port}/1"
    client = Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()
