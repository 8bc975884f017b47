"""The learning service."""

from __future__ import annotations

from fastapi import FastAPI

from v5_shared.service import create_service_app
from v5_shared.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        "learning",
        routers=[],
        description="Adaptive feature weights, rewards and bandit posteriors.",
        settings=settings or get_settings(),
    )
