"""`v5ctl import-catalog` run for real, as a subprocess, against a migrated database."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from v5_shared.catalog import load_tracks, track_count

# The public Spotify tracks dataset's header, with pandas' unnamed index column first.
DATASET_HEADER = [
    "", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
    "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
    "acousticness", "instrumentalness", "liveness", "valence", "tempo", "time_signature",
    "track_genre",
]  # fmt: skip


@pytest.fixture
async def conn(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def dataset_row(index: int, **overrides: object) -> list[str]:
    values: dict[str, object] = {
        "": index,
        "track_id": f"id{index:04d}",
        "artists": "Mara Quill",
        "album_name": "Paper Moon",
        "track_name": f"Song {index}",
        "popularity": 50,
        "duration_ms": 200000,
        "explicit": "False",
        "danceability": 0.5,
        "energy": 0.6,
        "key": 5,
        "loudness": -7.2,
        "mode": 1,
        "speechiness": 0.04,
        "acousticness": 0.3,
        "instrumentalness": 0.0,
        "liveness": 0.1,
        "valence": 0.4,
        "tempo": 120.0,
        "time_signature": 4,
        "track_genre": "pop",
    }
    values.update(overrides)
    return [str(values[column]) for column in DATASET_HEADER]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(DATASET_HEADER)
        writer.writerows(rows)
    return path


def good_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "good.csv",
        [
            dataset_row(0),
            dataset_row(1, tempo=0),  # unknown tempo
            dataset_row(2, track_genre="hip hop"),
            dataset_row(3, track_id="id0000", track_genre="jazz"),  # same track, another genre
        ],
    )


def file_with_bad_rows_3_and_5(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "bad.csv",
        [
            dataset_row(0),  # line 2
            dataset_row(1, energy="loud"),  # line 3
            dataset_row(2),  # line 4
            dataset_row(3, artists="", album_name="", track_name=""),  # line 5
            dataset_row(4),  # line 6
        ],
    )


def v5ctl(db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("DATABASE_URL", None)  # the flag alone must be enough
    return subprocess.run(
        [sys.executable, "-m", "v5_shared.cli", "--database-url", db_dsn, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_a_good_file_is_imported(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    path = good_file(tmp_path)

    done = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress")

    assert done.returncode == 0, done.stderr
    assert "catalog imported: 3 tracks" in done.stdout
    assert "skipped" not in done.stderr
    tracks = await load_tracks(conn)
    assert [(t.track_id, t.genres, t.tempo) for t in tracks] == [
        ("id0000", ("pop", "jazz"), 120.0),
        ("id0001", ("pop",), None),
        ("id0002", ("hip-hop",), 120.0),
    ]
    assert await conn.fetchval("SELECT source FROM catalog_state") == "csv:good.csv"


async def test_a_file_with_bad_rows_is_refused_and_nothing_is_written(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    path = file_with_bad_rows_3_and_5(tmp_path)

    done = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress")

    assert done.returncode == 1
    assert "nothing was written" in done.stderr
    assert "row 3:" in done.stderr and "row 5:" in done.stderr
    assert "row 4" not in done.stderr
    assert "catalog imported" not in done.stdout
    assert await track_count(conn) == 0
    assert await conn.fetchval("SELECT count(*) FROM catalog_state") == 0


async def test_skip_invalid_imports_the_good_rows_and_names_the_skipped_ones(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    path = file_with_bad_rows_3_and_5(tmp_path)

    done = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress", "--skip-invalid")

    assert done.returncode == 0, done.stderr
    assert "skipped 2 invalid rows: 3, 5" in done.stderr
    assert "row 3: energy 'loud' is not a number" in done.stderr
    assert "row 5: artists is empty" in done.stderr
    assert "catalog imported: 3 tracks" in done.stdout
    assert [t.track_id for t in await load_tracks(conn)] == ["id0000", "id0002", "id0004"]


async def test_skip_invalid_lists_the_first_twenty_skipped_rows(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    rows = [dataset_row(0)] + [dataset_row(i, tempo=-1) for i in range(1, 26)]
    path = write_csv(tmp_path / "many_bad.csv", rows)

    done = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress", "--skip-invalid")

    assert done.returncode == 0, done.stderr
    summary = done.stderr.splitlines()[0]
    rows_listed = ", ".join(str(row) for row in range(3, 23))
    assert summary == f"skipped 25 invalid rows: {rows_listed} and 5 more"
    assert "catalog imported: 1 tracks" in done.stdout
    assert await track_count(conn) == 1


async def test_skip_invalid_with_no_valid_row_is_refused(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "all_bad.csv", [dataset_row(0, energy=2), dataset_row(1, tempo=-3)])

    done = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress", "--skip-invalid")

    assert done.returncode == 1
    assert "nothing was written" in done.stderr
    assert "row 2:" in done.stderr and "row 3:" in done.stderr
    assert await track_count(conn) == 0


async def test_the_progress_bar_is_drawn_on_stderr_unless_disabled(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    path = good_file(tmp_path)

    shown = v5ctl(db_dsn, "import-catalog", str(path))
    hidden = v5ctl(db_dsn, "import-catalog", str(path), "--no-progress")

    assert shown.returncode == hidden.returncode == 0, shown.stderr + hidden.stderr
    # tqdm's line: "Reading good.csv: 100%|...| 4/4 [00:00<00:00, ... rows/s]".
    assert "Reading good.csv" in shown.stderr
    assert "100%" in shown.stderr
    assert "4/4" in shown.stderr
    assert "Reading" not in shown.stdout and "%" not in shown.stdout
    assert hidden.stderr == ""
    assert "catalog imported: 3 tracks" in shown.stdout
    assert await track_count(conn) == 3
