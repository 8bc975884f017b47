"""Thin routes: validate, call the domain and the repository, shape the response."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
from argon2 import PasswordHasher
from fastapi import APIRouter, HTTPException, Request

from v5_shared import idempotency
from v5_shared.datastores import DataStores
from v5_shared.ratelimit import RateLimit, RateLimiter
from v5_shared.responses import FastJSONResponse
from v5_shared.routing import JSONRoute
from v5_shared.schemas import iso

from . import repository
from .domain import USER_ID_PATTERN, access_token_claims, verify_password
from .schemas import RegisterRequest, RegisterResponse, TokenRequest, TokenResponse
from .settings import IdentitySettings

router = APIRouter(prefix="/api/v1/v5/auth", tags=["identity"], route_class=JSONRoute)

WRONG_LOGIN = "incorrect user_id or password"

_REGISTRABLE_USER_ID = re.compile(USER_ID_PATTERN)


def _state(request: Request) -> tuple[IdentitySettings, DataStores]:
    return request.app.state.settings, request.app.state.stores


async def _in_hash_pool(request: Request, func, *args):  # type: ignore[no-untyped-def]
    pool: ThreadPoolExecutor = request.app.state.hash_pool
    return await asyncio.get_running_loop().run_in_executor(pool, func, *args)


async def _limit_account(request: Request, user_id: str) -> None:
    settings, _ = _state(request)
    limiter: RateLimiter = request.app.state.account_limiter
    limit = RateLimit(settings.auth_account_rate_per_second, settings.auth_account_burst)
    wait = await limiter.retry_after(user_id.lower(), limit)
    if wait:
        raise HTTPException(
            status_code=429,
            detail="too many attempts for this account; retry later",
            headers={"Retry-After": str(wait)},
        )


@router.post(
    "/register",
    status_code=201,
    response_model=RegisterResponse,
    responses={409: {"description": "user_id already registered"}},
)
async def register(body: RegisterRequest, request: Request) -> Any:
    _, stores = _state(request)
    await _limit_account(request, body.user_id)
    idem = idempotency.for_request(
        request, "auth/register", body, secret=request.app.state.fingerprint_secret
    )
    hasher: PasswordHasher = request.app.state.password_hasher
    password_hash = await _in_hash_pool(request, hasher.hash, body.password)
    async with stores.transaction() as conn:
        if idem is not None:
            stored = await idempotency.pg_claim(conn, body.user_id, idem)
            if stored is not None:
                return idempotency.replay(stored, idem)
        try:
            created_at = await repository.insert_user(conn, body.user_id, password_hash)
        except repository.UserAlreadyExists:
            raise HTTPException(status_code=409, detail="user_id already registered") from None
        payload = RegisterResponse(
            user_id=body.user_id, created_at=iso(created_at) or ""
        ).model_dump(mode="json")
        if idem is not None:
            await idempotency.pg_store(conn, body.user_id, idem, 201, payload)
    return FastJSONResponse(payload, status_code=201)


@router.post(
    "/token",
    response_model=TokenResponse,
    responses={401: {"description": "wrong user_id or password"}},
)
async def token(body: TokenRequest, request: Request) -> TokenResponse:
    # An Idempotency-Key is accepted (validated) but no token is stored for replay: issuing
    # a token has no effect to repeat, and bearer tokens are not kept at rest.
    idempotency.idempotency_key(request)
    settings, stores = _state(request)
    await _limit_account(request, body.user_id)
    hasher: PasswordHasher = request.app.state.password_hasher
    # An id that registration would refuse has no account, so it is not looked up: it is a
    # wrong login like any other (and a NUL in it, which PostgreSQL's text cannot hold, would
    # otherwise fail the query).
    stored_hash: str | None = None
    if _REGISTRABLE_USER_ID.fullmatch(body.user_id):
        async with stores.connection() as conn:
            stored_hash = await repository.password_hash_of(conn, body.user_id)
    # An unknown user costs the same hash as a known one, so timing does not tell them apart.
    candidate_hash = stored_hash or request.app.state.decoy_hash
    valid = await _in_hash_pool(request, verify_password, hasher, candidate_hash, body.password)
    if stored_hash is None or not valid:
        raise HTTPException(
            status_code=401, detail=WRONG_LOGIN, headers={"WWW-Authenticate": "Bearer"}
        )
    if hasher.check_needs_rehash(stored_hash):
        new_hash = await _in_hash_pool(request, hasher.hash, body.password)
        async with stores.connection() as conn:
            await repository.replace_password_hash(conn, body.user_id, new_hash)
    claims = access_token_claims(
        body.user_id,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    signed = jwt.encode(claims, request.app.state.signing_key, algorithm="EdDSA")
    return TokenResponse(access_token=signed, expires_in=settings.access_token_ttl_seconds)
