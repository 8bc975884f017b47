from __future__ import annotations

from v5_shared.schemas import ResponseModel


class TrackOut(ResponseModel):
    track_id: str
    title: str
    artist: str
    artists: list[str]
    album: str | None
    genres: list[str]
    valence: float
    energy: float
    danceability: float
    acousticness: float
    tempo: float | None
    popularity: float
    release_year: int | None
    duration_ms: int
    score: float
    reasons: list[str]


class NamedCountOut(ResponseModel):
    name: str
    tracks: int


class GenresOut(ResponseModel):
    genres: list[NamedCountOut]


class ArtistsOut(ResponseModel):
    artists: list[NamedCountOut]
    total: int


class PopularityOut(ResponseModel):
    mean: float
    p50: float
    p90: float


class StatsOut(ResponseModel):
    tracks: int
    artists: int
    genres: int
    popularity: PopularityOut
    version: int
