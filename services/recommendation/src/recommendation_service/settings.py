from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from v5_shared.settings import Settings


class RecommendationSettings(Settings):
    # How often each replica checks whether the catalog was replaced.
    catalog_poll_seconds: float = Field(default=5.0, gt=0)


@lru_cache(maxsize=1)
def get_recommendation_settings() -> RecommendationSettings:
    return RecommendationSettings()
