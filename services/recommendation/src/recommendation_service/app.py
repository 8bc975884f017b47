"""The recommendation service: the catalog in memory, and (with the learning state) what to
play next."""

from __future__ import annotations

from fastapi import FastAPI

from v5_shared.service import create_service_app

from .api import catalog_router
from .catalog_loader import CatalogHolder
from .settings import RecommendationSettings, get_recommendation_settings


def create_app(settings: RecommendationSettings | None = None) -> FastAPI:
    settings = settings or get_recommendation_settings()

    async def on_startup(app: FastAPI) -> None:
        holder = CatalogHolder(app.state.stores, settings.catalog_poll_seconds)
        app.state.catalog = holder
        app.state.readiness_checks["catalog"] = lambda: holder.loaded
        await holder.start()

    async def on_shutdown(app: FastAPI) -> None:
        await app.state.catalog.stop()

    return create_service_app(
        "recommendation",
        routers=[catalog_router],
        description="The music catalog and adaptive recommendations.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        settings=settings,
    )
