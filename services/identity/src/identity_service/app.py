"""The identity service: accounts and access tokens. The only holder of the signing key."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from v5_shared.ratelimit import RateLimiter
from v5_shared.service import create_service_app

from .api import router
from .domain import make_password_hasher
from .settings import IdentitySettings, get_identity_settings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or get_identity_settings()

    async def on_startup(app: FastAPI) -> None:
        private_pem = settings.private_key_pem().encode()
        app.state.signing_key = serialization.load_pem_private_key(private_pem, password=None)
        # Keys the fingerprints of stored registration requests (which contain passwords).
        app.state.fingerprint_secret = hashlib.sha256(b"idempotency\n" + private_pem).digest()
        hasher = make_password_hasher(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        app.state.password_hasher = hasher
        app.state.decoy_hash = hasher.hash("decoy password for unknown accounts")
        app.state.hash_pool = ThreadPoolExecutor(
            max_workers=settings.argon2_max_concurrency, thread_name_prefix="argon2"
        )
        app.state.account_limiter = RateLimiter(app.state.stores.redis, "ratelimit:auth")

    async def on_shutdown(app: FastAPI) -> None:
        app.state.hash_pool.shutdown(wait=True)

    return create_service_app(
        "identity",
        routers=[router],
        description="Registration and access tokens.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        signs_tokens=True,
        settings=settings,
    )
