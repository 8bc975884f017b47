from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from v5_shared.settings import Settings


class RecommendationSettings(Settings):
    # How many recently recommended tracks count as "not new" for the novelty feature.
    novelty_memory: int = Field(default=200, ge=0)
    # How long a served recommendation stays in Redis for the reward endpoint; older ones
    # are found in PostgreSQL.
    recommendation_cache_seconds: int = Field(default=7 * 24 * 3600, ge=60)


@lru_cache(maxsize=1)
def get_recommendation_settings() -> RecommendationSettings:
    return RecommendationSettings()
