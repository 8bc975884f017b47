"""Keeps this replica's in-memory catalog current: loads it at start, then polls the catalog
version and reloads when an import or seed has replaced it."""

from __future__ import annotations

import asyncio
import contextlib

from v5_shared.catalog.repository import catalog_version, load_tracks
from v5_shared.datastores import DataStores
from v5_shared.errors import DEPENDENCY_ERRORS
from v5_shared.logging import get_logger

from .catalog import CatalogIndex

log = get_logger(__name__)


class CatalogHolder:
    def __init__(self, stores: DataStores, poll_seconds: float) -> None:
        self._stores = stores
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.index: CatalogIndex | None = None

    @property
    def loaded(self) -> bool:
        return self.index is not None

    async def refresh(self) -> bool:
        """Reload when the stored version differs from the one in memory; True if reloaded."""
        async with self._stores.connection() as conn:
            version = await catalog_version(conn)
            if version is None or (self.index is not None and self.index.version == version):
                return False
            tracks = await load_tracks(conn)
        # Building the index is CPU work; the swap itself is one assignment, so requests see
        # either the old catalog or the new one, never a mix.
        self.index = CatalogIndex(version=version, tracks=tracks)
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
