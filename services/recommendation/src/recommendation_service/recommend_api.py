"""POST /recommendation/adaptive: choose an arm by Thompson sampling, tilt the listener's
weights, score the catalog, log the impression."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request

import v5_shared.learning_store as learning_store
from v5_shared import idempotency, metrics
from v5_shared.auth import CurrentPrincipal, ensure_same_user
from v5_shared.catalog.genres import canonical_genre
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.datastores import DataStores
from v5_shared.domain.bandit import (
    Posterior,
    arm_weights,
    choose_arm,
    eligible_arms,
    prior_from_aggregate,
)
from v5_shared.domain.lexicon import mood_of_text
from v5_shared.learning_versions import learning_version_key
from v5_shared.recommendations import RecommendationLog, recent_key
from v5_shared.responses import FastJSONResponse
from v5_shared.routing import JSONRoute
from v5_shared.sessions import SessionStore

from .catalog import CatalogIndex
from .learning_cache import LearningCache
from .listener import RequestedContext, build_listener
from .schemas import AdaptiveRequest, AdaptiveResponse, RequestContext
from .scoring import recommend
from .settings import RecommendationSettings

recommendation_router = APIRouter(
    prefix="/api/v1/v5/recommendation", tags=["recommendation"], route_class=JSONRoute
)
metrics.expose_recommendation_series()


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["body", "context", field], "msg": message, "type": "value_error"}],
    )


def _requested(context: RequestContext | None, catalog: CatalogIndex) -> RequestedContext:
    if context is None:
        return RequestedContext(None, None, [], [])
    valence = arousal = None
    if context.mood is not None:
        point = mood_of_text(context.mood)
        if point is None:
            raise _unprocessable("mood", f"unknown mood {context.mood!r}")
        valence, arousal = point.valence, point.arousal
    genres: list[str] = []
    for name in context.genres or []:
        genre = canonical_genre(name) if name.strip() else ""
        if genre not in catalog.genre_names:
            raise _unprocessable("genres", f"unknown genre {name!r}")
        if genre not in genres:
            genres.append(genre)
    artists: list[str] = []
    for name in context.artists or []:
        artist = catalog.artist_by_lower.get(name.strip().lower())
        if artist is None:
            raise _unprocessable("artists", f"unknown artist {name!r}")
        if artist not in artists:
            artists.append(artist)
    return RequestedContext(valence, arousal, genres, artists)


@recommendation_router.post(
    "/adaptive",
    response_model=AdaptiveResponse,
    responses={401: {}, 403: {"description": "another user's user_id"}, 409: {}},
)
async def adaptive(body: AdaptiveRequest, request: Request, principal: CurrentPrincipal) -> Any:
    ensure_same_user(principal, body.user_id)
    user_id = body.user_id
    settings: RecommendationSettings = request.app.state.settings
    stores: DataStores = request.app.state.stores
    sessions: SessionStore = request.app.state.sessions
    log: RecommendationLog = request.app.state.recommendation_log
    watcher: CatalogWatcher[CatalogIndex] = request.app.state.catalog
    catalog = watcher.require()

    idem = idempotency.for_request(request, "recommendation/adaptive", body)
    if idem is not None:
        stored = await log.stored_response(user_id, idem.key)
        if stored is not None:
            return idempotency.replay(stored, idem)

    requested = _requested(body.context, catalog)

    # One Redis script: the session, the novelty list and the learning version; PostgreSQL
    # only when this replica does not hold that version of the learning state.
    read = await sessions.read_with(
        user_id,
        list_key=recent_key(user_id),
        list_length=log.novelty_memory,
        value_key=learning_version_key(user_id),
    )
    session, recent = read.session, read.extra_list
    cache: LearningCache = request.app.state.learning_cache
    learned = cache.get(user_id, read.value)
    if learned is None:
        async with stores.connection() as conn:
            learned = await learning_store.listener_learning(conn, user_id)
        cache.put(user_id, read.value, learned)
    weights, arms, aggregate = learned.weights, learned.arms, learned.aggregate

    listener = build_listener(
        session,
        requested,
        liked_track_ids=learned.liked_track_ids,
        recent_track_ids=recent,
        exclude_track_ids=body.exclude_track_ids or [],
        has_feedback=weights.adjustment_count > 0 or learned.rewards.count > 0,
        comfort_low_valence=settings.comfort_valence_threshold,
    )
    rng: np.random.Generator = request.app.state.rng
    eligible = eligible_arms(comfort_applies=listener.comfort)
    posteriors: dict[str, Posterior] = {}
    for arm in eligible:
        state = arms.get(arm)
        posteriors[arm] = (
            prior_from_aggregate(aggregate.get(arm))
            if state is None
            else Posterior(state.alpha, state.beta)
        )
    arm, propensity, probabilities = choose_arm(posteriors, eligible, rng)
    used_weights = arm_weights(arm, weights.weights)
    scored = recommend(catalog, listener, used_weights, limit=body.limit, rng=rng)

    recommendation_id = uuid.uuid4().hex
    # Built as plain data (the shape of AdaptiveResponse): this is the hot path, and the
    # payload is serialised once, with orjson.
    tracks: list[dict[str, Any]] = []
    for item in scored:
        track = catalog.tracks[item.index]
        tracks.append(
            {
                "track_id": track.track_id,
                "title": track.title,
                "artist": track.artist,
                "genres": list(track.genres),
                "valence": track.valence,
                "energy": track.energy,
                "popularity": track.popularity,
                "score": item.score,
                "reasons": item.reasons,
            }
        )
    payload = {
        "recommendation_id": recommendation_id,
        "strategy": arm,
        "cold_start": listener.cold_start,
        "comfort_boost": listener.comfort,
        "weights": used_weights,
        "tracks": tracks,
        "propensity": round(propensity, 6),
        "arm_probabilities": {k: round(v, 6) for k, v in probabilities.items()},
    }
    track_ids = [t["track_id"] for t in tracks]
    created_at = datetime.now(UTC).isoformat()
    replayed = await log.commit(
        user_id=user_id,
        recommendation_id=recommendation_id,
        response=payload,
        impression={
            "recommendation_id": recommendation_id,
            "user_id": user_id,
            "arm": arm,
            "propensity": propensity,
            "arm_probabilities": probabilities,
            "track_ids": track_ids,
            "scores": [t["score"] for t in tracks],
            "comfort": listener.comfort,
            "cold_start": listener.cold_start,
            "created_at": created_at,
        },
        track_ids=track_ids,
        idempotency=idem,
    )
    if replayed is not None and idem is not None:
        # A concurrent request with the same key committed first: answer as it did.
        return idempotency.replay(replayed, idem)
    metrics.count_recommendation(arm, listener.comfort)
    return FastJSONResponse(payload)
