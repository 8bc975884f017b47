"""Reading a user's own catalog from CSV in the format of the public Spotify tracks dataset.

The whole file is validated before anything is returned: by default an import either
yields a complete catalog or a ``CatalogValidationError`` listing every bad row, so that
the caller never replaces a working catalog with half a file. With ``skip_invalid`` the
bad rows are left out instead and reported alongside the tracks.

A tempo of 0 or an empty tempo cell means "unknown" (the dataset has such rows for
silent or unmeasured tracks) and gives ``Track.tempo = None``.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final, NamedTuple

from tqdm import tqdm

from v5_shared.catalog.genres import canonical_genre
from v5_shared.catalog.model import Track

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

# A parsed row: the values of a Track in field order, built into a Track only once per
# track id (the dataset repeats tracks, and merged genres would mean building twice).
_TrackValues = tuple[
    str,
    str,
    tuple[str, ...],
    str | None,
    tuple[str, ...],
    float,
    float,
    float,
    float,
    float | None,
    float,
    int | None,
    int,
]
_GENRES: Final = 4  # position of the genres in _TrackValues, as in Track

REQUIRED_COLUMNS: tuple[str, ...] = (
    "track_id",
    "artists",
    "track_name",
    "popularity",
    "duration_ms",
    "danceability",
    "energy",
    "valence",
    "tempo",
    "acousticness",
    "track_genre",
)
# Read when present; a catalog without albums or years is still a usable catalog.
ALBUM_COLUMN = "album_name"
YEAR_COLUMNS: tuple[str, ...] = ("release_year", "year")

# The dataset separates several artists (and we allow several genres) within one cell.
LIST_SEPARATOR = ";"
MAX_TEMPO_BPM = 1000.0
MAX_DURATION_MS = 2**31 - 1  # the limit of the int column that stores it
YEAR_RANGE = (1800, 2100)
_PROGRESS_STEP = 1000


class CatalogValidationError(ValueError):
    """A catalog file that cannot be imported, with every problem found in it.

    ``errors`` lists ``(row_number, message)`` pairs, one per bad row, where the row
    number is the 1-based line in the file and the header is line 1.
    """

    MAX_LISTED = 20

    def __init__(self, errors: Sequence[tuple[int, str]], source: str | None = None) -> None:
        self.errors: list[tuple[int, str]] = list(errors)
        self.source = source
        super().__init__(self._describe())

    def _describe(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        count = len(self.errors)
        listed = "; ".join(
            f"row {row}: {message}" for row, message in self.errors[: self.MAX_LISTED]
        )
        more = f"; and {count - self.MAX_LISTED} more" if count > self.MAX_LISTED else ""
        noun = "row" if count == 1 else "rows"
        return f"{prefix}{count} invalid {noun}: {listed}{more}"


class CatalogParseReport(NamedTuple):
    """What a parse produced: the tracks, and the ``(row_number, message)`` pairs of the
    rows left out (always empty unless ``skip_invalid`` was given)."""

    tracks: list[Track]
    skipped: list[tuple[int, str]]


def parse_catalog_csv(
    path: str | os.PathLike[str], *, progress: bool = True, skip_invalid: bool = False
) -> list[Track]:
    """Parse and validate a catalog CSV; tracks come back in first-seen order.

    Rows sharing a ``track_id`` (the dataset lists a track once per genre) become one
    track carrying the union of their genres; the first row's other values are kept.
    Raises ``CatalogValidationError`` naming every bad row, or the missing header columns.
    With ``skip_invalid`` bad rows are left out silently; use ``parse_catalog_csv_report``
    to learn which.
    """
    return parse_catalog_csv_report(path, progress=progress, skip_invalid=skip_invalid).tracks


def parse_catalog_csv_report(
    path: str | os.PathLike[str], *, progress: bool = True, skip_invalid: bool = False
) -> CatalogParseReport:
    """Like ``parse_catalog_csv``, also returning the rows that were skipped.

    Without ``skip_invalid`` any bad row raises ``CatalogValidationError`` (so
    ``skipped`` is empty). With it, bad rows are left out and listed in ``skipped``; the
    header is still checked strictly, and a file left with no valid track, or that
    becomes unreadable part-way (bad encoding: the rest of the file would be lost
    silently), still raises.
    """
    source = os.path.basename(os.fspath(path))
    expected_rows = max(_count_lines(path) - 1, 0)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CatalogValidationError([(1, f"unreadable header: {exc}")], source) from exc
        if header is None:
            raise CatalogValidationError([(1, "the file is empty; expected a header row")], source)
        columns = _ColumnPositions.from_header(header, source)

        errors: list[tuple[int, str]] = []
        fatal: list[tuple[int, str]] = []
        first_seen: dict[str, _TrackValues] = {}
        merged_genres: dict[str, list[str]] = {}
        with tqdm(
            total=expected_rows,
            desc=f"Reading {source}",
            unit=" rows",
            file=sys.stderr,
            disable=not progress,
        ) as bar:
            rows_read = 0
            for row_number, row in _numbered_rows(reader, fatal):
                rows_read += 1
                if rows_read % _PROGRESS_STEP == 0:
                    bar.update(_PROGRESS_STEP)  # per row, the bar would cost a fifth of the time
                if not row:
                    continue  # a blank line is not a track
                values = _parse_clean_row(row, columns)
                if values is None:
                    # Only rows that failed the fast path pay for the detailed checks.
                    values, problems = _parse_row_with_problems(row, columns)
                    if values is None:
                        errors.append((row_number, "; ".join(problems)))
                        continue
                track_id = values[0]
                known = first_seen.get(track_id)
                if known is None:
                    first_seen[track_id] = values
                else:
                    merged = merged_genres.setdefault(track_id, list(known[_GENRES]))
                    merged.extend(g for g in values[_GENRES] if g not in merged)
            bar.update(rows_read % _PROGRESS_STEP)
            # Rows with quoted line breaks span several lines: finish the bar honestly.
            bar.total = bar.n
            bar.refresh()

    if fatal or (errors and not skip_invalid):
        raise CatalogValidationError(errors + fatal, source)
    if not first_seen:
        if errors:
            raise CatalogValidationError(errors, source)  # every row is invalid
        raise CatalogValidationError([(1, "the file has a header but no tracks")], source)
    tracks = [
        Track(*values)
        if track_id not in merged_genres
        else _with_genres(values, tuple(merged_genres[track_id]))
        for track_id, values in first_seen.items()
    ]
    return CatalogParseReport(tracks, errors)


def _with_genres(values: _TrackValues, genres: tuple[str, ...]) -> Track:
    (
        track_id,
        title,
        artists,
        album,
        _,
        valence,
        energy,
        danceability,
        acousticness,
        tempo,
        popularity,
        release_year,
        duration_ms,
    ) = values
    return Track(
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
    )


@dataclass(frozen=True, slots=True)
class _ColumnPositions:
    width: int
    track_id: int
    artists: int
    title: int
    popularity: int
    duration_ms: int
    tempo: int
    genre: int
    danceability: int
    energy: int
    valence: int
    acousticness: int
    album: int | None
    year: int | None
    year_name: str

    @classmethod
    def from_header(cls, header: list[str], source: str) -> _ColumnPositions:
        positions: dict[str, int] = {}
        for index, name in enumerate(header):
            # The first occurrence wins; a leading unnamed index column is just ignored.
            positions.setdefault(name.strip().lower(), index)
        missing = [name for name in REQUIRED_COLUMNS if name not in positions]
        if missing:
            raise CatalogValidationError(
                [(1, f"missing required columns: {', '.join(missing)}")], source
            )
        year_name = next((name for name in YEAR_COLUMNS if name in positions), YEAR_COLUMNS[0])
        return cls(
            width=len(header),
            track_id=positions["track_id"],
            artists=positions["artists"],
            title=positions["track_name"],
            popularity=positions["popularity"],
            duration_ms=positions["duration_ms"],
            tempo=positions["tempo"],
            genre=positions["track_genre"],
            danceability=positions["danceability"],
            energy=positions["energy"],
            valence=positions["valence"],
            acousticness=positions["acousticness"],
            album=positions.get(ALBUM_COLUMN),
            year=positions.get(year_name),
            year_name=year_name,
        )


def _numbered_rows(
    reader: CsvReader, errors: list[tuple[int, str]]
) -> Iterator[tuple[int, list[str]]]:
    """Yield each record with the file line it starts on (``csv`` reports where it ends).

    A broken quote or a bad encoding leaves the rest of the file unreadable: that is
    recorded in ``errors`` and ends the rows, keeping the problems found before it.
    """
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.append((start, f"unreadable CSV from here on: {exc}"))
            return
        yield start, row


def _parse_clean_row(row: list[str], columns: _ColumnPositions) -> _TrackValues | None:
    """Parse a row with nothing wrong in it, or return None to ask for the careful path.

    Every value it accepts is accepted by ``_parse_row_with_problems`` too (the same
    parsing and bounds; NaN and infinities fail the comparisons), so the two agree.
    """
    if len(row) != columns.width:
        return None
    try:
        danceability = float(row[columns.danceability])
        energy = float(row[columns.energy])
        valence = float(row[columns.valence])
        acousticness = float(row[columns.acousticness])
        popularity = float(row[columns.popularity])
        tempo = float(row[columns.tempo])  # an empty cell (unknown) takes the careful path
        duration = float(row[columns.duration_ms])
        year_text = row[columns.year].strip() if columns.year is not None else ""
        year = int(year_text) if year_text else None
    except ValueError:
        return None
    if not (
        0.0 <= danceability <= 1.0
        and 0.0 <= energy <= 1.0
        and 0.0 <= valence <= 1.0
        and 0.0 <= acousticness <= 1.0
        and 0.0 <= popularity <= 100.0
        and 0.0 <= tempo <= MAX_TEMPO_BPM  # 0 is an unknown tempo
        and 1.0 <= duration <= MAX_DURATION_MS
        and (year is None or YEAR_RANGE[0] <= year <= YEAR_RANGE[1])
    ):
        return None
    track_id = row[columns.track_id].strip()
    title = row[columns.title].strip()
    artists = _split_list(row[columns.artists])
    genres = _genres(row[columns.genre])
    if not (track_id and title and artists and genres):
        return None
    album = row[columns.album].strip() if columns.album is not None else ""
    return (
        track_id,
        title,
        artists,
        album or None,
        genres,
        valence,
        energy,
        danceability,
        acousticness,
        tempo or None,
        popularity / 100.0,
        year,
        round(duration),
    )


def _parse_row_with_problems(
    row: list[str], columns: _ColumnPositions
) -> tuple[_TrackValues | None, list[str]]:
    """Parse one row, checking every value; returns the track or everything wrong with it."""
    if len(row) != columns.width:
        return None, [f"has {len(row)} fields, the header has {columns.width}"]

    problems: list[str] = []
    track_id = row[columns.track_id].strip()
    if not track_id:
        problems.append("track_id is empty")
    artists = _split_list(row[columns.artists])
    if not artists:
        problems.append("artists is empty")
    title = row[columns.title].strip()
    if not title:
        problems.append("track_name is empty")
    genres = _genres(row[columns.genre])
    if not genres:
        problems.append("track_genre is empty")

    danceability = _number(row[columns.danceability], "danceability", 0.0, 1.0, problems)
    energy = _number(row[columns.energy], "energy", 0.0, 1.0, problems)
    valence = _number(row[columns.valence], "valence", 0.0, 1.0, problems)
    acousticness = _number(row[columns.acousticness], "acousticness", 0.0, 1.0, problems)
    popularity = _number(row[columns.popularity], "popularity", 0.0, 100.0, problems)
    tempo = _tempo(row[columns.tempo], problems)
    duration = _number(row[columns.duration_ms], "duration_ms", 1.0, MAX_DURATION_MS, problems)
    year = (
        _year(row[columns.year], columns.year_name, problems) if columns.year is not None else None
    )
    album = row[columns.album].strip() if columns.album is not None else ""

    if problems:
        return None, problems
    values = (
        track_id,
        title,
        artists,
        album or None,
        genres,
        valence,
        energy,
        danceability,
        acousticness,
        tempo,
        popularity / 100.0,
        year,
        round(duration),
    )
    return values, problems


def _split_list(cell: str) -> tuple[str, ...]:
    if LIST_SEPARATOR not in cell:
        single = cell.strip()
        return (single,) if single else ()
    return tuple(part for part in (p.strip() for p in cell.split(LIST_SEPARATOR)) if part)


# Genre cells repeat across a file (a dataset has a hundred or so distinct values).
@lru_cache(maxsize=4096)
def _genres(cell: str) -> tuple[str, ...]:
    genres: list[str] = []
    for name in _split_list(cell):
        genre = canonical_genre(name)
        if genre not in genres:
            genres.append(genre)
    return tuple(genres)


def _number(
    text: str,
    name: str,
    low: float,
    high: float,
    problems: list[str],
) -> float:
    """Parse a number within [low, high]; on failure record why and return 0."""
    stripped = text.strip()
    if not stripped:
        problems.append(f"{name} is empty")
        return 0.0
    try:
        value = float(stripped)
    except ValueError:
        problems.append(f"{name} {stripped!r} is not a number")
        return 0.0
    if not math.isfinite(value):
        problems.append(f"{name} {stripped!r} is not a finite number")
        return 0.0
    if value < low or value > high:
        problems.append(f"{name} {stripped!r} is outside [{_bound(low)}, {_bound(high)}]")
        return 0.0
    return value


def _tempo(text: str, problems: list[str]) -> float | None:
    """A tempo in (0, MAX_TEMPO_BPM], or None for an unknown one (an empty cell or 0)."""
    if not text.strip():
        return None
    before = len(problems)
    value = _number(text, "tempo", 0.0, MAX_TEMPO_BPM, problems)
    if len(problems) > before:
        return None
    return value or None


def _bound(value: float) -> str:
    # float(): an int passes for a float in type hints but has no is_integer() before 3.12.
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _year(text: str, name: str, problems: list[str]) -> int | None:
    stripped = text.strip()
    if not stripped:
        return None  # an unknown year is allowed
    try:
        value = float(stripped)
    except ValueError:
        problems.append(f"{name} {stripped!r} is not a number")
        return None
    if not value.is_integer() or not YEAR_RANGE[0] <= value <= YEAR_RANGE[1]:
        problems.append(f"{name} {stripped!r} is not a year in {YEAR_RANGE[0]}..{YEAR_RANGE[1]}")
        return None
    return int(value)


def _count_lines(path: str | os.PathLike[str]) -> int:
    """Count lines cheaply in binary, to give the progress bar a total."""
    count = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
