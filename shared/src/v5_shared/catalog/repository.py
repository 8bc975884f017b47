"""Catalog persistence: the ``tracks`` and ``catalog_state`` tables (migration 0002)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg

from v5_shared.catalog.model import Track

# Column order of ``tracks``, matching the field order of ``Track``.
TRACK_COLUMNS: tuple[str, ...] = (
    "track_id",
    "title",
    "artists",
    "album",
    "genres",
    "valence",
    "energy",
    "danceability",
    "acousticness",
    "tempo",
    "popularity",
    "release_year",
    "duration_ms",
)
_REAL_COLUMNS: tuple[str, ...] = (
    "valence",
    "energy",
    "danceability",
    "acousticness",
    "tempo",
    "popularity",
)

# Notified (with the new version as payload) when a replacement commits, for services
# that prefer LISTEN to polling ``catalog_version``.
CATALOG_CHANGED_CHANNEL = "v5_catalog_changed"

# Self-conflicting, so replacements queue up behind each other, yet compatible with
# plain SELECTs: readers keep seeing the old catalog until the new one commits.
_LOCK_TRACKS = "LOCK TABLE tracks IN SHARE ROW EXCLUSIVE MODE"

_BUMP_STATE = """
INSERT INTO catalog_state AS state (singleton, version, source, track_count, updated_at)
VALUES (true, 1, $1, $2, now())
ON CONFLICT (singleton) DO UPDATE
SET version = state.version + 1,
    source = EXCLUDED.source,
    track_count = EXCLUDED.track_count,
    updated_at = now()
RETURNING version
"""

# The feature columns are single precision. Read through text, each comes back as the
# shortest decimal that identifies the stored value (0.7, not 0.699999988079071): the
# value that was written whenever it had at most six significant digits.
_SELECTED_COLUMNS = ", ".join(
    f"{column}::text::float8 AS {column}" if column in _REAL_COLUMNS else column
    for column in TRACK_COLUMNS
)
# COLLATE "C": code-point order, the same as sorting the ids in Python, whatever the
# database's locale.
_SELECT_TRACKS = f'SELECT {_SELECTED_COLUMNS} FROM tracks ORDER BY track_id COLLATE "C"'


async def lock_catalog(conn: asyncpg.Connection) -> None:
    """Take the catalog write lock until the end of the current transaction.

    For callers that must decide whether to replace the catalog (for instance, only
    when it is empty) without another writer slipping in between.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("lock_catalog needs an open transaction to hold the lock")
    await conn.execute(_LOCK_TRACKS)


async def replace_catalog(conn: asyncpg.Connection, tracks: Sequence[Track], source: str) -> int:
    """Replace the whole catalog with ``tracks`` and return the new catalog version.

    Runs in one transaction (a savepoint when the caller already has one open), so the
    catalog is either entirely replaced or left as it was.
    """
    if not tracks:
        raise ValueError("refusing to replace the catalog with an empty one")
    # Checked here for a clear message; the primary key would reject them anyway.
    id_counts = Counter(track.track_id for track in tracks)
    if len(id_counts) != len(tracks):
        duplicates = sorted(track_id for track_id, n in id_counts.items() if n > 1)
        raise ValueError(f"duplicate track ids: {', '.join(duplicates[:10])}")

    records = [
        (
            t.track_id,
            t.title,
            list(t.artists),
            t.album,
            list(t.genres),
            t.valence,
            t.energy,
            t.danceability,
            t.acousticness,
            t.tempo,
            t.popularity,
            t.release_year,
            t.duration_ms,
        )
        for t in tracks
    ]
    async with conn.transaction():
        await conn.execute(_LOCK_TRACKS)
        # DELETE rather than TRUNCATE: TRUNCATE would block every reader until commit.
        await conn.execute("DELETE FROM tracks")
        await conn.copy_records_to_table("tracks", records=records, columns=TRACK_COLUMNS)
        version: int = await conn.fetchval(_BUMP_STATE, source, len(records))
        await conn.execute("SELECT pg_notify($1, $2)", CATALOG_CHANGED_CHANNEL, str(version))
    return version


async def catalog_version(conn: asyncpg.Connection) -> int | None:
    """The current catalog version, or None when no catalog has been loaded yet."""
    version: int | None = await conn.fetchval("SELECT version FROM catalog_state")
    return version


async def track_count(conn: asyncpg.Connection) -> int:
    """Number of tracks in the catalog."""
    count: int = await conn.fetchval("SELECT count(*) FROM tracks")
    return count


async def load_tracks(conn: asyncpg.Connection) -> list[Track]:
    """The whole catalog, ordered by track id."""
    rows = await conn.fetch(_SELECT_TRACKS)
    return [
        Track(
            track_id=track_id,
            title=title,
            artists=tuple(artists),
            album=album,
            genres=tuple(genres),
            valence=valence,
            energy=energy,
            danceability=danceability,
            acousticness=acousticness,
            tempo=tempo,
            popularity=popularity,
            release_year=release_year,
            duration_ms=duration_ms,
        )
        for (
            track_id,
            title,
            artists,
            album,
            genres,
            valence,
            energy,
            danceability,
            acousticness,
            tempo,
            popularity,
            release_year,
            duration_ms,
        ) in rows
    ]
