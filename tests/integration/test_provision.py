"""`v5ctl provision-listeners` against real PostgreSQL: accounts that identity itself accepts
(login with the written password, tokens accepted through the gateway), made with one hash
and identity's settings, existing ids left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from identity_service.domain import make_password_hasher, verify_password
from identity_service.settings import IdentitySettings
from v5_cluster.cluster import LocalCluster
from v5_cluster.render import service_environment
from v5_shared.provision import provision_listeners

V5CTL = Path(sys.executable).parent / "v5ctl"


def identity_env(cluster: LocalCluster) -> dict[str, str]:
    config = cluster.config
    return service_environment(config, "identity", config.replica_ports("identity")[0])


def identity_settings(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> IdentitySettings:
    """The settings the cluster's identity replicas run with."""
    for name, value in identity_env(cluster).items():
        monkeypatch.setenv(name, value)
    return IdentitySettings()


def provision(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(V5CTL), "provision-listeners", *args],
        env={**os.environ, **identity_env(cluster)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def prefix() -> str:
    return f"lt{uuid.uuid4().hex[:8]}_"


def test_provisioned_listeners_log_in_and_their_tokens_are_accepted(
    cluster: LocalCluster, gateway_url: str, tmp_path: Path, prefix: str
) -> None:
    out = tmp_path / "listeners.jsonl"
    result = provision(cluster, "--count", "5", "--out", str(out), "--prefix", prefix)
    assert result.returncode == 0, result.stderr
    assert "5 created, 0 already there" in result.stdout
    accounts = read_lines(out)
    assert [a["user_id"] for a in accounts] == [f"{prefix}{n:06d}" for n in range(1, 6)]
    assert out.stat().st_mode & 0o777 == 0o600
    with httpx.Client(base_url=gateway_url, timeout=10) as api:
        for account in accounts:
            status = api.get(
                f"/api/v1/v5/session/{account['user_id']}/status",
                headers={"Authorization": f"Bearer {account['access_token']}"},
            )
            assert status.status_code == 200, status.text
            assert status.json()["turns"] == 0
        first = accounts[0]
        login = api.post(
            "/api/v1/v5/auth/token",
            json={"user_id": first["user_id"], "password": first["password"]},
        )
        assert login.status_code == 200, login.text
        # The token of someone else's account does not open this one.
        other = api.get(
            f"/api/v1/v5/session/{first['user_id']}/status",
            headers={"Authorization": f"Bearer {accounts[1]['access_token']}"},
        )
        assert other.status_code == 403


async def test_every_row_holds_the_same_hash_made_as_identity_makes_them(
    cluster: LocalCluster, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "listeners.jsonl"
    assert (
        provision(cluster, "--count", "50", "--out", str(out), "--prefix", prefix).returncode == 0
    )
    password = read_lines(out)[0]["password"]
    conn = await asyncpg.connect(cluster.config.database_url)
    try:
        hashes = await conn.fetch(
            "SELECT DISTINCT password_hash FROM users WHERE user_id LIKE $1", f"{prefix}%"
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM users WHERE user_id LIKE $1", f"{prefix}%"
        )
    finally:
        await conn.close()
    assert count == 50 and len(hashes) == 1
    stored = hashes[0]["password_hash"]
    settings = identity_settings(cluster, monkeypatch)
    hasher = make_password_hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    assert stored.startswith("$argon2id$")
    assert verify_password(hasher, stored, password)
    # Identity would not rehash it at login: its own parameters.
    assert not hasher.check_needs_rehash(stored)


def test_tokens_carry_identitys_claims(
    cluster: LocalCluster, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "listeners.jsonl"
    assert provision(cluster, "--count", "1", "--out", str(out), "--prefix", prefix).returncode == 0
    account = read_lines(out)[0]
    settings = identity_settings(cluster, monkeypatch)
    claims = jwt.decode(
        account["access_token"],
        settings.public_key_pem(),
        algorithms=["EdDSA"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    assert claims["sub"] == account["user_id"]
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert account["expires_at"].endswith("+00:00")


async def test_ids_already_taken_are_skipped_and_keep_their_password(
    cluster: LocalCluster, db_dsn: str, tmp_path: Path, prefix: str
) -> None:
    settings = IdentitySettings(
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
        jwt_private_key_file=cluster.config.keys_dir / "jwt_private.pem",
    )
    first = await provision_listeners(
        db_dsn, count=3, out=tmp_path / "first.jsonl", prefix=prefix, settings=settings
    )
    second = await provision_listeners(
        db_dsn, count=5, out=tmp_path / "second.jsonl", prefix=prefix, settings=settings
    )
    assert (first.created, first.existing) == (3, 0)
    assert (second.created, second.existing) == (2, 3)
    before = read_lines(tmp_path / "first.jsonl")
    after = read_lines(tmp_path / "second.jsonl")
    assert [a["user_id"] for a in after] == [f"{prefix}{n:06d}" for n in range(1, 6)]
    # Only the accounts made now come with a password: the others keep theirs.
    assert ["password" in a for a in after] == [False, False, False, True, True]
    hasher = make_password_hasher(1, 8192, 1)
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = dict(
            await conn.fetch(
                "SELECT user_id, password_hash FROM users WHERE user_id LIKE $1", f"{prefix}%"
            )
        )
    finally:
        await conn.close()
    old_password, new_password = before[0]["password"], after[3]["password"]
    assert old_password != new_password
    assert all(verify_password(hasher, rows[a["user_id"]], old_password) for a in before)
    assert all(verify_password(hasher, rows[a["user_id"]], new_password) for a in after[3:])


def test_a_prefix_that_makes_invalid_ids_provisions_nothing(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    out = tmp_path / "listeners.jsonl"
    result = provision(cluster, "--count", "3", "--out", str(out), "--prefix", "no spaces ")
    assert result.returncode == 1
    assert "not a valid user_id" in result.stderr
    assert not out.exists()
