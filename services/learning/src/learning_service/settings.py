from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from v5_shared.settings import Settings


class LearningSettings(Settings):
    # How far one feedback moves the weights of the features the track matched.
    weight_learning_rate: float = Field(default=0.05, gt=0, le=1)
    # Impressions stored per PostgreSQL batch, and how long to wait for a batch to fill.
    impression_batch_size: int = Field(default=500, ge=1)
    impression_block_ms: int = Field(default=500, ge=10)
    # After a part-filled batch, wait this long for more before reading again.
    impression_linger_ms: int = Field(default=200, ge=0)


@lru_cache(maxsize=1)
def get_learning_settings() -> LearningSettings:
    return LearningSettings()
