"""Idempotency-Key for every POST (API.md): a repeat by the same user with the same key and
body within 24 h gets the first response and has no further effect; the same key with another
body is 409. The record is written together with the effect (same PostgreSQL transaction, or
same Redis script/transaction), so a crash between the two cannot double an effect."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from .responses import FastJSONResponse

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: Any


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, validated (1-128 visible ASCII characters)."""
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not _VALID_KEY.match(value):
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "Idempotency-Key must be 1 to 128 visible ASCII characters",
                    "type": "value_error",
                }
            ]
        )
    return value


def fingerprint(route: str, body: Any, *, secret: bytes | None = None) -> str:
    """What makes two requests 'the same': the operation and the parsed body (so that key
    order and white space do not matter). A body with a password is fingerprinted with a
    keyed hash (HMAC), so a stored fingerprint cannot be used to guess the password."""
    canonical = route.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    if secret is not None:
        return hmac.new(secret, canonical, hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical).hexdigest()


def for_request(
    request: Request, route: str, body: Any, *, secret: bytes | None = None
) -> IdempotencyRequest | None:
    """The request's Idempotency-Key and the fingerprint of ``route`` and ``body`` (a model
    is dumped only when there is a key: most requests carry none)."""
    key = idempotency_key(request)
    if key is None:
        return None
    if isinstance(body, BaseModel):
        body = body.model_dump()
    return IdempotencyRequest(key=key, fingerprint=fingerprint(route, body, secret=secret))


def conflict() -> HTTPException:
    return HTTPException(
        status_code=409, detail="Idempotency-Key was already used with a different request body"
    )


def replay(stored: StoredResponse, request: IdempotencyRequest) -> FastJSONResponse:
    if stored.fingerprint != request.fingerprint:
        raise conflict()
    return FastJSONResponse(
        stored.body, status_code=stored.status, headers={"Idempotent-Replay": "true"}
    )


# PostgreSQL: inside the transaction that makes the effect -------------------------------


async def pg_claim(
    conn: asyncpg.Connection, user_id: str, request: IdempotencyRequest
) -> StoredResponse | None:
    """Serialise requests with this key (transaction-scoped advisory lock), then return the
    stored response if there is one from the last 24 h. Call inside a transaction."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"idem:{user_id}:{request.key}"
    )
    row = await conn.fetchrow(
        """
        SELECT fingerprint, status, body FROM idempotency_keys
        WHERE user_id = $1 AND key = $2 AND created_at > now() - make_interval(secs => $3)
        """,
        user_id,
        request.key,
        float(IDEMPOTENCY_TTL_SECONDS),
    )
    if row is None:
        return None
    return StoredResponse(row["fingerprint"], row["status"], row["body"])


async def pg_store(
    conn: asyncpg.Connection, user_id: str, request: IdempotencyRequest, status: int, body: Any
) -> None:
    await conn.execute(
        """
        INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (user_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
            body = EXCLUDED.body, created_at = now()
        """,
        user_id,
        request.key,
        request.fingerprint,
        status,
        body,
    )


async def pg_expire(conn: asyncpg.Connection) -> int:
    result: str = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
        float(IDEMPOTENCY_TTL_SECONDS),
    )
    return int(result.split()[-1])


# Redis: the record travels in the same script or MULTI as the effect ---------------------


def redis_key(user_id: str, key: str) -> str:
    return f"v5:idem:{{{user_id}}}:{key}"


def encode_stored(request: IdempotencyRequest, status: int, body: Any) -> bytes:
    return orjson.dumps({"fp": request.fingerprint, "status": status, "body": body})


def decode_stored(raw: bytes | str | None) -> StoredResponse | None:
    if raw is None:
        return None
    data = orjson.loads(raw)
    return StoredResponse(data["fp"], int(data["status"]), data["body"])
