"""The recommendation scoring engine: plain numpy, no I/O.

Given the in-memory catalog, what is known about the listener and the nine weights (already
tilted by the bandit arm), ``recommend`` returns the ranked tracks with scores and reasons.

How a list is made:

1. Relevance over the whole catalog, vectorised: a weighted mean of feature scores in
   [0, 1] (genre, artist, mood, energy, valence, taste, popularity, novelty). Features the
   request says nothing about (no mood known, nothing liked) are left out of the mean
   rather than scored as 0 or 1, so they neither help nor hurt any track. Requested
   artists get a boost on top; in a cold start the unpopular half is pushed down.
2. A candidate pool (4 per returned track, at least 40): the best overall plus the best
   of each quota group (requested genres, the latest turns' genres) and, for comfort, of
   each stretch of the valence path, with at most a few tracks per artist, so that every
   constraint below can be met from the pool.
3. Greedy selection over the pool (one step per returned track): maximal marginal
   relevance against what is already chosen (same artist, genre, mood; strength from the
   diversity weight), genre quotas, an artist cap and, in a cold start, a genre cap.
4. Order and final scores: by the selection value, highest first; with comfort, by the
   iso-principle path (valence rising), scores made strictly decreasing along it.
5. Reasons from what drove each track's score.

Only stage 1 touches every track; it runs as a handful of whole-array numpy passes.
Stages 3 and 5 loop over the returned tracks only.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from v5_shared.catalog.genres import canonical_genre
from v5_shared.domain.weights import DEFAULT_WEIGHTS, WEIGHT_NAMES

from .catalog import MOOD_GRID, CatalogIndex, ScoringLayout, describe_track

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
Indices = npt.NDArray[np.intp]


# Uniform noise added to the candidates' relevance: small next to real preference gaps,
# enough that asking twice does not return exactly the same list. Drawn for the pool only
# (a few hundred numbers) because drawing it for 100k tracks would cost more than all the
# scoring; tracks outside the pool could not have reached the list by noise alone anyway.
NOISE_AMPLITUDE = 0.02
# Added to tracks by an artist named in the request: above any score the weighted mean
# (at most 1) can separate, so they lead the list whatever the weights.
REQUEST_ARTIST_BOOST = 0.5
# Cold start: nothing is known but the catalog, so lean on what most people like.
COLD_START_POPULARITY_FLOOR = 0.8
COLD_START_TAIL_PENALTY = 0.5
COLD_START_GENRE_SHARE = 0.4
# Mood: score falls linearly to 0 at this distance in the (valence, energy) square.
MOOD_RADIUS = 0.6
# Comfort (iso principle): start a little above the listener's valence, rise by this much,
# never past the ceiling (lifting, not euphoric).
COMFORT_START_STEP = 0.05
COMFORT_RISE = 0.4
COMFORT_CEILING = 0.85
# Weight of the path term |valence - step target| in the selection; strong, because the
# path is the point of comfort, and a floor on the valence weights so it holds whatever the
# arm's mood weights are.
COMFORT_PATH_STRENGTH = 1.0
COMFORT_MIN_VALENCE_WEIGHT = 0.6
COMFORT_STRATA = 5
# The path's candidates per stretch come from the top COMFORT_DEPTH x pool size tracks.
COMFORT_DEPTH = 8
# MMR: penalty at diversity 1 for a candidate identical to one already chosen. The parts of
# the similarity: same primary artist, genre cosine, closeness in (valence, energy).
MMR_MAX_PENALTY = 0.5
SIM_ARTIST, SIM_GENRE, SIM_MOOD = 0.5, 0.3, 0.2
# Pool: at least this many candidates, and this many per returned track.
POOL_MIN = 40
POOL_PER_SLOT = 4
# The pool is spread over artists from the top POOL_DEPTH x pool size tracks.
POOL_DEPTH = 4
# _top_k samples about this many values per wanted one to find its threshold.
TOP_K_SAMPLE_FACTOR = 8
# Taste: share of the genre cosine in the taste score (the rest is the sound cosine).
TASTE_GENRE_SHARE = 0.5
REQUEST_GENRE_SHARE = 0.8
LATEST_GENRE_SHARE = 0.5
MAX_REASONS = 2


@dataclass(frozen=True)
class ListenerContext:
    # accumulated, recency-decayed genre weights from the conversation (any scale >= 0)
    session_genres: Mapping[str, float] = field(default_factory=dict)
    session_artists: Mapping[str, float] = field(default_factory=dict)
    # genres named in the session's latest turns (the "clear preference")
    latest_genres: Sequence[str] = ()
    # request context.genres (explicit, strongest)
    request_genres: Sequence[str] = ()
    request_artists: Sequence[str] = ()
    mood_valence: float | None = None  # latest mood valence in [-1, 1]; None = unknown
    mood_arousal: float | None = None  # [-1, 1]
    target_energy: float | None = None  # [0, 1] from an activity; overrides arousal
    liked_track_ids: Sequence[str] = ()  # tracks the user liked or saved (taste)
    recent_track_ids: Sequence[str] = ()  # recently recommended or heard (novelty)
    exclude_track_ids: Sequence[str] = ()  # never returned
    comfort: bool = False  # apply the iso-principle comfort ordering
    cold_start: bool = False  # no conversation context and no feedback


@dataclass(frozen=True)
class ScoredTrack:
    index: int  # into CatalogIndex.tracks
    score: float  # rounded to 6 decimals
    reasons: list[str]  # at least one human-readable reason


@dataclass(frozen=True)
class _ComfortPath:
    start: float  # valence targets on the track scale [0, 1]
    end: float

    def target(self, step: int, limit: int) -> float:
        if limit <= 1:
            return self.start
        return self.start + (self.end - self.start) * step / (limit - 1)


@dataclass
class _Request:
    """Everything derived from the listener once, shared by the scoring stages."""

    weights: dict[str, float]
    genre_pref: F32 | None  # per genre column, in [0, 1]; None when no genre is known
    requested_genres: list[int]
    latest_genres: list[int]
    artist_pref: dict[int, float]  # artist id -> [0, 1]
    requested_artists: set[int]
    target_valence: float | None
    target_energy: float | None
    energy_from_activity: bool
    comfort: _ComfortPath | None
    liked: Indices
    recent: Indices
    excluded: Indices
    cold_start: bool
    liked_set: frozenset[int] = frozenset()
    recent_set: frozenset[int] = frozenset()
    # Filled by _relevance: per active feature its weight and its score at a track, kept so
    # that reasons can say what drove a track without recomputing anything.
    active: dict[str, tuple[float, Callable[[int], float]]] = field(default_factory=dict)
    artist_score: F32 | None = None


def recommend(
    catalog: CatalogIndex,
    listener: ListenerContext,
    weights: Mapping[str, float],
    *,
    limit: int,
    rng: np.random.Generator,
) -> list[ScoredTrack]:
    """Rank the catalog for ``listener``; see the module docstring for the stages."""
    n = len(catalog.tracks)
    if limit <= 0 or n == 0:
        return []
    request = _prepare(catalog, listener, weights)
    relevance = _relevance(catalog, request)
    relevance[catalog.layout.position[request.excluded]] = -np.inf
    pool = _pool(catalog, request, relevance, limit)
    if pool.size == 0:
        return []
    picks, values = _select(catalog, request, relevance, pool, limit, rng)
    order, scores = _order_and_score(catalog, request, picks, values)
    return [
        ScoredTrack(index=index, score=score, reasons=reasons)
        for index, score, reasons in zip(
            order, scores, _reasons(catalog, request, order), strict=True
        )
    ]


# --- stage 0: what the request says -------------------------------------------------------


def _prepare(
    catalog: CatalogIndex, listener: ListenerContext, weights: Mapping[str, float]
) -> _Request:
    effective = {
        name: _clip_weight(weights.get(name), DEFAULT_WEIGHTS[name]) for name in WEIGHT_NAMES
    }
    if listener.cold_start:
        effective["popularity"] = max(effective["popularity"], COLD_START_POPULARITY_FLOOR)

    columns = catalog.genre_column
    requested_genres = _genre_ids(columns, listener.request_genres)
    latest_genres = _genre_ids(columns, listener.latest_genres)
    genre_pref: F32 | None = None
    if listener.session_genres or requested_genres or latest_genres:
        pref = np.zeros(len(catalog.genre_names), dtype=np.float32)
        session: dict[int, float] = {}
        for name, weight in listener.session_genres.items():
            column = columns.get(_canonical(name))
            if column is not None and weight > 0:
                session[column] = max(session.get(column, 0.0), float(weight))
        if session:
            # Any scale is allowed: the strongest session genre counts as a full match.
            top = max(session.values())
            for column, weight in session.items():
                pref[column] = weight / top
        # Genres named just now, or in the request, are a full match.
        pref[latest_genres + requested_genres] = 1.0
        genre_pref = pref if pref.any() else None

    artist_pref: dict[int, float] = {}
    session_artists = {
        a: float(w)
        for name, w in listener.session_artists.items()
        if (a := catalog.artist_key.get(name.strip().lower())) is not None and w > 0
    }
    if session_artists:
        top = max(session_artists.values())
        artist_pref = {a: w / top for a, w in session_artists.items()}
    requested_artists = {
        a
        for name in listener.request_artists
        if (a := catalog.artist_key.get(name.strip().lower())) is not None
    }
    for a in requested_artists:
        artist_pref[a] = 1.0

    target_valence = _unit(listener.mood_valence)
    target_energy: float | None
    if listener.target_energy is not None and math.isfinite(listener.target_energy):
        target_energy = min(max(float(listener.target_energy), 0.0), 1.0)
    else:
        target_energy = _unit(listener.mood_arousal)
    comfort: _ComfortPath | None = None
    if listener.comfort and target_valence is not None:
        end = min(max(target_valence + COMFORT_RISE, 0.0), COMFORT_CEILING)
        end = max(end, min(target_valence + COMFORT_START_STEP, 1.0))
        start = min(target_valence + COMFORT_START_STEP, end)
        comfort = _ComfortPath(start=start, end=end)
        # The path needs valence in the score whatever the arm weighs it.
        total = effective["mood_match"] + effective["valence_match"]
        if total < COMFORT_MIN_VALENCE_WEIGHT:
            effective["valence_match"] += COMFORT_MIN_VALENCE_WEIGHT - total

    liked, liked_set = _track_ids(catalog, listener.liked_track_ids)
    recent, recent_set = _track_ids(catalog, listener.recent_track_ids)
    return _Request(
        weights=effective,
        genre_pref=genre_pref,
        requested_genres=requested_genres,
        latest_genres=latest_genres,
        artist_pref=artist_pref,
        requested_artists=requested_artists,
        target_valence=target_valence,
        target_energy=target_energy,
        energy_from_activity=listener.target_energy is not None,
        comfort=comfort,
        liked=liked,
        recent=recent,
        excluded=_track_ids(catalog, listener.exclude_track_ids)[0],
        cold_start=listener.cold_start,
        liked_set=liked_set,
        recent_set=recent_set,
    )


def _clip_weight(value: float | None, default: float) -> float:
    if value is None or not math.isfinite(value):
        return default
    return min(max(float(value), 0.0), 1.0)


def _unit(value: float | None) -> float | None:
    """A mood axis in [-1, 1] on the tracks' [0, 1] scale."""
    if value is None or not math.isfinite(value):
        return None
    return (min(max(float(value), -1.0), 1.0) + 1.0) / 2.0


def _canonical(name: str) -> str:
    return canonical_genre(name) if name.strip() else ""


def _genre_ids(columns: Mapping[str, int], names: Sequence[str]) -> list[int]:
    ids = [columns[g] for name in names if (g := _canonical(name)) in columns]
    return list(dict.fromkeys(ids))


def _track_ids(catalog: CatalogIndex, ids: Sequence[str]) -> tuple[Indices, frozenset[int]]:
    """The catalog indices of the known ``ids``: ascending, and as a set for membership."""
    # map() runs the lookups in C; the cost left is the dict's cache misses (100k entries).
    found = frozenset(map(catalog.by_id.get, ids))
    known = cast(frozenset[int], found - {None} if None in found else found)
    return np.sort(np.fromiter(known, dtype=np.intp, count=len(known))), known


# --- stage 1: relevance over the whole catalog --------------------------------------------
#
# The cost is the number of passes over n float32s (15-20 us each at 100k tracks here), so
# weights are divided by their total up front, features that depend on few distinct values
# (genre sets, mood cells) are looked up from small per-request tables, and a feature with
# weight 0 is not computed at all. The passes run in the catalog's scoring layout (see
# ScoringLayout): there a genre set's tracks are one block, so a per-set score is added to
# a few slices instead of being looked up for every track, and the mood cells ascend within
# a block, which keeps the mood lookup in cache. Later stages read the result through a
# top-k (one comparison pass) and for a few hundred tracks, mapped to and from positions.


def _relevance(catalog: CatalogIndex, request: _Request) -> F32:
    """Weighted mean of the active feature scores, one float32 per track, in the order of
    ``catalog.layout`` (position p is track layout.order[p])."""
    w = request.weights
    layout = catalog.layout
    lookups = request.active

    # Which features does this request say anything about? Decided first, so that each
    # weight can be divided by the total once instead of dividing the sum afterwards.
    valence_known = request.comfort is not None or request.target_valence is not None
    energy_known = request.target_energy is not None
    mood_names = [
        name
        for name, known in (
            ("mood_match", valence_known or energy_known),
            ("energy_match", energy_known),
            ("valence_match", valence_known),
        )
        if known and w[name] > 0
    ]
    genre_on = request.genre_pref is not None and w["genre_match"] > 0
    taste = _taste(catalog, request.liked) if request.liked.size and w["taste_match"] > 0 else None

    artist_tracks: I32 | Indices | None = None
    if request.artist_pref:
        # Needed even at weight 0: the artist cap exempts artists the listener named.
        artist = np.zeros(len(catalog.tracks), dtype=np.float32)
        named = []
        for artist_id, pref in request.artist_pref.items():
            tracks = catalog.artist_tracks(artist_id)
            artist[tracks] = np.maximum(artist[tracks], np.float32(pref))
            named.append(tracks)
        request.artist_score = artist
        if w["artist_match"] > 0:
            artist_tracks = named[0] if len(named) == 1 else np.unique(np.concatenate(named))
            lookups["artist_match"] = (w["artist_match"], _at(artist))

    active = [*mood_names, "novelty"]
    active += ["genre_match"] if genre_on else []
    active += ["taste_match"] if taste is not None else []
    active += ["artist_match"] if artist_tracks is not None else []
    active += ["popularity"] if w["popularity"] > 0 else []
    total = sum(w[name] for name in active)
    if total <= 0:
        # Every weight is zero: rank by popularity rather than by noise alone.
        acc = layout.popularity * np.float32(1e-3)
    else:
        share = {name: w[name] / total for name in active}
        # Only popularity varies (a cold start, say): it is the first term, so it takes
        # novelty's constant (c + x is x + c), one pass fewer than filling the constant in.
        popularity_first = not mood_names and taste is None and not genre_on
        popularity_first &= "popularity" in share
        # Mood, energy, valence and novelty's constant 1 (it is 0 only for the recent
        # tracks, subtracted below) form one table over the mood grid: one lookup.
        if mood_names:
            mood = _MoodGrid.of(catalog, request)
            table = mood.table(share, mood_names)
            for name in mood_names:
                lookups[name] = (w[name], functools.partial(mood.score, catalog, name))
            # mode="clip": the indices are valid by construction, and clipping skips the
            # bounds check of the default mode, about a quarter faster here.
            acc = np.take(table, layout.mood_cell, mode="clip")
        elif popularity_first:
            acc = np.multiply(layout.popularity, np.float32(share["popularity"]))
            acc += np.float32(share["novelty"])
        else:
            acc = np.full(len(catalog.tracks), share["novelty"], dtype=np.float32)
        # Genre match and the genre half of taste are per genre set: one table, added to
        # each set's block of the layout.
        set_table: F32 | None = None
        if genre_on and request.genre_pref is not None:
            # A track's genre score is its best preferred genre.
            per_set = (catalog.genre_sets * request.genre_pref).max(axis=1)
            set_table = per_set * np.float32(share["genre_match"])
            lookups["genre_match"] = (w["genre_match"], _at_cell(per_set, catalog.genre_set_of))
        # One scratch array for every term: fewer fresh 400 kB temporaries keeps more of
        # the catalog's arrays in cache (at 100k tracks the request is memory-bound).
        scratch = np.empty_like(acc)
        if taste is not None:
            taste_share = share["taste_match"]
            genre_half = taste.per_set * np.float32(TASTE_GENRE_SHARE * taste_share)
            set_table = genre_half if set_table is None else set_table + genre_half
            sound = taste.features * np.float32((1.0 - TASTE_GENRE_SHARE) * taste_share)
            np.einsum("ij,j->i", layout.features_unit, sound, out=scratch)
            acc += scratch
            lookups["taste_match"] = (w["taste_match"], functools.partial(taste.at, catalog))
        if set_table is not None:
            # Most sets score 0 (only those with a preferred or liked genre count).
            start = layout.set_start
            for set_id in np.flatnonzero(set_table).tolist():
                acc[start[set_id] : start[set_id + 1]] += set_table[set_id]
        if "popularity" in share:
            if not popularity_first:
                popularity = np.multiply(
                    layout.popularity, np.float32(share["popularity"]), out=scratch
                )
                acc += popularity
            lookups["popularity"] = (w["popularity"], _at(catalog.popularity))
        if artist_tracks is not None and request.artist_score is not None:
            boost = np.float32(share["artist_match"]) * request.artist_score[artist_tracks]
            acc[layout.position[artist_tracks]] += boost
        if share["novelty"] > 0 and request.recent.size:
            acc[layout.position[request.recent]] -= np.float32(share["novelty"])
        lookups["novelty"] = (w["novelty"], lambda index: float(index not in request.recent_set))

    if request.requested_artists:
        lists = [catalog.artist_tracks(a) for a in sorted(request.requested_artists)]
        requested = lists[0] if len(lists) == 1 else np.unique(np.concatenate(lists))
        acc[layout.position[requested]] += np.float32(REQUEST_ARTIST_BOOST)
    if request.cold_start:
        acc -= np.float32(COLD_START_TAIL_PENALTY) * layout.popularity_tail
    return acc


def _at(values: F32) -> Callable[[int], float]:
    return lambda index: float(values[index])


def _at_cell(table: F32, cell_of: Indices) -> Callable[[int], float]:
    return lambda index: float(table[cell_of[index]])


@dataclass(frozen=True)
class _MoodGrid:
    """Per-axis gaps to the target mood over the bins of the mood grid (MOOD_GRID values
    each; 0 on an unknown axis), from which the per-cell table is built by broadcasting."""

    valence_gap: F32
    energy_gap: F32
    # The same as Python floats, for the few lookups of score().
    valence_gaps: list[float]
    energy_gaps: list[float]

    @staticmethod
    def of(catalog: CatalogIndex, request: _Request) -> _MoodGrid:
        centres = catalog.mood_bin_centres
        valence_gap = np.zeros(MOOD_GRID, dtype=np.float32)
        if request.comfort is not None:
            # With comfort every valence on the path is right (the selection then places the
            # tracks along it): the gap is the distance to the path's band.
            low, high = np.float32(request.comfort.start), np.float32(request.comfort.end)
            valence_gap = np.maximum(np.maximum(low - centres, centres - high), np.float32(0))
        elif request.target_valence is not None:
            valence_gap = np.abs(centres - np.float32(request.target_valence))
        energy_gap = np.zeros(MOOD_GRID, dtype=np.float32)
        if request.target_energy is not None:
            energy_gap = np.abs(centres - np.float32(request.target_energy))
        return _MoodGrid(valence_gap, energy_gap, valence_gap.tolist(), energy_gap.tolist())

    def table(self, share: Mapping[str, float], names: Sequence[str]) -> F32:
        """share-weighted sum of the features ``names`` plus the novelty constant, per cell
        (flattened like CatalogIndex.mood_cell)."""
        rows = np.full(MOOD_GRID, share["novelty"], dtype=np.float32)  # per valence bin
        if "mood_match" in names:
            # share * (1 - min(distance / radius, 1)) = share - min(share * distance / radius,
            # share); the constant goes to the rows.
            weight = np.float32(share["mood_match"])
            v2, e2 = self.valence_gap * self.valence_gap, self.energy_gap * self.energy_gap
            table = np.add(v2[:, None], e2[None, :])
            np.sqrt(table, out=table)
            table *= -weight / np.float32(MOOD_RADIUS)
            np.maximum(table, -weight, out=table)
            rows += weight
        else:
            table = np.zeros((MOOD_GRID, MOOD_GRID), dtype=np.float32)
        if "valence_match" in names:
            rows += np.float32(share["valence_match"]) * (1 - self.valence_gap)
        table += rows[:, None]
        if "energy_match" in names:  # per energy bin
            table += (np.float32(share["energy_match"]) * (1 - self.energy_gap))[None, :]
        return table.reshape(-1)

    def score(self, catalog: CatalogIndex, name: str, index: int) -> float:
        """The unweighted score of mood feature ``name`` at track ``index``, for reasons."""
        v_bin, e_bin = divmod(int(catalog.mood_cell[index]), MOOD_GRID)
        v_gap, e_gap = self.valence_gaps[v_bin], self.energy_gaps[e_bin]
        if name == "valence_match":
            return 1.0 - v_gap
        if name == "energy_match":
            return 1.0 - e_gap
        return 1.0 - min(math.hypot(v_gap, e_gap) / MOOD_RADIUS, 1.0)


@dataclass(frozen=True)
class _Taste:
    """Similarity to the liked tracks: the mean of two cosines against the mean liked track,
    one over genres (a per-genre-set value, so it shares the genre lookup) and one over the
    audio features (valence, energy, danceability, acousticness)."""

    per_set: F32  # genre cosine of each genre set, in [0, 1]
    features: F32  # the mean liked features, unit length

    def at(self, catalog: CatalogIndex, index: int) -> float:
        genre = float(self.per_set[catalog.genre_set_of[index]])
        sound = float(catalog.features_unit[index] @ self.features)
        return TASTE_GENRE_SHARE * genre + (1.0 - TASTE_GENRE_SHARE) * sound


def _taste(catalog: CatalogIndex, liked: Indices) -> _Taste | None:
    mean_genre = catalog.genre_sets[catalog.genre_set_of[liked]].mean(axis=0)
    mean_features = catalog.features[liked].mean(axis=0)
    genre_norm = float(np.sqrt((mean_genre * mean_genre).sum()))
    features_norm = float(np.sqrt((mean_features * mean_features).sum()))
    if features_norm <= 0:
        return None
    # Non-negative vectors, so both cosines are already in [0, 1]. (Products of a matrix
    # and a vector are written as elementwise sums or einsum, never BLAS: OpenBLAS threads
    # on these sizes and, on two cores shared with the web server, that made p95 ten
    # times p50.)
    per_set = (catalog.genre_sets_unit * (mean_genre / max(genre_norm, 1e-12))).sum(axis=1)
    return _Taste(per_set.astype(np.float32), (mean_features / features_norm).astype(np.float32))


# --- stage 2: the candidate pool ----------------------------------------------------------


def _top(values: F32, k: int, layout: ScoringLayout | None = None) -> tuple[Indices, F32]:
    """The (up to) k largest finite values: where they are (as _top_k says) and the values.
    With ``layout``, ``values`` is the relevance of every track, in layout order."""
    if values.size > k:
        chosen, top = _top_k(values, k, layout)
    else:
        chosen = np.arange(values.size)
        top = values if layout is None else values[layout.position]
    finite = np.isfinite(top)
    return chosen[finite], top[finite]


def _top_k(values: F32, k: int, layout: ScoringLayout | None = None) -> tuple[Indices, F32]:
    """Positions of the k largest values, in no particular order, and the values there.
    With ``layout``, values are in layout order and the result is track indices, the same
    (order included) as on the values in catalog order, so that exact ties resolve as they
    always did.

    A full argpartition of 100k values is the largest single cost of a request, so a
    threshold is first read off a strided sample and only the values above it are
    partitioned. Exact whatever the sample: if at least k values reach the threshold, the
    k largest are among them; otherwise (an unlucky or ordered sample) fall back.
    """
    n = values.size
    stride = n // (TOP_K_SAMPLE_FACTOR * k)
    if stride >= 4:
        sample = values[::stride] if layout is None else values[layout.position[::stride]]
        rank = min(sample.size - 1, 2 * k // stride + 8)  # ~2x margin over the expected
        threshold = np.partition(sample, sample.size - 1 - rank)[sample.size - 1 - rank]
        candidates = np.flatnonzero(values >= threshold)
        if layout is not None:
            candidates = np.sort(layout.order[candidates])  # as flatnonzero in catalog order
        if k <= candidates.size <= n // 4:
            above = values[candidates if layout is None else layout.position[candidates]]
            inner = above.argpartition(candidates.size - k)[candidates.size - k :]
            return candidates[inner], above[inner]
    if layout is not None:
        values = values[layout.position]  # the rare fallback pays for catalog order
    chosen = values.argpartition(n - k)[n - k :]
    return chosen, values[chosen]


def _pool(catalog: CatalogIndex, request: _Request, relevance: F32, limit: int) -> Indices:
    k = max(POOL_MIN, POOL_PER_SLOT * limit)
    # A few tracks per artist at most (artists the listener named aside): the artist cap
    # in the selection can only work if the pool holds others, and one prolific or very
    # popular artist can own the whole top of the catalog.
    per_artist = max(2, math.ceil(limit / 10)) + 1
    spread = functools.partial(_spread, catalog, request, per_artist=per_artist)
    parts: list[Indices] = []
    if request.comfort is None:
        parts.append(spread(*_top(relevance, POOL_DEPTH * k, catalog.layout), k))
    else:
        # Each stretch of the valence path gets its own candidates, or a preference that
        # leans to one end (sad genres, say) would leave the other end of the path empty.
        # They are drawn from a deeper top list, not the whole catalog: one partition of
        # the catalog instead of one per stretch.
        deep = spread(*_top(relevance, COMFORT_DEPTH * k, catalog.layout), COMFORT_DEPTH * k)
        parts.append(deep[:k])
        # float64, so that the comparisons with the (float) edges are exact.
        valence = catalog.valence[deep].astype(np.float64)
        start, end = request.comfort.start, request.comfort.end
        # As np.linspace computes them (which costs more than the rest of this loop).
        step = (end - start) / COMFORT_STRATA
        edges = [i * step + start for i in range(COMFORT_STRATA)] + [end]
        margin = 0.5 * (edges[1] - edges[0])
        per = max(k // COMFORT_STRATA, limit)
        for low, high in itertools.pairwise(edges):
            inside = deep[(valence >= low - margin) & (valence <= high + margin)]
            parts.append(inside[:per])  # deep is sorted, best first
    for group in (request.requested_genres, request.latest_genres):
        if group:
            # Quota candidates are ranked by the same relevance, so that even at
            # genre_match 0 the quota is filled with the best tracks of those genres.
            members = np.concatenate([catalog.genre_tracks(g) for g in group])
            positions = np.concatenate([catalog.genre_track_positions(g) for g in group])
            chosen, top = _top(relevance[positions], POOL_DEPTH * k)
            parts.append(spread(np.asarray(members[chosen], dtype=np.intp), top, k))
    # Sorted and unique, as np.unique would give, at a fraction of its cost on this size.
    pool = np.sort(np.concatenate(parts))
    first = np.ones(pool.size, dtype=bool)
    first[1:] = pool[1:] != pool[:-1]
    return pool[first]


def _spread(
    catalog: CatalogIndex,
    request: _Request,
    candidates: Indices,
    relevance: F32,
    k: int,
    *,
    per_artist: int,
) -> Indices:
    """The best ``k`` of ``candidates`` (whose relevance is ``relevance``), best first,
    taking at most ``per_artist`` per primary artist (any number for artists the listener
    named) before any more of one artist: those fill up only when there are not k others
    (a catalog of few artists)."""
    candidates = candidates[(-relevance).argsort(kind="stable")]
    artists = catalog.primary_artist[candidates]
    # Grouped by artist (stable keeps relevance order within one), a candidate is a
    # repeat beyond per_artist when the one per_artist places before it is the same artist.
    by_artist = artists.argsort(kind="stable")
    grouped = artists[by_artist]
    repeat = np.zeros(candidates.size, dtype=bool)
    repeat[by_artist[per_artist:]] = grouped[per_artist:] == grouped[:-per_artist]
    keep = ~repeat | (artists < 0)  # a track without artists is nobody's repeat
    if request.artist_score is not None:
        keep |= request.artist_score[candidates] > 0
    if int(keep.sum()) < k:
        return candidates[(~keep).argsort(kind="stable")][:k]
    return candidates[keep][:k]


# --- stage 3: greedy selection ------------------------------------------------------------


@dataclass
class _Quota:
    members: list[bool]  # per pool candidate: carries one of the genres
    wanted: int
    have: int = 0
    outside: npt.NDArray[np.float64] = field(init=False)  # -inf for non-members, else 0

    def __post_init__(self) -> None:
        self.outside = np.full(len(self.members), -np.inf)
        self.outside[np.array(self.members, dtype=bool)] = 0.0


def _select(
    catalog: CatalogIndex,
    request: _Request,
    relevance: F32,
    pool: Indices,
    limit: int,
    rng: np.random.Generator,
) -> tuple[list[int], list[float]]:
    """Pick up to ``limit`` tracks from ``pool``; returns catalog indices and, per pick, the
    value it was chosen with (relevance minus redundancy, minus the comfort path gap).

    Exclusions are additive masks (0 where allowed, -inf where not), so each step is a few
    whole-pool additions and one argmax, and a mask that excludes nothing yet is skipped.
    The pool is a few dozen tracks: the bookkeeping per pick is plain Python, on values
    read out of the catalog once (a numpy call costs more than such work)."""
    m = pool.size
    limit = min(limit, m)
    rel = relevance[catalog.layout.position[pool]].astype(np.float64)
    rel += rng.random(m) * NOISE_AMPLITUDE
    indices = pool.tolist()
    sets = catalog.genre_set_of[pool]
    genres = [catalog.set_genres[s] for s in sets.tolist()]

    # No artist fills the list (featured appearances count too), unless the listener named
    # them; tracks crediting a named artist are never blocked.
    artist_cap = max(2, math.ceil(limit / 10))
    credits = [catalog.track_artists[i] for i in indices]
    artist_counts: dict[int, int] = {}
    asked = (
        (request.artist_score[pool] > 0).tolist()
        if request.artist_score is not None
        else [False] * m
    )
    quotas: list[_Quota] = []
    for group, share in (
        (request.requested_genres, REQUEST_GENRE_SHARE),
        (request.latest_genres, LATEST_GENRE_SHARE),
    ):
        if group:
            members = [not set(group).isdisjoint(carried) for carried in genres]
            quotas.append(_Quota(members, math.ceil(share * limit)))
    genre_cap = math.ceil(COLD_START_GENRE_SHARE * limit) if request.cold_start else None
    genre_counts: dict[int, int] = {}

    # Each candidate's redundancy: the penalty times its highest similarity to the picks
    # so far (penalty * max = max of penalty *, exactly), and +inf once it is picked.
    penalty = MMR_MAX_PENALTY * request.weights["diversity"]
    redundancy = np.zeros(m)
    weighted_similarity = (
        penalty * _similarity(catalog, pool, sets).astype(np.float64)
        if penalty > 0 and limit > 1
        else None
    )
    artist_blocked: npt.NDArray[np.float64] | None = None  # -inf once an artist is capped
    genre_blocked: npt.NDArray[np.float64] | None = None  # -inf once a genre is capped
    comfort = request.comfort
    valence = catalog.valence[pool].astype(np.float64) if comfort is not None else None
    picks: list[int] = []
    values: list[float] = []
    for step in range(limit):
        value = rel - redundancy
        if comfort is not None and valence is not None:
            target = comfort.target(step, limit)
            value -= COMFORT_PATH_STRENGTH * np.abs(valence - target)
        candidates = value
        # Quotas first: once the slots left are only just enough, only members qualify.
        # The request's quota comes first, so when both cannot hold it is the one kept.
        for q in quotas:
            if q.wanted - q.have >= limit - step:
                narrowed = candidates + q.outside
                if math.isfinite(narrowed.max()):
                    candidates = narrowed
        # Caps come second and give way when nothing else is left: the genre cap first.
        capped = candidates if artist_blocked is None else candidates + artist_blocked
        both = capped if genre_blocked is None else capped + genre_blocked
        # (Array methods: np.argmax and the like add a Python call on top, here per step.)
        j = int(both.argmax())
        if not math.isfinite(both[j]):
            j = int(capped.argmax())
            if not math.isfinite(capped[j]):
                j = int(candidates.argmax())
        picks.append(indices[j])
        values.append(float(value[j]))

        for artist in credits[j]:
            artist_counts[artist] = artist_counts.get(artist, 0) + 1
            if artist_counts[artist] == artist_cap and artist not in request.artist_pref:
                if artist_blocked is None:
                    artist_blocked = np.zeros(m)
                for i in range(m):
                    if artist in credits[i] and not asked[i]:
                        artist_blocked[i] = -np.inf
        if genre_cap is not None:
            for genre in genres[j]:
                genre_counts[genre] = genre_counts.get(genre, 0) + 1
            full = {genre for genre, count in genre_counts.items() if count >= genre_cap}
            if not full.isdisjoint(genres[j]):
                if genre_blocked is None:
                    genre_blocked = np.zeros(m)
                for i in range(m):
                    if not full.isdisjoint(genres[i]):
                        genre_blocked[i] = -np.inf
        for q in quotas:
            q.have += q.members[j]
        if weighted_similarity is not None:
            np.maximum(redundancy, weighted_similarity[j], out=redundancy)
        redundancy[j] = np.inf
    return picks, values


def _similarity(catalog: CatalogIndex, pool: Indices, sets: Indices) -> npt.NDArray[np.float32]:
    """Pairwise similarity of the pool's candidates in [0, 1]: same primary artist, genre
    cosine (of their genre ``sets``) and closeness in (valence, energy). Computed once as a
    matrix (the pool is a few hundred tracks at most) so that each selection step is a
    single row lookup."""
    # take twice: np.ix_ indexing costs several times as much on these sizes.
    similarity = SIM_GENRE * catalog.set_cosine.take(sets, axis=0).take(sets, axis=1)
    primary = catalog.primary_artist[pool]
    # A track without artists (-1) is nobody's duplicate.
    same_artist = primary[:, None] == primary[None, :]
    same_artist &= primary[:, None] >= 0
    similarity += SIM_ARTIST * same_artist
    valence = catalog.valence[pool].astype(np.float64)
    energy = catalog.energy[pool].astype(np.float64)
    dv = valence[:, None] - valence[None, :]
    de = energy[:, None] - energy[None, :]
    gap = np.sqrt(dv * dv + de * de)  # np.hypot is several times slower
    similarity += SIM_MOOD * (1.0 - gap * (1.0 / math.sqrt(2.0)))
    return similarity


# --- stage 4: order and final scores ------------------------------------------------------


def _order_and_score(
    catalog: CatalogIndex, request: _Request, picks: list[int], values: list[float]
) -> tuple[list[int], list[float]]:
    if request.comfort is not None:
        # The iso path: from near the current mood upward, so the lowest valence plays first.
        valence = catalog.valence[picks].tolist()
        order = sorted(range(len(picks)), key=lambda i: (valence[i], i))
    else:
        # Forced quota picks and relaxed caps can pick below an earlier value; sorting keeps
        # the list's order and its scores consistent.
        order = sorted(range(len(picks)), key=lambda i: (-values[i], i))
    # Scores in millionths, strictly decreasing along the final order: on the comfort path
    # a later (brighter) track may have fitted its own step better than an earlier one
    # fitted its, but the list is ranked by the path, so its score is capped below.
    scores: list[float] = []
    previous: int | None = None
    for i in order:
        micro = round(values[i] * 1_000_000)
        if previous is not None:
            micro = min(micro, previous - 1)
        previous = micro
        scores.append(micro / 1_000_000)
    return [picks[i] for i in order], scores


# --- stage 5: reasons ---------------------------------------------------------------------


def _reasons(catalog: CatalogIndex, request: _Request, order: list[int]) -> list[list[str]]:
    """Up to MAX_REASONS phrases for each returned track, strongest first: each candidate
    phrase carries a strength (mostly its feature's weight times the track's score there),
    so what the list says follows what moved the track up. Never a bare number.

    What depends on the request alone (weights, preferences, the mood phrase) is read once
    for the whole list, not once per track."""
    weights = request.weights
    genre_pref: list[float] = [] if request.genre_pref is None else request.genre_pref.tolist()
    mood_text = None if request.comfort is not None else _mood_text(request)
    moods = [
        (name, entry)
        for name in ("mood_match", "energy_match", "valence_match")
        if (entry := request.active.get(name)) is not None
    ]
    taste = request.active.get("taste_match")
    knows_history = bool(request.recent_set or request.liked_set)
    result: list[list[str]] = []
    for position, index in enumerate(order):
        track = catalog.tracks[index]
        candidates: list[tuple[float, str]] = []  # (strength, text)

        # Artists the listener named.
        for artist in dict.fromkeys(track.artists) if request.artist_pref else ():
            artist_id = catalog.artist_key.get(artist.lower())
            if artist_id is None or artist_id not in request.artist_pref:
                continue
            if artist_id in request.requested_artists:
                candidates.append((10.0, f"by {artist}, as you asked"))
            else:
                strength = weights["artist_match"] * request.artist_pref[artist_id]
                candidates.append((1.0 + strength, f"by {artist}, whom you mentioned"))
            break

        # Genres: requested and just-named ones are always worth saying (they are why quota
        # picks are here, even when genre_match weighs nothing).
        best_genre: tuple[float, int] | None = None
        for genre in track.genres if genre_pref else ():
            column = catalog.genre_column.get(genre)
            pref = 0.0 if column is None else genre_pref[column]
            if column is not None and pref > 0 and (best_genre is None or pref > best_genre[0]):
                best_genre = (pref, column)
        if best_genre is not None:
            pref, column = best_genre
            genre = catalog.genre_names[column]
            strength = weights["genre_match"] * pref
            if column in request.requested_genres:
                candidates.append((5.0 + strength, f"the {genre} you asked for"))
            elif column in request.latest_genres:
                candidates.append((4.0 + strength, f"matches your love of {genre}"))
            elif pref >= 0.3:
                candidates.append((strength, f"matches your love of {genre}"))

        if request.comfort is not None:
            text = _comfort_reason(track.valence, track.energy, position, len(order))
            candidates.append((8.0, text))
        elif mood_text is not None and moods:
            # The mood feature that moved the track most, if it fits well enough to say so.
            scored = [(weight, at(index), name) for name, (weight, at) in moods]
            strength, fit, _ = max((weight * fit, fit, name) for weight, fit, name in scored)
            if fit >= 0.6:
                candidates.append((strength, mood_text))

        if taste is not None and (similarity := taste[1](index)) >= 0.8:
            candidates.append((taste[0] * similarity, "similar to tracks you liked"))

        if track.popularity >= catalog.popularity_p75:
            candidates.append((weights["popularity"] * track.popularity, "popular right now"))
        if request.cold_start and track.genres:
            candidates.append((0.05, f"a taste of {track.genres[0]}, to get to know you"))

        if index in request.liked_set:
            candidates.append((0.1, "one you liked before"))
        elif index not in request.recent_set and knows_history:
            candidates.append((weights["novelty"] * 0.5, "something new for you"))

        candidates.sort(key=lambda c: -c[0])
        reasons = list(dict.fromkeys(text for _, text in candidates))[:MAX_REASONS]
        result.append(reasons or [describe_track(track)])
    return result


def _comfort_reason(valence: float, energy: float, position: int, size: int) -> str:
    progress = position / max(size - 1, 1)
    if progress < 0.34:
        if energy <= 0.4:
            return "calm, to ease a hard day"
        return "gentle, to meet you where you are"
    if progress < 0.67 or valence < 0.55:
        return "a little brighter, to lift the mood step by step"
    return "upbeat, to lift the mood a little"


def _mood_text(request: _Request) -> str | None:
    """How a list that fits the listener's mood or activity says so (None: nothing known)."""
    target_e = request.target_energy
    target_v = request.target_valence
    if request.energy_from_activity and target_e is not None:
        if target_e >= 0.65:
            return "high energy for your activity"
        if target_e <= 0.35:
            return "low-key, to keep you focused"
        return "steady energy for what you are doing"
    if target_v is not None and target_e is not None:
        if target_v >= 0.6:
            if target_e >= 0.5:
                return "upbeat, to match your mood"
            return "warm and relaxed, to match your mood"
        if target_v <= 0.4:
            if target_e >= 0.5:
                return "intense, to match how you feel"
            return "quiet and reflective, in tune with how you feel"
        return "in tune with your mood"
    if target_v is not None:
        return "bright, to match your mood" if target_v >= 0.6 else "in tune with how you feel"
    if target_e is not None:
        if target_e >= 0.6:
            return "full of energy, to match yours"
        return "easy-going, to match your pace"
    return None
