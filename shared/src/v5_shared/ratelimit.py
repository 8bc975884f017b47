"""A shared rate limiter in Redis (GCRA: a steady rate with a burst allowance), so that the
limit holds across all replicas. The gateway limits per address and per token; this limits
what nginx cannot see, such as attempts per account named in a request body."""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

# Returns 0 when allowed, else milliseconds until the next request would be allowed.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1)
return 0
"""


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.per_second


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._script = redis.register_script(_GCRA)
        self._prefix = prefix

    async def retry_after(self, key: str, limit: RateLimit) -> int:
        """0 when the request may go ahead, else whole seconds to wait (at least 1)."""
        wait_ms = await self._script(
            keys=[f"{self._prefix}:{key}"], args=[limit.interval_ms, limit.burst]
        )
        wait = float(wait_ms)
        return 0 if wait <= 0 else max(1, math.ceil(wait / 1000.0))
