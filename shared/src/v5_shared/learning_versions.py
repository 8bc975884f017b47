"""Which version of a listener's learning state is current: a token in Redis that the
learning service replaces after every committed change to what recommendations read (weights,
rewards, a new posterior row). A recommendation replica keeps the state in memory under the
token it was read with and goes back to PostgreSQL only when the token has moved, so the next
recommendation after a change, on any replica, uses it, while an unchanged listener costs no
database round trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from redis.asyncio import Redis

# Longer than any replica keeps a state in memory (LEARNING_CACHE_SECONDS is capped below
# it), so an expired token can only cause a reread, never a stale hit.
TOKEN_TTL_SECONDS = 24 * 3600


def learning_version_key(user_id: str) -> str:
    return f"v5:lv:{{{user_id}}}"


async def mark_changed(redis: Redis, user_ids: Iterable[str]) -> None:
    """Give each listener a fresh token, after the change has been committed: a reader that
    saw the old token may have read the old state or the new one, and rereads either way."""
    unique = list(dict.fromkeys(user_ids))
    if not unique:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in unique:
            pipe.set(learning_version_key(user_id), uuid.uuid4().hex, ex=TOKEN_TTL_SECONDS)
        await pipe.execute()
