from __future__ import annotations

from functools import lru_cache

from v5_shared.settings import Settings


class RecommendationSettings(Settings):
    """The recommendation service's settings (all shared for now: NOVELTY_MEMORY,
    RECOMMENDATION_CACHE_SECONDS, COMFORT_VALENCE_THRESHOLD, CATALOG_POLL_SECONDS)."""


@lru_cache(maxsize=1)
def get_recommendation_settings() -> RecommendationSettings:
    return RecommendationSettings()
