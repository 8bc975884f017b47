from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from v5_shared.settings import Settings


class IdentitySettings(Settings):
    # argon2id cost; the defaults are RFC 9106's second recommended option (64 MiB, t=3, p=4).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Hashes running at once per replica: each holds argon2_memory_kib of memory and a core.
    argon2_max_concurrency: int = Field(default=2, ge=1)
    # Attempts per account named in the body (the gateway limits per client address).
    auth_account_rate_per_second: float = Field(default=10.0, gt=0)
    auth_account_burst: int = Field(default=20, ge=1)


@lru_cache(maxsize=1)
def get_identity_settings() -> IdentitySettings:
    return IdentitySettings()
