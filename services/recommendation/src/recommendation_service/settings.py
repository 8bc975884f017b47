from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from v5_shared.learning_versions import TOKEN_TTL_SECONDS
from v5_shared.settings import Settings


class RecommendationSettings(Settings):
    """The recommendation service's settings: its own below, and the shared NOVELTY_MEMORY,
    RECOMMENDATION_CACHE_SECONDS, COMFORT_VALENCE_THRESHOLD and CATALOG_POLL_SECONDS."""

    # Listeners whose learning state each replica keeps in memory (0 turns the cache off),
    # and the longest it keeps one without rereading PostgreSQL.
    learning_cache_entries: int = Field(default=50_000, ge=0)
    learning_cache_seconds: float = Field(default=60.0, ge=0, lt=TOKEN_TTL_SECONDS)


@lru_cache(maxsize=1)
def get_recommendation_settings() -> RecommendationSettings:
    return RecommendationSettings()
