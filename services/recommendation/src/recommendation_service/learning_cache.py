"""The listeners' learning state (weights, posteriors, liked tracks), kept in this replica's
memory under the version token it was read with (see v5_shared.learning_versions). A
recommendation for a listener whose token has not moved needs no PostgreSQL round trip.

Entries also expire after LEARNING_CACHE_SECONDS: the token is written after the change
commits, so if Redis failed just then the token would not move, and the expiry bounds how
long such a change could go unseen. The all-listeners aggregate inside an entry (a prior
for arms the listener has no posterior for yet) is as old as the entry at most."""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from v5_shared.learning_store import ListenerLearning


class LearningCache:
    def __init__(
        self,
        *,
        max_entries: int,
        max_age_seconds: float,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enabled = max_entries > 0 and max_age_seconds > 0
        self._entries: TTLCache[str, tuple[bytes | None, ListenerLearning]] = TTLCache(
            maxsize=max(max_entries, 1), ttl=max(max_age_seconds, 1e-9), timer=timer
        )

    def get(self, user_id: str, token: bytes | None) -> ListenerLearning | None:
        if not self._enabled:
            return None
        entry = self._entries.get(user_id)
        if entry is None or entry[0] != token:
            return None
        return entry[1]

    def put(self, user_id: str, token: bytes | None, learned: ListenerLearning) -> None:
        if self._enabled:
            self._entries[user_id] = (token, learned)

    def __len__(self) -> int:
        return len(self._entries)
