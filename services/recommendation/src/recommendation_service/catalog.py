"""The catalog held in memory: numpy arrays for vectorised scoring, plus the lookups that the
catalog endpoints answer from. Pure: built from a list of tracks, no I/O.

Everything the scoring engine needs per track is precomputed here once per catalog version,
so that a recommendation request only does whole-array arithmetic and never walks the
track list in Python.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from v5_shared.catalog.model import Track

# Columns of CatalogIndex.features, in this order.
FEATURE_COLUMNS: tuple[str, ...] = ("valence", "energy", "danceability", "acousticness")
# Cells per axis of the (valence, energy) grid that mood scores are computed on.
MOOD_GRID = 128


@dataclass(frozen=True)
class NamedCount:
    name: str
    tracks: int


@dataclass(frozen=True)
class ScoringLayout:
    """The order in which a request scores the whole catalog: the tracks sorted by genre
    set, then by mood cell, with copies (in that order) of the per-track arrays that
    scoring reads for every track.

    Sorted so, a genre set's tracks are one contiguous block, and a per-set score is added
    to a few slices instead of being looked up for every track; within a block the mood
    cells ascend, which keeps the mood table lookups in cache. Together that roughly halves
    the cost of the whole-catalog passes. Scoring maps the few tracks it handles one by one
    (listed, excluded, candidates, picks) through ``position`` and ``order``."""

    order: npt.NDArray[np.intp]  # position -> track index
    position: npt.NDArray[np.intp]  # track index -> position
    # Genre set s holds positions set_start[s]:set_start[s + 1] (Python ints: slicing).
    set_start: list[int]
    mood_cell: npt.NDArray[np.intp]
    features_unit: npt.NDArray[np.float32]  # column-major, like CatalogIndex.features_unit
    popularity: npt.NDArray[np.float32]
    # 1.0 where popularity <= the median, else 0.0: float32, so that scaling it is one pass.
    popularity_tail: npt.NDArray[np.float32]
    # The positions of CatalogIndex.genre_track_idx (same CSR pointers, same order).
    genre_track_position: npt.NDArray[np.intp]

    @staticmethod
    def of(catalog: CatalogIndex) -> ScoringLayout:
        n = len(catalog.tracks)
        order = np.lexsort((catalog.mood_cell, catalog.genre_set_of))  # stable
        position = np.empty(n, dtype=np.intp)
        position[order] = np.arange(n)
        tail = catalog.popularity <= np.float32(catalog.popularity_median)
        set_sizes = np.bincount(catalog.genre_set_of, minlength=len(catalog.genre_sets))
        layout = ScoringLayout(
            order=order,
            position=position,
            set_start=[0, *itertools.accumulate(set_sizes.tolist())],
            mood_cell=catalog.mood_cell[order],
            features_unit=np.asfortranarray(catalog.features_unit[order]),
            popularity=catalog.popularity[order],
            popularity_tail=tail[order].astype(np.float32),
            genre_track_position=position[catalog.genre_track_idx],
        )
        for array in vars(layout).values():
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        return layout


@dataclass
class CatalogIndex:
    version: int
    tracks: list[Track]
    by_id: dict[str, int] = field(init=False)
    valence: npt.NDArray[np.float32] = field(init=False)
    energy: npt.NDArray[np.float32] = field(init=False)
    popularity: npt.NDArray[np.float32] = field(init=False)
    genres: list[NamedCount] = field(init=False)
    artists: list[NamedCount] = field(init=False)
    artists_by_genre: dict[str, list[NamedCount]] = field(init=False)

    # Scoring arrays (see _build_scoring_arrays). Genres and artists are numbered by their
    # position in ``genres`` and ``artists`` (alphabetical), so ids are stable per version.
    genre_names: list[str] = field(init=False)
    genre_column: dict[str, int] = field(init=False)
    # n_tracks x n_genres multi-hot, float32, column-major (one genre's column is a
    # contiguous slice). Requests do not multiply it: see genre_sets.
    genre_matrix: npt.NDArray[np.float32] = field(init=False)
    genre_count: npt.NDArray[np.float32] = field(init=False)  # genres per track
    # Tracks share few distinct genre sets (a few dozen in the generated catalog; at most
    # one per track in any catalog), so a per-genre score is computed per set and looked up
    # per track with one np.take: cheaper than a product with genre_matrix, and no BLAS
    # call (OpenBLAS threads on these sizes, which on two busy cores made p95 ten times p50).
    genre_sets: npt.NDArray[np.float32] = field(init=False)  # n_sets x n_genres multi-hot
    genre_set_of: npt.NDArray[np.intp] = field(init=False)  # per track, row of genre_sets
    # Genre cosine between every two genre sets (n_sets x n_sets, float32): the genre part
    # of the selection's similarity, looked up rather than recomputed per request.
    set_cosine: npt.NDArray[np.float32] = field(init=False)
    # The genre columns of each set (ascending). With track_artists below, these are what
    # the selection's bookkeeping reads per candidate, as plain Python values: on a pool of
    # a few dozen tracks a numpy call costs more than the work it does.
    set_genres: list[tuple[int, ...]] = field(init=False)
    primary_genre: npt.NDArray[np.int32] = field(init=False)  # -1 when a track has none
    # CSR lists: the tracks of genre g are genre_track_idx[genre_track_ptr[g]:ptr[g + 1]].
    genre_track_ptr: npt.NDArray[np.int64] = field(init=False)
    genre_track_idx: npt.NDArray[np.int32] = field(init=False)
    artist_names: list[str] = field(init=False)
    artist_key: dict[str, int] = field(init=False)  # lower-cased name -> artist id
    artist_by_lower: dict[str, str] = field(init=False)  # lower-cased name -> catalog name
    primary_artist: npt.NDArray[np.int32] = field(init=False)
    # CSR lists over every credited artist (featured ones too).
    artist_track_ptr: npt.NDArray[np.int64] = field(init=False)
    artist_track_idx: npt.NDArray[np.int32] = field(init=False)
    # And by track: the artists credited on track i are track_artist_ids[ptr[i]:ptr[i + 1]].
    track_artist_ptr: npt.NDArray[np.int64] = field(init=False)
    track_artist_ids: npt.NDArray[np.int32] = field(init=False)
    track_artists: list[tuple[int, ...]] = field(init=False)  # the same, as tuples
    # n_tracks x 4 (FEATURE_COLUMNS), float32, column-major (whole columns are what scoring
    # reads).
    features: npt.NDArray[np.float32] = field(init=False)
    # Unit vectors for cosine taste similarity: the features per track, and the genre
    # multi-hot per genre set (so the genre half of taste is a per-set value).
    features_unit: npt.NDArray[np.float32] = field(init=False)  # like features
    genre_sets_unit: npt.NDArray[np.float32] = field(init=False)  # like genre_sets
    # Mood, energy and valence scores depend on (valence, energy) alone, so a request scores
    # the MOOD_GRID x MOOD_GRID cells of the unit square (16k values) and each track looks
    # its cell up: one np.take instead of a dozen passes over the catalog. A cell is 1/128
    # wide: scores move by at most ~0.006, less than the selection's noise (0.02), and far
    # less than any difference in mood a listener could hear.
    # Per track: its cell, valence bin * MOOD_GRID + energy bin (row-major).
    mood_cell: npt.NDArray[np.intp] = field(init=False)
    mood_bin_centres: npt.NDArray[np.float32] = field(init=False)  # the same on both axes
    popularity_median: float = field(init=False)
    popularity_p75: float = field(init=False)
    layout: ScoringLayout = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {track.track_id: i for i, track in enumerate(self.tracks)}
        self.valence = np.array([t.valence for t in self.tracks], dtype=np.float32)
        self.energy = np.array([t.energy for t in self.tracks], dtype=np.float32)
        self.popularity = np.array([t.popularity for t in self.tracks], dtype=np.float32)
        genre_counts: Counter[str] = Counter()
        artist_counts: Counter[str] = Counter()
        artist_genre_counts: dict[str, Counter[str]] = {}
        for track in self.tracks:
            genre_counts.update(set(track.genres))
            for artist in track.artists:
                artist_counts[artist] += 1
                for genre in set(track.genres):
                    artist_genre_counts.setdefault(genre, Counter())[artist] += 1
        self.genres = _sorted_counts(genre_counts)
        self.artists = _sorted_counts(artist_counts)
        self.artists_by_genre = {g: _sorted_counts(c) for g, c in artist_genre_counts.items()}
        self._build_scoring_arrays()

    def _build_scoring_arrays(self) -> None:
        n = len(self.tracks)
        self.genre_names = [g.name for g in self.genres]
        self.genre_column = {name: i for i, name in enumerate(self.genre_names)}
        self.artist_names = [a.name for a in self.artists]
        artist_id = {name: i for i, name in enumerate(self.artist_names)}
        self.artist_key = {}
        for name, i in artist_id.items():
            # Listeners do not type capitals reliably; the first spelling wins on a clash.
            self.artist_key.setdefault(name.lower(), i)
        self.artist_by_lower = {key: self.artist_names[i] for key, i in self.artist_key.items()}

        genre_rows: list[int] = []
        genre_cols: list[int] = []
        artist_rows: list[int] = []
        artist_cols: list[int] = []
        set_ids: dict[tuple[int, ...], int] = {}
        set_of = np.empty(n, dtype=np.intp)
        primary_genre = np.full(n, -1, dtype=np.int32)
        primary_artist = np.full(n, -1, dtype=np.int32)
        track_artists: list[tuple[int, ...]] = []
        columns = self.genre_column
        for i, track in enumerate(self.tracks):
            # dict.fromkeys drops repeated names but keeps the primary one first.
            cols = [columns[g] for g in dict.fromkeys(track.genres)]
            set_of[i] = set_ids.setdefault(tuple(sorted(cols)), len(set_ids))
            if cols:
                primary_genre[i] = cols[0]
                genre_rows.extend([i] * len(cols))
                genre_cols.extend(cols)
            ids = [artist_id[a] for a in dict.fromkeys(track.artists)]
            track_artists.append(tuple(ids))
            if ids:
                primary_artist[i] = ids[0]
                artist_rows.extend([i] * len(ids))
                artist_cols.extend(ids)

        g_rows = np.array(genre_rows, dtype=np.int32)
        g_cols = np.array(genre_cols, dtype=np.int32)
        matrix = np.zeros((n, len(self.genre_names)), dtype=np.float32, order="F")
        matrix[g_rows, g_cols] = 1.0
        self.genre_matrix = matrix
        self.genre_count = np.bincount(g_rows, minlength=n).astype(np.float32)
        self.primary_genre = primary_genre
        sets = np.zeros((len(set_ids), len(self.genre_names)), dtype=np.float32)
        for key, row in set_ids.items():
            sets[row, list(key)] = 1.0
        self.genre_sets = sets
        self.genre_set_of = set_of
        self.set_genres = list(set_ids)  # keys are sorted column tuples, in row order
        self.genre_track_ptr, self.genre_track_idx = _csr(g_rows, g_cols, len(self.genre_names))
        self.primary_artist = primary_artist
        a_rows = np.array(artist_rows, dtype=np.int32)
        a_cols = np.array(artist_cols, dtype=np.int32)
        self.artist_track_ptr, self.artist_track_idx = _csr(a_rows, a_cols, len(self.artist_names))
        # The same pairs by track (they were collected in track order).
        self.track_artist_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(a_rows, minlength=n), out=self.track_artist_ptr[1:])
        self.track_artist_ids = a_cols
        self.track_artists = track_artists

        danceability = np.array([t.danceability for t in self.tracks], dtype=np.float32)
        acousticness = np.array([t.acousticness for t in self.tracks], dtype=np.float32)
        self.features = np.asfortranarray(
            np.column_stack([self.valence, self.energy, danceability, acousticness]),
            dtype=np.float32,
        ).reshape(n, len(FEATURE_COLUMNS), order="F")
        self.features_unit = np.asfortranarray(_unit_rows(self.features))
        self.genre_sets_unit = _unit_rows(self.genre_sets)
        # einsum, not a BLAS product (see scoring._taste).
        self.set_cosine = np.einsum("ik,jk->ij", self.genre_sets_unit, self.genre_sets_unit)
        self.mood_cell = _cell(self.valence) * MOOD_GRID + _cell(self.energy)
        self.mood_bin_centres = ((np.arange(MOOD_GRID) + 0.5) / MOOD_GRID).astype(np.float32)
        if n:
            p50, p75 = np.percentile(self.popularity, [50, 75])
            self.popularity_median, self.popularity_p75 = float(p50), float(p75)
        else:
            self.popularity_median = self.popularity_p75 = 0.0
        self.layout = ScoringLayout.of(self)
        # Shared by every request (and thread): make accidental in-place edits fail loudly.
        for array in (
            self.genre_matrix, self.genre_count, self.genre_sets, self.genre_set_of,
            self.primary_genre, self.genre_track_ptr, self.genre_track_idx, self.set_cosine,
            self.primary_artist, self.artist_track_ptr, self.artist_track_idx,
            self.track_artist_ptr, self.track_artist_ids, self.features, self.features_unit,
            self.genre_sets_unit, self.mood_cell, self.mood_bin_centres,
        ):  # fmt: skip
            array.flags.writeable = False

    def track(self, track_id: str) -> Track | None:
        index = self.by_id.get(track_id)
        return None if index is None else self.tracks[index]

    def genre_tracks(self, genre_id: int) -> npt.NDArray[np.int32]:
        """Indices of the tracks that carry genre ``genre_id`` (ascending)."""
        return self.genre_track_idx[
            self.genre_track_ptr[genre_id] : self.genre_track_ptr[genre_id + 1]
        ]

    def genre_track_positions(self, genre_id: int) -> npt.NDArray[np.intp]:
        """The layout positions of genre_tracks(genre_id), in the same order."""
        return self.layout.genre_track_position[
            self.genre_track_ptr[genre_id] : self.genre_track_ptr[genre_id + 1]
        ]

    def artist_tracks(self, artist_id: int) -> npt.NDArray[np.int32]:
        """Indices of the tracks that credit artist ``artist_id`` (ascending)."""
        return self.artist_track_idx[
            self.artist_track_ptr[artist_id] : self.artist_track_ptr[artist_id + 1]
        ]

    def artist_page(
        self, *, limit: int, offset: int, genre: str | None
    ) -> tuple[list[NamedCount], int]:
        pool = self.artists if genre is None else self.artists_by_genre.get(genre, [])
        return pool[offset : offset + limit], len(pool)

    def popularity_summary(self) -> dict[str, float]:
        return dict(self._popularity_summary)

    @cached_property
    def _popularity_summary(self) -> dict[str, float]:
        # The catalog is immutable once built: the percentiles are computed once.
        if not self.tracks:
            return {"mean": 0.0, "p50": 0.0, "p90": 0.0}
        p50, p90 = np.percentile(self.popularity, [50, 90])
        return {
            "mean": round(float(self.popularity.mean()), 6),
            "p50": round(float(p50), 6),
            "p90": round(float(p90), 6),
        }


def _unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    # An all-zero row (no genres, silent features) stays zero: similar to nothing.
    return (matrix / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)


def _cell(values: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    return np.clip((values * MOOD_GRID).astype(np.intp), 0, MOOD_GRID - 1)


def _csr(
    rows: npt.NDArray[np.int32], cols: npt.NDArray[np.int32], n_cols: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Group (row, col) pairs by column: the rows of column c are idx[ptr[c]:ptr[c + 1]]."""
    order = np.argsort(cols, kind="stable")  # stable keeps each column's rows ascending
    ptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=ptr[1:])
    return ptr, rows[order].astype(np.int32)


def _sorted_counts(counts: Counter[str]) -> list[NamedCount]:
    # Alphabetical (case-insensitive) so that pages are stable across reloads.
    return [NamedCount(name, n) for name, n in sorted(counts.items(), key=lambda kv: kv[0].lower())]


def describe_track(track: Track) -> str:
    """A short human description, e.g. 'upbeat jazz by Mara Quill'."""
    if track.energy >= 0.7:
        feel = "energetic"
    elif track.energy <= 0.3:
        feel = "calm"
    elif track.valence >= 0.65:
        feel = "upbeat"
    elif track.valence <= 0.35:
        feel = "melancholy"
    else:
        feel = "easy-going"
    genre = track.genres[0] if track.genres else "music"
    return f"{feel} {genre} by {track.artist}"
