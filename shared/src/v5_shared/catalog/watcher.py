"""Keeps a replica's in-memory view of the catalog current: builds it at start, then polls
the catalog version and rebuilds when an import or seed has replaced the catalog. Each
service builds the view it needs (a scoring index, an entity matcher, a lookup table)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi import HTTPException

from ..datastores import DataStores
from ..errors import DEPENDENCY_ERRORS, RETRY_AFTER_SECONDS
from ..logging import get_logger
from .model import Track
from .repository import catalog_version, load_tracks

log = get_logger(__name__)

View = TypeVar("View")


class CatalogWatcher(Generic[View]):
    def __init__(
        self,
        stores: DataStores,
        build: Callable[[int, list[Track]], View],
        *,
        poll_seconds: float,
    ) -> None:
        self._stores = stores
        self._build = build
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.version: int | None = None
        self.view: View | None = None

    @property
    def loaded(self) -> bool:
        return self.view is not None

    def require(self) -> View:
        """The current view, or a 503 while the catalog has not been loaded yet."""
        if self.view is None:
            raise HTTPException(
                status_code=503,
                detail="catalog not loaded yet",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        return self.view

    async def refresh(self) -> bool:
        """Rebuild when the stored version differs from the one in memory; True if rebuilt."""
        async with self._stores.connection() as conn:
            version = await catalog_version(conn)
            if version is None or version == self.version:
                return False
            tracks = await load_tracks(conn)
        # Building is CPU work off the event loop; the swap is one assignment, so requests
        # see the old view or the new one, never a mix.
        view = await asyncio.to_thread(self._build, version, tracks)
        self.view, self.version = view, version
        log.info("catalog_loaded", version=version, tracks=len(tracks))
        return True

    async def start(self) -> None:
        with contextlib.suppress(*DEPENDENCY_ERRORS):
            await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="catalog-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.refresh()
            except DEPENDENCY_ERRORS as exc:
                log.warning("catalog_poll_failed", error=repr(exc))
