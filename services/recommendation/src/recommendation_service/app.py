"""The recommendation service: the catalog in memory, and (with the learning state) what to
play next."""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI

from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.recommendations import RecommendationLog
from v5_shared.service import create_service_app
from v5_shared.sessions import SessionStore

from .api import catalog_router
from .catalog import CatalogIndex
from .learning_cache import LearningCache
from .recommend_api import recommendation_router
from .settings import RecommendationSettings, get_recommendation_settings


def create_app(settings: RecommendationSettings | None = None) -> FastAPI:
    settings = settings or get_recommendation_settings()

    async def on_startup(app: FastAPI) -> None:
        holder = CatalogWatcher(
            app.state.stores, CatalogIndex, poll_seconds=settings.catalog_poll_seconds
        )
        app.state.catalog = holder
        app.state.sessions = SessionStore(
            app.state.stores.redis, ttl_seconds=settings.session_ttl_seconds
        )
        app.state.recommendation_log = RecommendationLog(
            app.state.stores.redis,
            cache_seconds=settings.recommendation_cache_seconds,
            novelty_memory=settings.novelty_memory,
        )
        app.state.learning_cache = LearningCache(
            max_entries=settings.learning_cache_entries,
            max_age_seconds=settings.learning_cache_seconds,
        )
        # One generator per process (seeded from the OS once): making one per request
        # costs more than the sampling it is used for.
        app.state.rng = np.random.default_rng()
        app.state.readiness_checks["catalog"] = lambda: holder.loaded
        await holder.start()

    async def on_shutdown(app: FastAPI) -> None:
        await app.state.catalog.stop()

    return create_service_app(
        "recommendation",
        routers=[recommendation_router, catalog_router],
        description="The music catalog and adaptive recommendations.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        settings=settings,
    )
