"""Listener accounts in bulk for load tests (`v5ctl provision-listeners`).

Registering thousands of accounts through the API would spend a load test's set-up in
argon2 (deliberately about 100 ms and 64 MiB a hash) and in the gateway's per-address limit
on /auth/*. This writes the rows straight into PostgreSQL instead, in one statement, with ONE
hash of a generated password shared by every new account: it is made by the identity
service's own hasher with its cost settings, so the rows are indistinguishable from
registered ones and every new account logs in with that password. The access tokens are
signed with identity's private key and claims (issuer, audience, lifetime), as /auth/token
issues them, so the listeners need no login either.

The identity service package must be installed (it is in the development environment and
the identity image), since its hashing and claims are used rather than copied.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity_service.domain import USER_ID_PATTERN, access_token_claims, make_password_hasher
from identity_service.settings import IdentitySettings

from .auth import ALGORITHM
from .settings import ConfigurationError

DEFAULT_PREFIX = "listener_"
# Enough digits that ids sort in creation order for any count a load test uses.
MIN_ID_DIGITS = 6

_INSERT_NEW_USERS = """
INSERT INTO users (user_id, password_hash)
SELECT user_id, $2 FROM unnest($1::text[]) AS user_id
ON CONFLICT (user_id) DO NOTHING
RETURNING user_id
"""


@dataclass(frozen=True, slots=True)
class ProvisionedListeners:
    path: Path
    created: int
    existing: int


def listener_ids(prefix: str, count: int) -> list[str]:
    """`count` user ids, the prefix followed by a zero-padded number from 1; every id must be
    a valid user_id (API.md), so a bad prefix is refused before anything is written."""
    if count < 1:
        raise ValueError("the count must be at least 1")
    digits = max(MIN_ID_DIGITS, len(str(count)))
    ids = [f"{prefix}{number:0{digits}d}" for number in range(1, count + 1)]
    # The ids differ only in their digits and all have the same length: when one is valid,
    # all are.
    if not re.fullmatch(USER_ID_PATTERN, ids[0]):
        raise ValueError(
            f"{ids[0]!r} is not a valid user_id (letters, digits, '_', '.', '-'; "
            "3 to 64 characters): choose another prefix"
        )
    return ids


def load_signing_key(settings: IdentitySettings) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(settings.private_key_pem().encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError("JWT_PRIVATE_KEY must be an Ed25519 private key")
    return key


def access_token(
    user_id: str, settings: IdentitySettings, key: Ed25519PrivateKey, now: datetime
) -> str:
    claims = access_token_claims(
        user_id,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        now=now,
    )
    return jwt.encode(claims, key, algorithm=ALGORITHM)


async def insert_new_users(
    conn: asyncpg.Connection, user_ids: list[str], password_hash: str
) -> set[str]:
    """Insert the ids that are not taken, all with the same hash; return those inserted."""
    rows = await conn.fetch(_INSERT_NEW_USERS, user_ids, password_hash)
    return {row["user_id"] for row in rows}


def _write_private(path: Path, lines: list[bytes]) -> None:
    # The file holds bearer tokens and a password: readable by its owner only.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.writelines(lines)


async def provision_listeners(
    database_url: str,
    *,
    count: int,
    out: Path,
    prefix: str = DEFAULT_PREFIX,
    settings: IdentitySettings | None = None,
) -> ProvisionedListeners:
    """Create `count` listener accounts (ids already taken are left as they are) and write
    `out` as JSON lines: `user_id`, `access_token`, `expires_at`, and `password` for the
    accounts created now (a taken id keeps the password it had)."""
    settings = settings or IdentitySettings()
    settings.check_production_safety(needs_private_key=True)
    user_ids = listener_ids(prefix, count)
    key = load_signing_key(settings)
    password = secrets.token_urlsafe(24)
    hasher = make_password_hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    password_hash = hasher.hash(password)
    # No statement cache (unnamed prepared statements only): safe through a transaction pooler.
    conn = await asyncpg.connect(
        database_url, timeout=settings.db_connect_timeout_seconds, statement_cache_size=0
    )
    try:
        created = await insert_new_users(conn, user_ids, password_hash)
    finally:
        await conn.close()
    now = datetime.now(UTC)
    # As the token's exp claim has it: whole seconds.
    expiry = now + timedelta(seconds=settings.access_token_ttl_seconds)
    expires_at = datetime.fromtimestamp(int(expiry.timestamp()), UTC).isoformat()
    lines = []
    for user_id in user_ids:
        record = {
            "user_id": user_id,
            "access_token": access_token(user_id, settings, key, now),
            "expires_at": expires_at,
        }
        if user_id in created:
            record["password"] = password
        lines.append(orjson.dumps(record) + b"\n")
    _write_private(out, lines)
    return ProvisionedListeners(path=out, created=len(created), existing=count - len(created))
