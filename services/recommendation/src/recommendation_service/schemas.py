from __future__ import annotations

from typing import Annotated

from pydantic import Field

from v5_shared.schemas import RequestModel, ResponseModel, UserId


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


class RequestContext(RequestModel):
    mood: str | None = Field(default=None, min_length=1, max_length=64)
    genres: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=20
    )
    artists: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=20
    )


class AdaptiveRequest(RequestModel):
    user_id: UserId
    limit: int = Field(default=10, ge=1, le=50)
    context: RequestContext | None = None
    exclude_track_ids: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=500
    )


class RecommendedTrack(ResponseModel):
    track_id: str
    title: str
    artist: str
    genres: list[str]
    valence: float
    energy: float
    popularity: float
    score: float
    reasons: list[str]


class AdaptiveResponse(ResponseModel):
    recommendation_id: str
    strategy: str
    cold_start: bool
    comfort_boost: bool
    weights: dict[str, float]
    tracks: list[RecommendedTrack]
    propensity: float
    arm_probabilities: dict[str, float]
