"""Identity rules without I/O: password hashing policy and access-token claims."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Re-exported: registration's rule is the one every service checks.
from v5_shared.schemas import USER_ID_PATTERN as USER_ID_PATTERN

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


def make_password_hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    # argon2-cffi's PasswordHasher is argon2id.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def verify_password(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def access_token_claims(
    user_id: str, *, issuer: str, audience: str, ttl_seconds: int, now: datetime | None = None
) -> dict[str, Any]:
    issued = now or datetime.now(UTC)
    return {
        "sub": user_id,
        "iss": issuer,
        "aud": audience,
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
