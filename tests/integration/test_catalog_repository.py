"""Catalog storage against a real PostgreSQL with the migrations applied (``db_dsn``)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from v5_shared.catalog import (
    CatalogValidationError,
    Track,
    catalog_version,
    generate_catalog,
    import_catalog_csv,
    load_tracks,
    replace_catalog,
    seed_default_catalog,
    track_count,
)

CSV_HEADER = [
    "", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
    "explicit", "danceability", "energy", "key", "loudness", "acousticness", "valence",
    "tempo", "track_genre",
]  # fmt: skip

HAND_MADE_TRACKS = [
    Track(
        track_id="hand-1",
        title="Café Ünïcode — Ballad",
        artists=("Mara Quill", "Oren Voss", "Tobias Kincaid"),
        album=None,
        genres=("r&b", "soul"),
        valence=0.7,
        energy=0.0,
        danceability=1.0,
        acousticness=0.123456,
        tempo=87.917,
        popularity=0.73,
        release_year=None,
        duration_ms=1,
    ),
    Track(
        track_id="hand-2",
        title="Heavy Water",
        artists=("Velvet Harbor",),
        album="The Paper Lanterns",
        genres=("heavy metal",),
        valence=0.0,
        energy=1.0,
        danceability=0.5,
        acousticness=1.0,
        tempo=203.5,
        popularity=0.0,
        release_year=2026,
        duration_ms=7 * 60_000,
    ),
    Track(
        track_id="hand-3",
        title="Rain, Recorded",
        artists=("Oren Voss",),
        album=None,
        genres=("ambient",),
        valence=0.2,
        energy=0.01,
        danceability=0.0,
        acousticness=0.9,
        tempo=None,  # unknown, as the public dataset has for silent tracks
        popularity=0.12,
        release_year=None,
        duration_ms=90_000,
    ),
]


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def small_catalog(seed: int) -> list[Track]:
    return generate_catalog(seed=seed, n_tracks=300, n_artists=40)


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    defaults: dict[str, object] = {
        "explicit": "False",
        "key": 1,
        "loudness": -6.0,
        "popularity": 50,
        "duration_ms": 180000,
        "danceability": 0.5,
        "energy": 0.5,
        "acousticness": 0.5,
        "valence": 0.5,
        "tempo": 100.0,
        "album_name": "An Album",
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for index, row in enumerate(rows):
            values = {**defaults, "": index, **row}
            writer.writerow([values[column] for column in CSV_HEADER])
    return path


async def state_row(conn: asyncpg.Connection) -> asyncpg.Record:
    rows = await conn.fetch("SELECT version, source, track_count, updated_at FROM catalog_state")
    assert len(rows) == 1, "catalog_state must hold exactly one row"
    return rows[0]


async def clear_catalog(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM tracks")
    await conn.execute("DELETE FROM catalog_state")


async def test_replace_then_load_round_trips(conn: asyncpg.Connection) -> None:
    # Ids that linguistic collations order differently from code points.
    odd_ids = [replace(HAND_MADE_TRACKS[1], track_id=i) for i in ("B", "a c", "a-c", "ab", "Z9")]
    tracks = small_catalog(seed=21) + HAND_MADE_TRACKS + odd_ids
    version = await replace_catalog(conn, tracks, "test:round-trip")

    assert await load_tracks(conn) == sorted(tracks, key=lambda t: t.track_id)
    assert await track_count(conn) == len(tracks)
    assert await catalog_version(conn) == version
    state = await state_row(conn)
    assert state["source"] == "test:round-trip"
    assert state["track_count"] == len(tracks)


async def test_unknown_tempo_is_stored_as_null(conn: asyncpg.Connection) -> None:
    await replace_catalog(conn, HAND_MADE_TRACKS, "test:null-tempo")
    tempos = dict(await conn.fetch("SELECT track_id, tempo FROM tracks"))
    assert tempos == {"hand-1": pytest.approx(87.917), "hand-2": 203.5, "hand-3": None}
    assert [t.tempo for t in await load_tracks(conn)] == [87.917, 203.5, None]


@pytest.mark.parametrize("tempo", [0.0, -1.0, float("inf"), float("nan")])
async def test_the_table_still_rejects_a_tempo_that_is_not_positive_and_finite(
    conn: asyncpg.Connection, tempo: float
) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await replace_catalog(conn, [replace(HAND_MADE_TRACKS[0], tempo=tempo)], "test:bad")


async def test_version_increments_on_every_replace(conn: asyncpg.Connection) -> None:
    before = await catalog_version(conn) or 0
    first = await replace_catalog(conn, small_catalog(seed=1), "test:first")
    first_state = await state_row(conn)
    second_tracks = small_catalog(seed=2)[:120]
    second = await replace_catalog(conn, second_tracks, "test:second")

    assert (first, second) == (before + 1, before + 2)
    state = await state_row(conn)
    assert state["version"] == second
    assert state["source"] == "test:second"
    assert state["track_count"] == 120
    assert state["updated_at"].tzinfo is not None
    assert state["updated_at"] >= first_state["updated_at"]
    assert await load_tracks(conn) == sorted(second_tracks, key=lambda t: t.track_id)


async def test_replace_notifies_listeners_with_the_new_version(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    listener = await asyncpg.connect(db_dsn)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("v5_catalog_changed", lambda *args: received.put_nowait(args[3]))
    try:
        version = await replace_catalog(conn, small_catalog(seed=3), "test:notify")
        assert await asyncio.wait_for(received.get(), timeout=5) == str(version)
    finally:
        await listener.close()


async def test_a_rejected_replacement_changes_nothing(conn: asyncpg.Connection) -> None:
    tracks = small_catalog(seed=4)
    version = await replace_catalog(conn, tracks, "test:kept")
    # Passes Python (Track does not validate) but violates the table's CHECK constraint,
    # after the old rows were already deleted inside the transaction.
    broken = [*small_catalog(seed=5), replace(HAND_MADE_TRACKS[1], energy=1.5)]

    with pytest.raises(asyncpg.CheckViolationError):
        await replace_catalog(conn, broken, "test:broken")

    assert await catalog_version(conn) == version
    assert (await state_row(conn))["source"] == "test:kept"
    assert await load_tracks(conn) == sorted(tracks, key=lambda t: t.track_id)


async def test_replace_rejects_empty_and_duplicate_catalogs(conn: asyncpg.Connection) -> None:
    version = await replace_catalog(conn, HAND_MADE_TRACKS, "test:kept")
    with pytest.raises(ValueError, match="empty"):
        await replace_catalog(conn, [], "test:empty")
    with pytest.raises(ValueError, match="hand-1"):
        await replace_catalog(conn, [*HAND_MADE_TRACKS, HAND_MADE_TRACKS[0]], "test:dup")
    assert await catalog_version(conn) == version
    assert await track_count(conn) == len(HAND_MADE_TRACKS)


async def test_import_csv_replaces_the_catalog(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    before = await catalog_version(conn) or 0
    path = write_csv(
        tmp_path / "my_tracks.csv",
        [
            {"track_id": "a", "artists": "Gen Hoshino", "track_name": "Comedy",
             "track_genre": "j-pop", "popularity": 73},
            {"track_id": "b", "artists": "Ben Woodward;Kina Grannis", "track_name": "Ghost",
             "track_genre": "hip hop"},
            {"track_id": "a", "artists": "Gen Hoshino", "track_name": "Comedy",
             "track_genre": "acoustic"},
        ],
    )  # fmt: skip

    result = await import_catalog_csv(db_dsn, str(path), progress=False)
    assert (result.tracks, result.skipped, result.version) == (2, [], before + 1)

    assert await catalog_version(conn) == before + 1
    state = await state_row(conn)
    assert state["source"] == "csv:my_tracks.csv"
    assert state["track_count"] == 2
    first, second = await load_tracks(conn)
    assert (first.track_id, first.genres, first.popularity) == ("a", ("j-pop", "acoustic"), 0.73)
    assert (second.artists, second.genres) == (("Ben Woodward", "Kina Grannis"), ("hip-hop",))


async def test_a_failed_import_leaves_the_catalog_and_version_untouched(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    tracks = small_catalog(seed=6)
    version = await replace_catalog(conn, tracks, "test:kept")
    state_before = await state_row(conn)
    path = write_csv(
        tmp_path / "bad.csv",
        [
            {"track_id": "a", "artists": "X Y", "track_name": "Fine", "track_genre": "pop"},
            {"track_id": "b", "artists": "X Y", "track_name": "Bad", "track_genre": "pop",
             "energy": "very"},
            {"track_id": "c", "artists": "X Y", "track_name": "Fine", "track_genre": "pop"},
            {"track_id": "", "artists": "X Y", "track_name": "Bad", "track_genre": "pop"},
        ],
    )  # fmt: skip

    with pytest.raises(CatalogValidationError) as caught:
        await import_catalog_csv(db_dsn, str(path), progress=False)

    assert [row for row, _ in caught.value.errors] == [3, 5]
    assert await catalog_version(conn) == version
    assert await state_row(conn) == state_before
    assert await load_tracks(conn) == sorted(tracks, key=lambda t: t.track_id)


async def test_import_with_skip_invalid_writes_the_valid_rows(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    before = await catalog_version(conn) or 0
    path = write_csv(
        tmp_path / "dataset.csv",
        [
            {"track_id": "a", "artists": "X Y", "track_name": "Fine", "track_genre": "pop"},
            {"track_id": "b", "artists": "X Y", "track_name": "Silent", "track_genre": "pop",
             "tempo": 0},
            {"track_id": "c", "artists": "", "track_name": "", "album_name": "",
             "track_genre": "pop"},
        ],
    )  # fmt: skip

    with pytest.raises(CatalogValidationError):
        await import_catalog_csv(db_dsn, str(path), progress=False)
    assert await catalog_version(conn) == (before or None)

    result = await import_catalog_csv(db_dsn, str(path), progress=False, skip_invalid=True)

    assert result.tracks == 2
    assert [row for row, _ in result.skipped] == [4]
    assert result.version == before + 1 == await catalog_version(conn)
    assert (await state_row(conn))["track_count"] == 2
    assert [(t.track_id, t.tempo) for t in await load_tracks(conn)] == [("a", 100.0), ("b", None)]


async def test_seeding_skips_an_existing_catalog_unless_told_otherwise(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    tracks = small_catalog(seed=7)
    version = await replace_catalog(conn, tracks, "test:existing")

    assert await seed_default_catalog(db_dsn) == 0
    assert await seed_default_catalog(db_dsn, if_empty=True) == 0
    assert await catalog_version(conn) == version
    assert await load_tracks(conn) == sorted(tracks, key=lambda t: t.track_id)

    written = await seed_default_catalog(db_dsn, if_empty=False)
    assert written == len(generate_catalog()) >= 20_000
    assert await catalog_version(conn) == version + 1
    assert await track_count(conn) == written


async def test_concurrent_seeding_of_an_empty_catalog_writes_it_once(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    await clear_catalog(conn)
    assert await catalog_version(conn) is None
    assert await load_tracks(conn) == []

    results = await asyncio.gather(seed_default_catalog(db_dsn), seed_default_catalog(db_dsn))

    assert sorted(results) == [0, len(generate_catalog())]
    state = await state_row(conn)
    assert state["version"] == 1
    assert state["source"] == "generator:seed=5"
    assert state["updated_at"] <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert await track_count(conn) == max(results)
