"""Catalog operations run from the command line or at start-up, each on its own connection.

The connections have no statement cache: asyncpg then uses only unnamed prepared statements,
so these commands also run through a transaction pooler (PgBouncer, pool_mode = transaction),
where a named statement would stay behind on a shared server connection and collide with the
next process's statement of the same name."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import asyncpg

from v5_shared.catalog.csv_import import parse_catalog_csv_report
from v5_shared.catalog.generator import generate_catalog
from v5_shared.catalog.repository import lock_catalog, replace_catalog, track_count

DEFAULT_CATALOG_SEED = 5
DEFAULT_CATALOG_SOURCE = f"generator:seed={DEFAULT_CATALOG_SEED}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome of a CSV import.

    ``tracks`` is the number of tracks written, ``skipped`` the ``(row_number, message)``
    pairs of the rows left out (empty unless ``skip_invalid``), and ``version`` the new
    catalog version.
    """

    tracks: int
    skipped: list[tuple[int, str]]
    version: int


async def seed_default_catalog(dsn: str, *, if_empty: bool = True) -> int:
    """Write the generated default catalog; return the number of tracks written.

    With ``if_empty`` (the default) an existing catalog is left alone and 0 is returned,
    so that every replica can call this at start-up and only the first one seeds.
    """
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        # Cheap check first, so that the usual case (already seeded) generates nothing.
        if if_empty and await track_count(conn) > 0:
            return 0
        tracks = await asyncio.to_thread(generate_catalog, DEFAULT_CATALOG_SEED)
        async with conn.transaction():
            # Checked again under the write lock: another process may have seeded since.
            await lock_catalog(conn)
            if if_empty and await track_count(conn) > 0:
                return 0
            await replace_catalog(conn, tracks, DEFAULT_CATALOG_SOURCE)
        return len(tracks)
    finally:
        await conn.close()


async def import_catalog_csv(
    dsn: str, path: str, *, progress: bool = True, skip_invalid: bool = False
) -> ImportResult:
    """Replace the catalog with the tracks of a CSV file.

    The whole file is parsed and validated before the database is touched: on a
    ``CatalogValidationError`` nothing is written and the error propagates. By default
    any bad row is such an error; with ``skip_invalid`` bad rows are left out and
    reported in ``ImportResult.skipped`` (a bad header, or no valid row at all, is
    still an error).
    """
    report = await asyncio.to_thread(
        parse_catalog_csv_report, path, progress=progress, skip_invalid=skip_invalid
    )
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        version = await replace_catalog(conn, report.tracks, f"csv:{os.path.basename(path)}")
    finally:
        await conn.close()
    return ImportResult(tracks=len(report.tracks), skipped=report.skipped, version=version)
