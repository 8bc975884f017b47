"""Thin routes over the in-memory catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from v5_shared.auth import USER_SCOPED_RESPONSES, CurrentPrincipal
from v5_shared.catalog.genres import canonical_genre
from v5_shared.catalog.model import Track
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.routing import JSONRoute

from .catalog import CatalogIndex, describe_track
from .schemas import ArtistsOut, GenresOut, NamedCountOut, StatsOut, TrackOut

catalog_router = APIRouter(
    prefix="/api/v1/v5/catalog",
    tags=["catalog"],
    route_class=JSONRoute,
    # Every catalog operation needs a token, though none is scoped to a user.
    responses={401: USER_SCOPED_RESPONSES[401]},
)


def _catalog(request: Request) -> CatalogIndex:
    watcher: CatalogWatcher[CatalogIndex] = request.app.state.catalog
    return watcher.require()


def track_out(track: Track, *, score: float, reasons: list[str]) -> TrackOut:
    fields = {name: getattr(track, name) for name in TrackOut.model_fields if hasattr(track, name)}
    return TrackOut.model_validate({**fields, "score": score, "reasons": reasons})


@catalog_router.get("/genres", response_model=GenresOut)
async def genres(request: Request, _principal: CurrentPrincipal) -> GenresOut:
    index = _catalog(request)
    return GenresOut(genres=[NamedCountOut(name=g.name, tracks=g.tracks) for g in index.genres])


@catalog_router.get("/artists", response_model=ArtistsOut)
async def artists(
    request: Request,
    _principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    genre: Annotated[str | None, Query(max_length=64)] = None,
) -> ArtistsOut:
    index = _catalog(request)
    wanted = canonical_genre(genre) if genre and genre.strip() else None
    page, total = index.artist_page(limit=limit, offset=offset, genre=wanted)
    return ArtistsOut(
        artists=[NamedCountOut(name=a.name, tracks=a.tracks) for a in page], total=total
    )


@catalog_router.get(
    "/tracks/{track_id}", response_model=TrackOut, responses={404: {"description": "unknown"}}
)
async def track(track_id: str, request: Request, _principal: CurrentPrincipal) -> TrackOut:
    found = _catalog(request).track(track_id)
    if found is None:
        raise HTTPException(status_code=404, detail="unknown track_id")
    # Outside a recommendation a track's score is its catalog popularity.
    return track_out(found, score=found.popularity, reasons=[describe_track(found)])


@catalog_router.get("/stats", response_model=StatsOut)
async def stats(request: Request, _principal: CurrentPrincipal) -> StatsOut:
    index = _catalog(request)
    return StatsOut.model_validate(
        {
            "tracks": len(index.tracks),
            "artists": len(index.artists),
            "genres": len(index.genres),
            "popularity": index.popularity_summary(),
            "version": index.version,
        }
    )
