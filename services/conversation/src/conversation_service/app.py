"""The conversation service: understands each message, remembers the session in Redis and
follows the listener's mood."""

from __future__ import annotations

from fastapi import FastAPI

from v5_shared.catalog.model import Track
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.service import create_service_app
from v5_shared.sessions import SessionStore
from v5_shared.settings import Settings, get_settings

from .api import conversation_router, session_router
from .understanding import EntityMatcher


def build_matcher(_version: int, tracks: list[Track]) -> EntityMatcher:
    artists = {artist for track in tracks for artist in track.artists}
    genres = {genre for track in tracks for genre in track.genres}
    return EntityMatcher(artists, genres)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def on_startup(app: FastAPI) -> None:
        app.state.sessions = SessionStore(
            app.state.stores.redis, ttl_seconds=settings.session_ttl_seconds
        )
        watcher = CatalogWatcher(
            app.state.stores, build_matcher, poll_seconds=settings.catalog_poll_seconds
        )
        app.state.catalog = watcher
        app.state.readiness_checks["catalog"] = lambda: watcher.loaded
        await watcher.start()

    async def on_shutdown(app: FastAPI) -> None:
        await app.state.catalog.stop()

    return create_service_app(
        "conversation",
        routers=[conversation_router, session_router],
        description="Conversation memory and the listener's mood trajectory.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        settings=settings,
    )
