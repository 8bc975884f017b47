"""The learning service: adaptive weights, rewards and bandit posteriors, and the store of
served recommendations."""

from __future__ import annotations

from fastapi import FastAPI

from v5_shared.catalog.model import Track
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.recommendations import RecommendationLog
from v5_shared.service import create_service_app
from v5_shared.sessions import SessionStore

from .api import feedback_router, learning_router
from .impressions import ImpressionConsumer
from .settings import LearningSettings, get_learning_settings


def build_track_lookup(_version: int, tracks: list[Track]) -> dict[str, Track]:
    return {track.track_id: track for track in tracks}


def create_app(settings: LearningSettings | None = None) -> FastAPI:
    settings = settings or get_learning_settings()

    async def on_startup(app: FastAPI) -> None:
        stores = app.state.stores
        app.state.sessions = SessionStore(stores.redis, ttl_seconds=settings.session_ttl_seconds)
        app.state.recommendation_log = RecommendationLog(
            stores.redis,
            cache_seconds=settings.recommendation_cache_seconds,
            novelty_memory=settings.novelty_memory,
        )
        watcher = CatalogWatcher(
            stores, build_track_lookup, poll_seconds=settings.catalog_poll_seconds
        )
        app.state.catalog = watcher
        app.state.readiness_checks["catalog"] = lambda: watcher.loaded
        await watcher.start()
        consumer = ImpressionConsumer(
            stores,
            batch_size=settings.impression_batch_size,
            block_ms=settings.impression_block_ms,
            linger_ms=settings.impression_linger_ms,
        )
        app.state.impressions = consumer
        await consumer.start()

    async def on_shutdown(app: FastAPI) -> None:
        await app.state.impressions.stop()
        await app.state.catalog.stop()

    return create_service_app(
        "learning",
        routers=[learning_router, feedback_router],
        description="Adaptive feature weights, rewards and bandit posteriors.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        settings=settings,
    )
