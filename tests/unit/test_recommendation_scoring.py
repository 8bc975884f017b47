"""The recommendation scoring engine: behaviour over the generated catalog, seeded rng."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping

import numpy as np
import pytest

from recommendation_service.catalog import CatalogIndex, describe_track
from recommendation_service.scoring import (
    DEFAULT_WEIGHTS,
    ListenerContext,
    ScoredTrack,
    recommend,
)
from v5_shared.catalog.generator import generate_catalog
from v5_shared.catalog.model import Track

LIMIT = 10


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    return CatalogIndex(version=1, tracks=generate_catalog(seed=5))


@pytest.fixture(scope="module")
def small_catalog() -> CatalogIndex:
    return CatalogIndex(version=1, tracks=generate_catalog(seed=5, n_tracks=30, n_artists=10))


def run(
    catalog: CatalogIndex,
    listener: ListenerContext,
    weights: Mapping[str, float] | None = None,
    *,
    limit: int = LIMIT,
    seed: int = 7,
) -> list[ScoredTrack]:
    return recommend(
        catalog,
        listener,
        dict(DEFAULT_WEIGHTS) if weights is None else weights,
        limit=limit,
        rng=np.random.default_rng(seed),
    )


def tracks_of(catalog: CatalogIndex, result: list[ScoredTrack]) -> list[Track]:
    return [catalog.tracks[item.index] for item in result]


def carrying(catalog: CatalogIndex, result: list[ScoredTrack], genres: set[str]) -> int:
    return sum(1 for t in tracks_of(catalog, result) if genres & set(t.genres))


def ids_of_genre(catalog: CatalogIndex, genre: str, n: int) -> list[str]:
    return [t.track_id for t in catalog.tracks if t.genres and t.genres[0] == genre][:n]


def assert_well_formed(
    catalog: CatalogIndex, result: list[ScoredTrack], listener: ListenerContext, expected: int
) -> None:
    indices = [item.index for item in result]
    assert len(result) == expected
    assert len(set(indices)) == len(indices)
    excluded = set(listener.exclude_track_ids)
    assert not excluded & {catalog.tracks[i].track_id for i in indices}
    scores = [item.score for item in result]
    assert all(a >= b for a, b in itertools.pairwise(scores)), scores
    assert all(round(s, 6) == s and math.isfinite(s) for s in scores)
    for item in result:
        assert item.reasons, "every track needs a reason"
        for reason in item.reasons:
            assert isinstance(reason, str) and reason.strip()
            assert re.search(r"[a-z]{3}", reason), f"not human-readable: {reason!r}"


def some_ids(catalog: CatalogIndex, start: int, n: int) -> list[str]:
    return [t.track_id for t in catalog.tracks[start : start + n]]


def listeners(catalog: CatalogIndex) -> dict[str, ListenerContext]:
    artist = catalog.tracks[3].artists[0]
    return {
        "nothing known": ListenerContext(),
        "cold start": ListenerContext(cold_start=True),
        "session": ListenerContext(
            session_genres={"jazz": 3.0, "blues": 1.0},
            session_artists={artist: 1.0},
            latest_genres=["jazz"],
            mood_valence=0.3,
            mood_arousal=-0.2,
        ),
        "request": ListenerContext(
            request_genres=["metal", "punk"], request_artists=[artist], target_energy=0.9
        ),
        "comfort": ListenerContext(mood_valence=-0.7, mood_arousal=-0.5, comfort=True),
        "history": ListenerContext(
            liked_track_ids=some_ids(catalog, 0, 15),
            recent_track_ids=some_ids(catalog, 15, 40),
            exclude_track_ids=some_ids(catalog, 55, 300),
        ),
    }


LISTENER_NAMES = ["nothing known", "cold start", "session", "request", "comfort", "history"]


# --- the list itself ----------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTENER_NAMES)
@pytest.mark.parametrize("limit", [1, 10, 50])
def test_exact_limit_unique_sorted_and_never_excluded(
    catalog: CatalogIndex, name: str, limit: int
) -> None:
    listener = listeners(catalog)[name]
    # Exclude what this listener would otherwise have been given first.
    first = run(catalog, listener, limit=limit)
    excluded = [catalog.tracks[item.index].track_id for item in first[: max(1, limit // 2)]]
    listener = dataclasses.replace(
        listener, exclude_track_ids=[*listener.exclude_track_ids, *excluded, "no-such-track"]
    )
    result = run(catalog, listener, limit=limit)
    assert_well_formed(catalog, result, listener, limit)


@pytest.mark.parametrize("name", LISTENER_NAMES)
def test_small_catalog_works(small_catalog: CatalogIndex, name: str) -> None:
    listener = listeners(small_catalog)[name]
    result = run(small_catalog, listener)
    eligible = len(small_catalog.tracks) - len(
        {i for i in listener.exclude_track_ids if i in small_catalog.by_id}
    )
    assert_well_formed(small_catalog, result, listener, min(LIMIT, eligible))


def test_limit_above_eligible_returns_every_eligible_track(small_catalog: CatalogIndex) -> None:
    excluded = some_ids(small_catalog, 0, 22)
    listener = ListenerContext(
        request_genres=[small_catalog.tracks[0].genres[0]], exclude_track_ids=excluded
    )
    result = run(small_catalog, listener, limit=50)
    assert_well_formed(small_catalog, result, listener, 8)
    returned = {small_catalog.tracks[item.index].track_id for item in result}
    assert returned == {t.track_id for t in small_catalog.tracks} - set(excluded)


@pytest.mark.parametrize("name", LISTENER_NAMES)
def test_few_artists_still_fill_the_list(name: str) -> None:
    # Two artists only: the artist cap has to give way rather than shorten the list.
    tracks = generate_catalog(seed=5, n_tracks=60, n_artists=2)
    catalog = CatalogIndex(version=1, tracks=tracks)
    listener = dataclasses.replace(listeners(catalog)[name], exclude_track_ids=[])
    result = run(catalog, listener, limit=40)
    assert_well_formed(catalog, result, listener, 40)


def test_everything_excluded_or_no_limit_gives_an_empty_list(small_catalog: CatalogIndex) -> None:
    everything = ListenerContext(exclude_track_ids=[t.track_id for t in small_catalog.tracks])
    assert run(small_catalog, everything) == []
    assert run(small_catalog, ListenerContext(), limit=0) == []


def test_same_seed_same_list_and_other_seeds_vary_a_little(catalog: CatalogIndex) -> None:
    listener = ListenerContext(session_genres={"jazz": 1.0})
    assert run(catalog, listener, seed=3) == run(catalog, listener, seed=3)
    lists = [frozenset(item.index for item in run(catalog, listener, seed=s)) for s in range(8)]
    assert len(set(lists)) > 1, "noise should vary repeated requests"
    assert len(frozenset.intersection(*lists)) >= LIMIT // 3, "but only a little"


def test_weights_are_clipped_and_missing_ones_default(catalog: CatalogIndex) -> None:
    listener = listeners(catalog)["session"]
    odd = {"genre_match": 7.0, "popularity": -3.0, "novelty": float("nan")}
    assert_well_formed(catalog, run(catalog, listener, odd), listener, LIMIT)
    zero = dict.fromkeys(DEFAULT_WEIGHTS, 0.0)
    assert_well_formed(catalog, run(catalog, listener, zero), listener, LIMIT)


# --- clear preferences --------------------------------------------------------------------


@pytest.mark.parametrize("genre_weight", [DEFAULT_WEIGHTS["genre_match"], 0.0])
def test_latest_genres_fill_at_least_half(catalog: CatalogIndex, genre_weight: float) -> None:
    # The rest of what is known pulls elsewhere: rock in the session, a happy mood.
    listener = ListenerContext(
        session_genres={"rock": 5.0, "gospel": 0.5},
        latest_genres=["gospel"],
        mood_valence=0.8,
        mood_arousal=0.7,
        liked_track_ids=ids_of_genre(catalog, "rock", 20),
    )
    weights = {**DEFAULT_WEIGHTS, "genre_match": genre_weight}
    for limit in (1, 7, 10, 25):
        result = run(catalog, listener, weights, limit=limit)
        assert_well_formed(catalog, result, listener, limit)
        assert carrying(catalog, result, {"gospel"}) >= math.ceil(limit / 2)


@pytest.mark.parametrize("genre_weight", [DEFAULT_WEIGHTS["genre_match"], 0.0])
def test_request_genres_fill_at_least_eighty_percent(
    catalog: CatalogIndex, genre_weight: float
) -> None:
    listener = ListenerContext(
        session_genres={"house": 4.0},
        latest_genres=["house"],
        request_genres=["classical", "Lo Fi"],  # any spelling the canonical names accept
        target_energy=0.95,
        liked_track_ids=ids_of_genre(catalog, "techno", 20),
    )
    weights = {**DEFAULT_WEIGHTS, "genre_match": genre_weight, "popularity": 1.0}
    for limit in (1, 5, 10, 50):
        result = run(catalog, listener, weights, limit=limit)
        assert_well_formed(catalog, result, listener, limit)
        assert carrying(catalog, result, {"classical", "lo-fi"}) >= math.ceil(0.8 * limit)
        reasons = [r for item in result for r in item.reasons]
        assert any("you asked for" in r for r in reasons)


def test_quota_falls_back_to_the_best_others_when_the_genre_runs_out(
    catalog: CatalogIndex,
) -> None:
    gospel = [t.track_id for t in catalog.tracks if "gospel" in t.genres]
    kept = gospel[:3]
    listener = ListenerContext(request_genres=["gospel"], exclude_track_ids=gospel[3:])
    result = run(catalog, listener)
    assert_well_formed(catalog, result, listener, LIMIT)
    returned = {catalog.tracks[item.index].track_id for item in result}
    assert set(kept) <= returned


def test_unknown_genres_are_ignored(catalog: CatalogIndex) -> None:
    listener = ListenerContext(request_genres=["polka-step"], latest_genres=["zydeco"])
    assert_well_formed(catalog, run(catalog, listener), listener, LIMIT)


def test_requested_artist_leads_the_list(catalog: CatalogIndex) -> None:
    counts = Counter(t.artists[0] for t in catalog.tracks)
    artist = next(a for a, n in counts.most_common() if n >= 12)
    listener = ListenerContext(session_genres={"metal": 1.0}, request_artists=[artist.upper()])
    result = run(catalog, listener)
    by_artist = [artist in t.artists for t in tracks_of(catalog, result)]
    assert all(by_artist[:5]) and sum(by_artist) >= 8  # the artist cap does not apply
    assert any(f"by {artist}, as you asked" in item.reasons for item in result)


# --- cold start ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_cold_start_is_popular_and_spread_over_genres(catalog: CatalogIndex, seed: int) -> None:
    listener = ListenerContext(cold_start=True)
    result = run(catalog, listener, seed=seed)
    assert_well_formed(catalog, result, listener, LIMIT)
    popularity = [t.popularity for t in tracks_of(catalog, result)]
    assert float(np.mean(popularity)) > float(np.median(catalog.popularity))
    genre_counts = Counter(g for t in tracks_of(catalog, result) for g in set(t.genres))
    assert max(genre_counts.values()) <= 0.4 * LIMIT
    primary = {t.genres[0] for t in tracks_of(catalog, result)}
    assert len(primary) >= 5


def test_cold_start_stays_popular_even_when_the_arm_ignores_popularity(
    catalog: CatalogIndex,
) -> None:
    weights = {**DEFAULT_WEIGHTS, "popularity": 0.0, "novelty": 1.0, "diversity": 1.0}
    result = run(catalog, ListenerContext(cold_start=True), weights)
    popularity = [t.popularity for t in tracks_of(catalog, result)]
    assert float(np.mean(popularity)) > float(np.median(catalog.popularity))


# --- comfort ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights",
    [
        DEFAULT_WEIGHTS,
        {**DEFAULT_WEIGHTS, "mood_match": 0.0, "valence_match": 0.0, "popularity": 1.0},
    ],
    ids=["default", "mood-blind arm"],
)
@pytest.mark.parametrize("genres", [{}, {"metal": 1.0}, {"ambient": 2.0}])
def test_comfort_starts_near_the_mood_and_leads_upward(
    catalog: CatalogIndex, weights: Mapping[str, float], genres: dict[str, float]
) -> None:
    mood = -0.7
    listener = ListenerContext(
        session_genres=genres, mood_valence=mood, mood_arousal=-0.4, comfort=True
    )
    result = run(catalog, listener, weights)
    assert_well_formed(catalog, result, listener, LIMIT)
    valence = [t.valence for t in tracks_of(catalog, result)]
    assert valence == sorted(valence), "valence rises along the list"
    current = (mood + 1) / 2
    assert abs(valence[0] - current) <= 0.2, "starts near the current mood, not euphoric"
    assert valence[-1] - valence[0] >= 0.2, "and leads clearly upward"
    assert max(valence) <= 0.9
    assert float(np.mean([2 * v - 1 for v in valence])) > mood
    assert any("mood" in r or "ease" in r for item in result for r in item.reasons)


@pytest.mark.parametrize("mood", [-1.0, -0.3, 0.2, 0.9])
def test_comfort_lifts_above_any_mood(catalog: CatalogIndex, mood: float) -> None:
    listener = ListenerContext(mood_valence=mood, comfort=True)
    result = run(catalog, listener)
    assert_well_formed(catalog, result, listener, LIMIT)
    valence = [t.valence for t in tracks_of(catalog, result)]
    assert valence == sorted(valence)
    assert float(np.mean([2 * v - 1 for v in valence])) > mood


def test_comfort_without_a_known_mood_is_a_plain_list(catalog: CatalogIndex) -> None:
    listener = ListenerContext(comfort=True)
    assert_well_formed(catalog, run(catalog, listener), listener, LIMIT)


# --- diversity ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nothing known", "session", "history", "comfort"])
def test_no_artist_more_than_twice_by_default(catalog: CatalogIndex, name: str) -> None:
    listener = listeners(catalog)[name]
    listener = dataclasses.replace(listener, session_artists={}, request_artists=[])
    result = run(catalog, listener)
    # Every credited artist counts, featured ones too.
    counts = Counter(a for t in tracks_of(catalog, result) for a in t.artists)
    assert max(counts.values()) <= 2


def test_one_dominant_artist_does_not_fill_the_list() -> None:
    tracks = generate_catalog(seed=11, n_tracks=3000, n_artists=300)
    star = tracks[0].artists[0]
    top = set(np.argsort([-t.popularity for t in tracks])[:40].tolist())
    tracks = [
        dataclasses.replace(t, artists=(star,)) if i in top else t for i, t in enumerate(tracks)
    ]
    catalog = CatalogIndex(version=1, tracks=tracks)
    for weights in (DEFAULT_WEIGHTS, {**DEFAULT_WEIGHTS, "diversity": 0.0}):
        result = run(catalog, ListenerContext(), weights)
        assert sum(star in t.artists for t in tracks_of(catalog, result)) <= 2
    # Unless the listener asked for them.
    asked = run(catalog, ListenerContext(session_artists={star: 1.0}))
    assert sum(star in t.artists for t in tracks_of(catalog, asked)) > 2
    assert any(f"by {star}, whom you mentioned" in item.reasons for item in asked)


def test_a_featured_artist_counts_towards_the_cap() -> None:
    tracks = generate_catalog(seed=12, n_tracks=3000, n_artists=300)
    guest = tracks[0].artists[0]
    top = set(np.argsort([-t.popularity for t in tracks])[:40].tolist())
    tracks = [
        dataclasses.replace(t, artists=(t.artists[0], guest))
        if i in top and guest not in t.artists
        else t
        for i, t in enumerate(tracks)
    ]
    catalog = CatalogIndex(version=1, tracks=tracks)
    result = run(catalog, ListenerContext())
    assert sum(guest in t.artists for t in tracks_of(catalog, result)) <= 2


def test_diversity_weight_spreads_genres_and_moods(catalog: CatalogIndex) -> None:
    listener = ListenerContext(mood_valence=0.6, mood_arousal=0.6)

    def spread(diversity: float) -> tuple[int, float]:
        result = run(catalog, listener, {**DEFAULT_WEIGHTS, "diversity": diversity})
        chosen = tracks_of(catalog, result)
        genres = len({t.genres[0] for t in chosen})
        energy = float(np.std([t.energy for t in chosen]) + np.std([t.valence for t in chosen]))
        return genres, energy

    low, high = spread(0.0), spread(1.0)
    assert high[0] >= low[0] and (high[0] > low[0] or high[1] > low[1])


# --- taste, novelty, reasons --------------------------------------------------------------


def test_taste_pulls_toward_the_liked_tracks_genre(catalog: CatalogIndex) -> None:
    liked = ids_of_genre(catalog, "jazz", 12)
    without = run(catalog, ListenerContext())
    with_likes = run(catalog, ListenerContext(liked_track_ids=liked))
    assert carrying(catalog, with_likes, {"jazz"}) >= LIMIT // 2
    assert carrying(catalog, with_likes, {"jazz"}) > carrying(catalog, without, {"jazz"})
    assert any("similar to tracks you liked" in item.reasons for item in with_likes)


def test_novelty_demotes_recent_tracks(catalog: CatalogIndex) -> None:
    listener = ListenerContext(session_genres={"soul": 1.0})
    first = run(catalog, listener)
    recent = [catalog.tracks[item.index].track_id for item in first]
    again = run(catalog, dataclasses.replace(listener, recent_track_ids=recent))
    repeated = {item.index for item in first} & {item.index for item in again}
    assert len(repeated) <= 2
    # A discovery-leaning arm says so.
    discovery = {**DEFAULT_WEIGHTS, "novelty": 1.0, "popularity": 0.2}
    fresh = run(catalog, dataclasses.replace(listener, recent_track_ids=recent), discovery)
    assert any("something new for you" in item.reasons for item in fresh)
    # Without the novelty weight the same tracks come back: it is novelty that did it.
    blind = run(
        catalog,
        dataclasses.replace(listener, recent_track_ids=recent),
        {**DEFAULT_WEIGHTS, "novelty": 0.0},
    )
    assert len({item.index for item in first} & {item.index for item in blind}) >= LIMIT // 2


def test_reasons_name_what_drove_the_score(catalog: CatalogIndex) -> None:
    artist = catalog.tracks[3].artists[0]
    cases: list[tuple[ListenerContext, str]] = [
        (ListenerContext(session_genres={"jazz": 1.0}), "matches your love of jazz"),
        (ListenerContext(request_genres=["jazz"]), "the jazz you asked for"),
        (ListenerContext(session_artists={artist: 2.0}), f"by {artist}, whom you mentioned"),
        (ListenerContext(target_energy=0.95), "high energy for your activity"),
        (ListenerContext(cold_start=True), "popular right now"),
        (ListenerContext(mood_valence=-0.8, mood_arousal=-0.6, comfort=True), "calm"),
    ]
    for listener, expected in cases:
        result = run(catalog, listener)
        assert_well_formed(catalog, result, listener, LIMIT)
        reasons = [r for item in result for r in item.reasons]
        assert any(expected in r for r in reasons), (expected, reasons)


# --- the catalog arrays -------------------------------------------------------------------


def test_catalog_index_precomputes_scoring_arrays(catalog: CatalogIndex) -> None:
    n = len(catalog.tracks)
    genres = len(catalog.genre_names)
    assert catalog.genre_matrix.shape == (n, genres)
    assert catalog.genre_matrix.dtype == np.float32
    assert catalog.features.shape == (n, 4)
    for i in (0, 17, n - 1):
        track = catalog.tracks[i]
        carried = {catalog.genre_names[g] for g in np.flatnonzero(catalog.genre_matrix[i])}
        assert carried == set(track.genres)
        assert catalog.artist_names[catalog.primary_artist[i]] == track.artists[0]
        assert i in catalog.artist_tracks(catalog.artist_key[track.artists[0].lower()])
        assert i in catalog.genre_tracks(catalog.genre_column[track.genres[0]])
        assert catalog.features[i].tolist() == pytest.approx(
            [track.valence, track.energy, track.danceability, track.acousticness]
        )
        row = catalog.genre_sets[catalog.genre_set_of[i]]
        assert np.array_equal(row, catalog.genre_matrix[i])
    assert (
        catalog.artist_by_lower[catalog.tracks[0].artists[0].lower()]
        == (catalog.tracks[0].artists[0])
    )
    assert not catalog.genre_matrix.flags.writeable
    # The existing lookups still answer as before.
    assert catalog.track(catalog.tracks[5].track_id) is catalog.tracks[5]
    assert catalog.by_id[catalog.tracks[5].track_id] == 5
    assert sum(g.tracks for g in catalog.genres) == int(catalog.genre_matrix.sum())
    page, total = catalog.artist_page(limit=5, offset=0, genre="jazz")
    assert len(page) == 5 and total == len(catalog.artists_by_genre["jazz"])
    summary = catalog.popularity_summary()
    assert summary["p50"] == pytest.approx(catalog.popularity_median, abs=1e-6)
    assert describe_track(catalog.tracks[0]).endswith(f"by {catalog.tracks[0].artist}")


def test_empty_catalog() -> None:
    empty = CatalogIndex(version=0, tracks=[])
    assert empty.genre_matrix.shape[0] == 0
    assert run(empty, ListenerContext(cold_start=True)) == []


def test_scoring_layout_groups_the_tracks_by_genre_set(catalog: CatalogIndex) -> None:
    layout = catalog.layout
    n = len(catalog.tracks)
    assert sorted(layout.order.tolist()) == list(range(n))
    assert np.array_equal(layout.position[layout.order], np.arange(n))
    assert layout.set_start[0] == 0 and layout.set_start[-1] == n
    for set_id in range(len(catalog.genre_sets)):
        block = layout.order[layout.set_start[set_id] : layout.set_start[set_id + 1]]
        assert np.all(catalog.genre_set_of[block] == set_id)
        assert np.all(np.diff(catalog.mood_cell[block]) >= 0)
    # The copies hold the same values, in layout order.
    assert np.array_equal(layout.mood_cell, catalog.mood_cell[layout.order])
    assert np.array_equal(layout.popularity, catalog.popularity[layout.order])
    assert np.array_equal(layout.features_unit, catalog.features_unit[layout.order])
    tail = catalog.popularity[layout.order] <= catalog.popularity_median
    assert np.array_equal(layout.popularity_tail, tail.astype(np.float32))
    for genre in ("jazz", "metal"):
        genre_id = catalog.genre_column[genre]
        positions = catalog.genre_track_positions(genre_id)
        assert np.array_equal(layout.order[positions], catalog.genre_tracks(genre_id))
    assert not layout.popularity.flags.writeable


def test_catalog_lookups_for_the_selection_match_the_arrays(catalog: CatalogIndex) -> None:
    for i in (0, 17, len(catalog.tracks) - 1):
        ptr = catalog.track_artist_ptr
        assert catalog.track_artists[i] == tuple(catalog.track_artist_ids[ptr[i] : ptr[i + 1]])
        genres = catalog.set_genres[catalog.genre_set_of[i]]
        assert genres == tuple(np.flatnonzero(catalog.genre_matrix[i]).tolist())
    unit = catalog.genre_sets_unit
    assert np.allclose(catalog.set_cosine, np.einsum("ik,jk->ij", unit, unit))
