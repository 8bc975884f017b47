"""Each recommendation replica notices a replaced catalog and swaps its in-memory copy."""

from dataclasses import replace
from pathlib import Path

import asyncpg

from recommendation_service.catalog import CatalogIndex
from v5_shared.catalog import generate_catalog, replace_catalog
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.datastores import DataStores
from v5_shared.keys import generate_development_keys
from v5_shared.settings import Settings


async def test_watcher_loads_then_reloads_only_when_the_version_changes(
    db_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    _, public, _ = generate_development_keys(tmp_path)
    stores = await DataStores.open(
        Settings(database_url=db_dsn, redis_url=redis_url, jwt_public_key_file=public)
    )
    holder = CatalogWatcher(stores, CatalogIndex, poll_seconds=60)
    try:
        assert await holder.refresh() is False  # no catalog yet: nothing to load
        assert not holder.loaded

        tracks = generate_catalog(seed=1, n_tracks=300, n_artists=40)
        conn = await asyncpg.connect(db_dsn)
        try:
            async with conn.transaction():
                first = await replace_catalog(conn, tracks, source="test")
            assert await holder.refresh() is True
            assert holder.view is not None and holder.view.version == first
            assert len(holder.view.tracks) == 300
            assert await holder.refresh() is False  # same version: no reload

            smaller = [replace(t, popularity=1.0) for t in tracks[:120]]
            async with conn.transaction():
                second = await replace_catalog(conn, smaller, source="test")
        finally:
            await conn.close()
        assert await holder.refresh() is True
        assert holder.view.version == second > first
        assert len(holder.view.tracks) == 120
        assert holder.view.popularity_summary()["p50"] == 1.0
    finally:
        await stores.close()
