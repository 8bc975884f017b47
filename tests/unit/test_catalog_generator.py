"""The generated default catalog: deterministic, large enough, and musically plausible."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import pytest

from v5_shared.catalog import CANONICAL_GENRES, Track, generate_catalog

REQUIRED_GENRES = {
    "pop", "rock", "jazz", "classical", "hip-hop", "electronic", "r&b", "country", "metal",
    "folk", "blues", "reggae", "latin", "indie", "ambient", "soul", "punk", "funk", "lo-fi",
    "k-pop",
}  # fmt: skip
MOOD_AND_ACTIVITY_WORDS = (
    "happy", "sad", "calm", "angry", "chill", "relaxed", "energetic", "stressed", "tired",
    "excited", "love", "blue", "dark", "party", "sleep", "study", "focus", "workout",
    "running", "relax", "commute",
)  # fmt: skip
# Genre names as listeners write them, in addition to the canonical spellings.
GENRE_SPELLINGS = ("hip hop", "hiphop", "r and b", "rnb", "lo fi", "lofi", "k pop", "kpop")


@pytest.fixture(scope="module")
def catalog() -> list[Track]:
    return generate_catalog()


def _catalog_digest(tracks: list[Track]) -> str:
    return hashlib.sha256(repr(tracks).encode()).hexdigest()


def _by_primary_genre(catalog: list[Track]) -> dict[str, list[Track]]:
    groups: dict[str, list[Track]] = defaultdict(list)
    for track in catalog:
        groups[track.genres[0]].append(track)
    return groups


def _mean(tracks: list[Track], feature: str) -> float:
    return float(np.mean([getattr(track, feature) for track in tracks]))


def test_same_seed_gives_the_same_catalog(catalog: list[Track]) -> None:
    assert generate_catalog() == catalog
    assert generate_catalog(seed=9, n_tracks=500, n_artists=50) == generate_catalog(
        seed=9, n_tracks=500, n_artists=50
    )


def test_same_seed_gives_the_same_catalog_in_another_process(catalog: list[Track]) -> None:
    # A different hash seed would expose any dependence on set or dict-of-str ordering.
    script = (
        "import hashlib; from v5_shared.catalog import generate_catalog; "
        "print(hashlib.sha256(repr(generate_catalog()).encode()).hexdigest())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.stdout.strip() == _catalog_digest(catalog)


def test_different_seed_gives_a_different_catalog(catalog: list[Track]) -> None:
    other = generate_catalog(seed=6)
    assert other != catalog
    assert {t.artists for t in other} != {t.artists for t in catalog}


def test_default_catalog_is_fast_to_generate() -> None:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        generate_catalog()
        best = min(best, time.perf_counter() - started)
    assert best < 2.0


def test_default_catalog_size(catalog: list[Track]) -> None:
    assert len(catalog) >= 20_000
    assert len({artist for track in catalog for artist in track.artists}) >= 2_000
    genres = {genre for track in catalog for genre in track.genres}
    assert len(genres) >= 20
    assert genres >= REQUIRED_GENRES
    assert genres <= set(CANONICAL_GENRES)


def test_track_ids_are_unique_and_well_formed(catalog: list[Track]) -> None:
    ids = [track.track_id for track in catalog]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"v5t-\d{6}", track_id) for track_id in ids)
    assert ids[0] == "v5t-000001"


def test_features_are_within_their_ranges(catalog: list[Track]) -> None:
    for feature in ("valence", "energy", "danceability", "acousticness", "popularity"):
        values = np.array([getattr(track, feature) for track in catalog])
        assert values.min() >= 0.0, feature
        assert values.max() <= 1.0, feature
        assert values.std() > 0.05, f"{feature} barely varies"
    assert all(track.tempo is not None for track in catalog), "the generator always sets tempo"
    tempos = np.array([track.tempo for track in catalog])
    assert tempos.min() > 0
    assert 40 <= tempos.min() and tempos.max() <= 220
    years = [track.release_year for track in catalog]
    assert all(year is not None and 1960 <= year <= 2026 for year in years)


def test_durations_are_song_length_and_classical_runs_longer(catalog: list[Track]) -> None:
    songs = [t.duration_ms for t in catalog if "classical" not in t.genres]
    classical = [t.duration_ms for t in catalog if t.genres[0] == "classical"]
    assert min(songs) >= 2 * 60_000
    assert max(songs) <= 7 * 60_000
    assert np.mean(classical) > np.mean(songs) + 2 * 60_000


def test_genres_have_their_typical_sound(catalog: list[Track]) -> None:
    genre = _by_primary_genre(catalog)
    assert _mean(genre["metal"], "energy") > _mean(genre["ambient"], "energy") + 0.4
    assert _mean(genre["punk"], "energy") > _mean(genre["classical"], "energy") + 0.4
    assert _mean(genre["ambient"], "acousticness") > _mean(genre["metal"], "acousticness") + 0.4
    assert _mean(genre["lo-fi"], "acousticness") > _mean(genre["punk"], "acousticness") + 0.3
    assert _mean(genre["pop"], "valence") > _mean(genre["blues"], "valence") + 0.1
    assert _mean(genre["funk"], "valence") > _mean(genre["soul"], "valence") + 0.1
    assert _mean(genre["hip-hop"], "danceability") > _mean(genre["rock"], "danceability") + 0.1
    assert _mean(genre["punk"], "tempo") > _mean(genre["lo-fi"], "tempo") + 40


def test_tracks_carry_their_artists_genres(catalog: list[Track]) -> None:
    genres_of_artist: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for track in catalog:
        genres_of_artist[track.artists[0]].add(track.genres)
    # One genre tuple per artist: every track of an artist has the artist's genres.
    assert all(len(genres) == 1 for genres in genres_of_artist.values())
    assert any(len(next(iter(g))) == 2 for g in genres_of_artist.values()), "no secondary genres"


def test_artist_names_are_unique() -> None:
    # With as many tracks as artists, every artist has exactly one track.
    tracks = generate_catalog(seed=11, n_tracks=5000, n_artists=5000)
    primary_artists = [track.artists[0] for track in tracks]
    assert len(set(primary_artists)) == 5000


def test_artist_names_are_readable_and_avoid_genre_and_mood_words(catalog: list[Track]) -> None:
    reserved = MOOD_AND_ACTIVITY_WORDS + CANONICAL_GENRES + GENRE_SPELLINGS
    pattern = re.compile(
        r"(?<![\w&-])(?:" + "|".join(re.escape(word) for word in reserved) + r")(?![\w&-])",
        re.IGNORECASE,
    )
    names = {artist for track in catalog for artist in track.artists}
    for name in names:
        words = name.split()
        assert len(words) >= 2, f"{name!r} is a single word"
        assert all(word[0].isupper() for word in words), f"{name!r} is not title case"
        assert re.fullmatch(r"[A-Za-z ]+", name), f"{name!r} has odd characters"
        assert not pattern.search(name), f"{name!r} contains a genre or mood word"


def test_popularity_is_skewed_towards_the_long_tail(catalog: list[Track]) -> None:
    popularity = np.array([track.popularity for track in catalog])
    assert np.median(popularity) < popularity.mean()
    assert np.median(popularity) < 0.2
    hits = (popularity > 0.7).mean()
    assert 0 < hits < 0.05


def test_some_tracks_have_featured_artists_and_some_are_singles(catalog: list[Track]) -> None:
    featured = [track for track in catalog if len(track.artists) > 1]
    assert 0.02 < len(featured) / len(catalog) < 0.15
    sample = featured[0]
    assert sample.artist == f"{sample.artists[0]}, {sample.artists[1]}"
    assert any(track.album is None for track in catalog)
    assert sum(track.album is not None for track in catalog) > 0.9 * len(catalog)


@pytest.mark.parametrize(("n_tracks", "n_artists"), [(10, 0), (10, 11)])
def test_impossible_sizes_are_rejected(n_tracks: int, n_artists: int) -> None:
    with pytest.raises(ValueError):
        generate_catalog(n_tracks=n_tracks, n_artists=n_artists)
