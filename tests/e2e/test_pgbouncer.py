"""The services through PgBouncer in transaction pooling mode.

A cluster of its own (two replicas of each service, nginx, Redis, PostgreSQL) whose services
reach PostgreSQL only through a PgBouncer (Debian's, `pool_mode = transaction`, at most
`POOL_SIZE` server connections, `server_reset_query` empty) with DB_STATEMENT_CACHE_SIZE=0.
Eight replicas then share four server connections: consecutive transactions of one client
connection run on different server connections, and server sessions carry over from one
client to the next. The whole API flow works through it, concurrent writes of one listener
are all counted, idempotency holds, no named prepared statement is left on any server
connection, and concurrent migration runners apply each migration once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import make_test_config
from tests.pgbouncer import PgBouncer
from v5_cluster.cluster import LocalCluster, port_is_open
from v5_cluster.config import SERVICES, ClusterConfig
from v5_shared.catalog.commands import seed_default_catalog
from v5_shared.migrate import apply_migrations, bundled_migrations

from .accounts import Listener

pytestmark = pytest.mark.e2e

# Server connections per database: fewer than the replicas' client connections (eight
# replicas, each with at least one), so that they are shared.
POOL_SIZE = 4
CLIENTS = 8


@dataclass
class BouncedCluster:
    local: LocalCluster
    bouncer: PgBouncer

    @property
    def config(self) -> ClusterConfig:
        return self.local.config

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url

    @property
    def direct_dsn(self) -> str:
        return self.config.database_url

    def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Straight to PostgreSQL, not through PgBouncer: what is stored."""

        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.direct_dsn, timeout=5)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def unhandled_errors(self) -> list[str]:
        found = []
        for path in sorted(self.config.logs_dir.glob("*-[0-9].log")):
            for line in path.read_text(errors="replace").splitlines():
                if '"unhandled_error"' in line:
                    found.append(f"{path.name}: {line[:600]}")
        return found


def _cluster_ports(config: ClusterConfig) -> list[int]:
    ports = [config.gateway_port, config.redis_port, config.postgres_port]
    for service in SERVICES:
        ports += config.replica_ports(service)
    return ports


@pytest.fixture(scope="module")
def bounced() -> Iterator[BouncedCluster]:
    # Not pytest's tmp_path_factory: another pytest session prunes old basetemp folders.
    state = Path(tempfile.mkdtemp(prefix="v5-pgbouncer-cluster-"))
    state.chmod(0o755)  # PostgreSQL runs as postgres, nginx's workers as nobody
    config = make_test_config(state)
    # The per-token limit would answer the concurrent bursts of one listener with 429.
    config.rate_limit_api_rps = 5000
    config.rate_limit_api_burst = 5000
    # PgBouncer connects to PostgreSQL only when a client needs a server connection, so it
    # can start before the cluster; the migrations and the catalog seed of `up` go straight
    # to PostgreSQL, the services through PgBouncer.
    bouncer = PgBouncer(config.postgres_port, database=config.database, pool_size=POOL_SIZE)
    config.service_env.update({"DATABASE_URL": bouncer.dsn(), "DB_STATEMENT_CACHE_SIZE": "0"})
    local = LocalCluster(config)
    try:
        bouncer.start()
        try:
            local.up(timeout=240)
        except Exception:
            print(local.tail(sorted(p.name for p in config.logs_dir.glob("*.log"))))
            print(bouncer.log_tail())
            raise
        yield BouncedCluster(local, bouncer)
    finally:
        try:
            local.down()
        finally:
            bouncer.close()
            listening = [p for p in [*_cluster_ports(config), bouncer.port] if port_is_open(p)]
            shutil.rmtree(state, ignore_errors=True)
        assert listening == [], f"ports {listening} outlived the test cluster"


@pytest.fixture(scope="module")
def api(bounced: BouncedCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bounced.gateway_url, timeout=20.0) as client:
        yield client


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


def _wait_for(probe: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def test_the_api_flow_through_pgbouncer(bounced: BouncedCluster, api: httpx.Client) -> None:
    # Registration with an Idempotency-Key, then its retry: one account, the first answer.
    user_id, password = f"pgb_{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    key = _key()
    body = {"user_id": user_id, "password": password}
    created = api.post("/api/v1/v5/auth/register", json=body, headers=key)
    again = api.post("/api/v1/v5/auth/register", json=body, headers=key)
    assert created.status_code == again.status_code == 201, again.text
    assert again.json() == created.json() and again.headers["idempotent-replay"] == "true"
    token = api.post("/api/v1/v5/auth/token", json=body)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wrong = api.post("/api/v1/v5/auth/token", json={**body, "password": "not-it"})
    assert wrong.status_code == 401

    for message in ("I love jazz and soul", "feeling a bit down tonight", "something calm"):
        turn = api.post(
            "/api/v1/v5/conversation/continue",
            json={"user_id": user_id, "message": message},
            headers=headers,
        )
        assert turn.status_code == 200, turn.text

    recommended = []
    for _ in range(3):
        rec = api.post(
            "/api/v1/v5/recommendation/adaptive",
            json={"user_id": user_id, "limit": 5},
            headers=headers,
        )
        assert rec.status_code == 200, rec.text
        recommended.append(rec.json())
    first = recommended[0]
    track_id = first["tracks"][0]["track_id"]

    # Weight feedback (like, then skip), one of them retried with its key.
    like_key = {**headers, **_key()}
    like = {"action": "feedback", "track_id": track_id, "feedback": "like"}
    url = f"/api/v1/v5/learning/weights/{user_id}"
    liked = api.post(url, json=like, headers=like_key)
    liked_again = api.post(url, json=like, headers=like_key)
    assert liked.status_code == liked_again.status_code == 200, liked_again.text
    assert liked_again.json() == liked.json()
    assert liked_again.headers["idempotent-replay"] == "true"
    assert api.post(url, json={"action": "reset"}, headers=like_key).status_code == 409
    skipped = api.post(
        url, json={"action": "feedback", "track_id": track_id, "feedback": "skip"}, headers=headers
    )
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["adjustment_count"] == 2

    # Rewards (like, skip), one retried with its key; the second recommendation's reward
    # finds it in Redis, and every one of them is in PostgreSQL too once the impressions
    # have been stored.
    reward_url = "/api/v1/v5/feedback/reward"
    reward_key = {**headers, **_key()}
    reward = {
        "user_id": user_id,
        "recommendation_id": first["recommendation_id"],
        "track_id": track_id,
        "event": "like",
    }
    r1 = api.post(reward_url, json=reward, headers=reward_key)
    r2 = api.post(reward_url, json=reward, headers=reward_key)
    assert r1.status_code == r2.status_code == 200, r2.text
    assert r1.json() == r2.json() and r2.headers["idempotent-replay"] == "true"
    second = recommended[1]
    r3 = api.post(
        reward_url,
        json={
            "user_id": user_id,
            "recommendation_id": second["recommendation_id"],
            "track_id": second["tracks"][0]["track_id"],
            "event": "skip",
        },
        headers=headers,
    )
    assert r3.status_code == 200, r3.text
    assert r3.json()["reward"] < 0

    # Read back through every service that reads PostgreSQL.
    weights = api.get(url, headers=headers).json()
    assert weights["adjustment_count"] == 2
    assert weights["weights"] == skipped.json()["weights"]
    status = api.get(f"/api/v1/v5/session/{user_id}/status", headers=headers).json()
    assert status["turns"] == 3 and status["adjustment_count"] == 2
    assert status["rewards"]["count"] == 2
    arms = status["bandit"]
    assert arms[first["strategy"]]["alpha"] >= r1.json()["posterior"]["alpha"]
    assert arms[second["strategy"]]["alpha"] == pytest.approx(r3.json()["posterior"]["alpha"])
    assert arms[second["strategy"]]["beta"] == pytest.approx(r3.json()["posterior"]["beta"])
    after = api.post(
        "/api/v1/v5/recommendation/adaptive",
        json={"user_id": user_id, "limit": 5},
        headers=headers,
    )
    assert after.status_code == 200, after.text

    ids = {rec["recommendation_id"] for rec in recommended} | {after.json()["recommendation_id"]}

    def impressions_stored() -> bool:
        rows = bounced.fetch(
            "SELECT recommendation_id FROM recommendations WHERE user_id = $1", user_id
        )
        return {r["recommendation_id"] for r in rows} == ids

    _wait_for(impressions_stored, 15, "the impressions stored by learning, through PgBouncer")
    stored = bounced.fetch(
        "SELECT (SELECT count(*) FROM users WHERE user_id = $1) AS users,"
        " (SELECT count(*) FROM weight_changes WHERE user_id = $1) AS changes,"
        " (SELECT count(*) FROM feedback_events WHERE user_id = $1) AS events,"
        " (SELECT count(*) FROM idempotency_keys WHERE user_id = $1) AS keys",
        user_id,
    )[0]
    assert dict(stored) == {"users": 1, "changes": 2, "events": 2, "keys": 3}
    assert bounced.unhandled_errors() == []


def test_concurrent_writes_of_one_listener_are_all_counted(
    bounced: BouncedCluster, api: httpx.Client
) -> None:
    listener = Listener(api)
    listener.say("I love funk")
    rec = listener.recommend(limit=3).json()
    track_id = rec["tracks"][0]["track_id"]
    reward = {"recommendation_id": rec["recommendation_id"], "track_id": track_id}
    # One reward first: the listener's posterior row exists before the concurrent ones.
    first = listener.reward(**reward, event="play", listen_ratio=0.5)
    assert first.status_code == 200, first.text
    before = first.json()["posterior"]
    aggregate_before = bounced.fetch(
        "SELECT rewards FROM bandit_aggregate WHERE arm = $1", rec["strategy"]
    )[0]["rewards"]

    per_client, same_key = 6, 6
    key = _key()["Idempotency-Key"]
    keyed_body = {"action": "explicit", "weights": {"novelty": 0.9}}

    def client_work(index: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=bounced.gateway_url, timeout=30) as client:
            for i in range(per_client):
                adjusted = client.post(
                    f"/api/v1/v5/learning/weights/{listener.user_id}",
                    headers=listener.headers,
                    json={
                        "action": "feedback",
                        "track_id": track_id,
                        "feedback": "like" if (index + i) % 2 else "skip",
                    },
                )
                rewarded = client.post(
                    "/api/v1/v5/feedback/reward",
                    headers=listener.headers,
                    json={
                        "user_id": listener.user_id,
                        **reward,
                        "event": "like" if i % 2 else "skip",
                    },
                )
                codes += [adjusted.status_code, rewarded.status_code]
            if index < same_key:
                # The same keyed request from several clients at once: one effect.
                again = client.post(
                    f"/api/v1/v5/learning/weights/{listener.user_id}",
                    headers={**listener.headers, "Idempotency-Key": key},
                    json=keyed_body,
                )
                codes.append(again.status_code)
        return codes

    with ThreadPoolExecutor(CLIENTS) as pool:
        codes = [code for result in pool.map(client_work, range(CLIENTS)) for code in result]
    assert set(codes) == {200}, codes

    adjustments = CLIENTS * per_client + 1  # the keyed request counts once
    rewards = CLIENTS * per_client
    assert listener.weights().json()["adjustment_count"] == adjustments
    status = listener.status().json()
    assert status["adjustment_count"] == adjustments
    assert status["rewards"]["count"] == rewards + 1
    arm = status["bandit"][rec["strategy"]]
    # Every reward adds 1 to alpha + beta of the arm.
    assert arm["alpha"] + arm["beta"] == pytest.approx(before["alpha"] + before["beta"] + rewards)
    stored = bounced.fetch(
        "SELECT (SELECT count(*) FROM weight_changes WHERE user_id = $1) AS changes,"
        " (SELECT count(*) FROM feedback_events WHERE user_id = $1) AS events,"
        " (SELECT adjustment_count FROM user_weights WHERE user_id = $1) AS count,"
        " (SELECT rewards FROM bandit_aggregate WHERE arm = $2) AS aggregate",
        listener.user_id,
        rec["strategy"],
    )[0]
    assert dict(stored) == {
        "changes": adjustments,
        "events": rewards + 1,
        "count": adjustments,
        "aggregate": aggregate_before + rewards,
    }
    assert bounced.unhandled_errors() == []


def test_server_connections_are_shared_and_hold_no_named_statements(
    bounced: BouncedCluster, api: httpx.Client
) -> None:
    # Some traffic of every service first, so that each replica has used its connections.
    listener = Listener(api)
    listener.say("some blues please")
    rec = listener.recommend(limit=3).json()
    listener.adjust(
        {"action": "feedback", "track_id": rec["tracks"][0]["track_id"], "feedback": "like"}
    )
    assert listener.status().status_code == 200

    database = bounced.config.database
    clients = [c for c in bounced.bouncer.show("CLIENTS") if c["database"] == database]
    servers = [s for s in bounced.bouncer.show("SERVERS") if s["database"] == database]
    assert len(clients) > POOL_SIZE, clients  # eight replicas, one pooled connection at least
    assert 0 < len(servers) <= POOL_SIZE, servers

    async def inspect() -> list[tuple[int, list[str], list[str]]]:
        # POOL_SIZE transactions open at once hold every server connection of the pool.
        conns = [
            await asyncpg.connect(bounced.bouncer.dsn(), statement_cache_size=0)
            for _ in range(POOL_SIZE)
        ]
        try:
            transactions = [conn.transaction() for conn in conns]
            await asyncio.gather(*(t.start() for t in transactions))
            found = []
            for conn in conns:
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                statements = await conn.fetch("SELECT name FROM pg_prepared_statements")
                locks = await conn.fetch(
                    "SELECT objid::text FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid()"
                )
                found.append((pid, [r["name"] for r in statements], [r[0] for r in locks]))
            for t in transactions:
                await t.rollback()
            return found
        finally:
            for conn in conns:
                await conn.close()

    found = asyncio.run(inspect())
    assert len({pid for pid, _, _ in found}) == POOL_SIZE  # each its own server connection
    assert [(names, locks) for _, names, locks in found] == [([], [])] * POOL_SIZE


def _connect_in_a_new_process(dsn: str) -> subprocess.CompletedProcess[str]:
    """A process of its own (asyncpg numbers its named statements per process, from 1, as
    each replica does), with asyncpg's default statement cache."""
    code = (
        "import asyncio, asyncpg, sys\n"
        "async def main():\n"
        "    conn = await asyncpg.connect(sys.argv[1])\n"
        "    try:\n"
        "        print(await conn.fetchval('SELECT 41 + 1'))\n"
        "    finally:\n"
        "        await conn.close()\n"
        "asyncio.run(main())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, dsn], capture_output=True, text=True, timeout=30
    )


async def _prepared_statements(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        return [r["name"] for r in await conn.fetch("SELECT name FROM pg_prepared_statements")]
    finally:
        await conn.close()


async def _deallocate_all(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        await conn.execute("DEALLOCATE ALL")
    finally:
        await conn.close()


def test_the_statement_cache_breaks_through_transaction_pooling(bounced: BouncedCluster) -> None:
    """Why DB_STATEMENT_CACHE_SIZE=0: a named statement stays on the server connection after
    its client has gone, and the next process's first statement has the same name. (Through
    the database's single-connection pool, so both land on the same server connection.)"""
    single = bounced.bouncer.single_dsn
    asyncio.run(_deallocate_all(single))
    try:
        first = _connect_in_a_new_process(single)
        assert first.returncode == 0 and first.stdout.strip() == "42", first.stderr
        assert asyncio.run(_prepared_statements(single)) == ["__asyncpg_stmt_1__"]
        second = _connect_in_a_new_process(single)
        assert second.returncode != 0
        assert "DuplicatePreparedStatementError" in second.stderr, second.stderr
        assert 'prepared statement "__asyncpg_stmt_1__" already exists' in second.stderr
    finally:
        asyncio.run(_deallocate_all(single))


def test_one_shot_commands_leave_no_named_statements(
    bounced: BouncedCluster, tmp_path: Path
) -> None:
    from identity_service.settings import IdentitySettings
    from v5_shared.provision import provision_listeners

    single = bounced.bouncer.single_dsn
    asyncio.run(_deallocate_all(single))
    settings = IdentitySettings(
        jwt_private_key_file=bounced.config.keys_dir / "jwt_private.pem",
        jwt_public_key_file=bounced.config.keys_dir / "jwt_public.pem",
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
    )

    async def run() -> list[str]:
        assert await apply_migrations(single) == []
        assert await seed_default_catalog(single, if_empty=True) == 0
        provisioned = await provision_listeners(
            single, count=2, out=tmp_path / "listeners.jsonl", prefix="pgb_", settings=settings
        )
        assert provisioned.created == 2
        return await _prepared_statements(single)

    assert asyncio.run(run()) == []
    lines = (tmp_path / "listeners.jsonl").read_text().splitlines()
    assert [json.loads(line)["user_id"] for line in lines] == ["pgb_000001", "pgb_000002"]


def test_concurrent_migration_runners_through_pgbouncer_apply_each_once(
    bounced: BouncedCluster,
) -> None:
    name = f"m_{uuid.uuid4().hex[:10]}"
    admin = bounced.direct_dsn.rsplit("/", 1)[0] + "/postgres"
    expected = [m.version for m in bundled_migrations()]

    async def run() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        try:
            through = bounced.bouncer.dsn(name)
            for _ in range(2):  # twice, each time several runners at once
                runners = asyncio.gather(*(apply_migrations(through) for _ in range(3)))
                # A lock that does not hold through the pooler shows as a hang, too.
                results = await asyncio.wait_for(runners, timeout=60)
                applied = sorted(v for result in results for v in result)
                assert applied in (sorted(expected), [])
            check = await asyncpg.connect(bounced.direct_dsn.rsplit("/", 1)[0] + f"/{name}")
            try:
                rows = await check.fetch("SELECT version FROM schema_migrations ORDER BY version")
                assert [r["version"] for r in rows] == expected
                assert await check.fetchval("SELECT to_regclass('feedback_events') IS NOT NULL")
            finally:
                await check.close()
        finally:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

    asyncio.run(run())


def test_a_session_advisory_lock_does_not_exclude_through_transaction_pooling(
    bounced: BouncedCluster,
) -> None:
    """Why the migrations take a transaction-scoped lock: two clients of one server
    connection are one session to PostgreSQL, so both get the session lock."""
    single = bounced.bouncer.single_dsn
    lock_id = 0x7465737431  # not the migration lock

    async def run() -> tuple[bool, bool]:
        a = await asyncpg.connect(single, statement_cache_size=0)
        b = await asyncpg.connect(single, statement_cache_size=0)
        try:
            got_a = await a.fetchval("SELECT pg_try_advisory_lock($1)", lock_id)
            got_b = await b.fetchval("SELECT pg_try_advisory_lock($1)", lock_id)
            return got_a, got_b
        finally:
            await a.execute("SELECT pg_advisory_unlock_all()")
            await a.close()
            await b.close()

    assert asyncio.run(run()) == (True, True)
