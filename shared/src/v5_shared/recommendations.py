"""Served recommendations in Redis: what the reward endpoint must find a moment later on any
replica, the listener's recently recommended tracks (novelty), and the impression stream
that the learning service stores in PostgreSQL in batches. One script commits all of it
with the Idempotency-Key record, so a retried request can never log a second impression."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from .idempotency import (
    IDEMPOTENCY_TTL_SECONDS,
    IdempotencyRequest,
    StoredResponse,
    decode_stored,
    redis_key,
)

IMPRESSION_STREAM = "v5:impressions"
# The learning service deletes entries once stored; this cap (approximate trimming) only
# bounds memory while it is down for long, at the price of the oldest unstored impressions.
IMPRESSION_STREAM_MAX = 200_000


def recommendation_key(recommendation_id: str) -> str:
    return f"v5:rec:{recommendation_id}"


def recent_key(user_id: str) -> str:
    return f"v5:recent:{{{user_id}}}"


_COMMIT = """
local idem, rec, recent, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local fingerprint, response, impression = ARGV[1], ARGV[2], ARGV[3]
local rec_ttl, recent_max, idem_ttl, stream_max = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if idem ~= '' then
  local stored = redis.call('GET', idem)
  if stored then return {'replay', stored} end
end
-- The impression itself is what the reward endpoint looks up (user, arm, tracks).
redis.call('SET', rec, impression, 'EX', rec_ttl)
if #ARGV >= 8 then redis.call('LPUSH', recent, unpack(ARGV, 8)) end
redis.call('LTRIM', recent, 0, recent_max - 1)
redis.call('EXPIRE', recent, 30 * 24 * 3600)
redis.call('XADD', stream, 'MAXLEN', '~', stream_max, '*', 'impression', impression)
if idem ~= '' then
  -- Built as text: a decode/encode round trip in Lua would turn [] into {}.
  local stored = '{"fp":"' .. fingerprint .. '","status":200,"body":' .. response .. '}'
  redis.call('SET', idem, stored, 'EX', idem_ttl)
end
return {'committed', ''}
"""


class RecommendationLog:
    def __init__(self, redis: Redis, *, cache_seconds: int, novelty_memory: int) -> None:
        self._redis = redis
        self._cache_seconds = cache_seconds
        self._novelty_memory = max(1, novelty_memory)
        self._commit = redis.register_script(_COMMIT)

    async def stored_response(self, user_id: str, key: str) -> StoredResponse | None:
        return decode_stored(await self._redis.get(redis_key(user_id, key)))

    @property
    def novelty_memory(self) -> int:
        return self._novelty_memory

    async def recent_track_ids(self, user_id: str) -> list[str]:
        raw = await self._redis.lrange(recent_key(user_id), 0, self._novelty_memory - 1)
        return [r.decode() if isinstance(r, bytes) else r for r in raw]

    async def commit(
        self,
        *,
        user_id: str,
        recommendation_id: str,
        response: dict[str, Any],
        impression: dict[str, Any],
        track_ids: list[str],
        idempotency: IdempotencyRequest | None,
    ) -> StoredResponse | None:
        """Commit a served recommendation; if the Idempotency-Key was already used, nothing is
        written and the stored response is returned instead."""
        result = await self._commit(
            keys=[
                redis_key(user_id, idempotency.key) if idempotency else "",
                recommendation_key(recommendation_id),
                recent_key(user_id),
                IMPRESSION_STREAM,
            ],
            args=[
                idempotency.fingerprint if idempotency else "",
                orjson.dumps(response) if idempotency else b"",
                orjson.dumps(impression),
                self._cache_seconds,
                self._novelty_memory,
                IDEMPOTENCY_TTL_SECONDS,
                IMPRESSION_STREAM_MAX,
                *reversed(track_ids),
            ],
        )
        outcome = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if outcome == "replay":
            return decode_stored(result[1])
        return None

    async def served(self, recommendation_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(recommendation_key(recommendation_id))
        return None if raw is None else orjson.loads(raw)
