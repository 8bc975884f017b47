"""The catalog held in memory: numpy arrays for vectorised scoring, plus the lookups that the
catalog endpoints answer from. Pure: built from a list of tracks, no I/O."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from v5_shared.catalog.model import Track


@dataclass(frozen=True)
class NamedCount:
    name: str
    tracks: int


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

    def track(self, track_id: str) -> Track | None:
        index = self.by_id.get(track_id)
        return None if index is None else self.tracks[index]

    def artist_page(
        self, *, limit: int, offset: int, genre: str | None
    ) -> tuple[list[NamedCount], int]:
        pool = self.artists if genre is None else self.artists_by_genre.get(genre, [])
        return pool[offset : offset + limit], len(pool)

    def popularity_summary(self) -> dict[str, float]:
        if not self.tracks:
            return {"mean": 0.0, "p50": 0.0, "p90": 0.0}
        p50, p90 = np.percentile(self.popularity, [50, 90])
        return {
            "mean": round(float(self.popularity.mean()), 6),
            "p50": round(float(p50), 6),
            "p90": round(float(p90), 6),
        }


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
