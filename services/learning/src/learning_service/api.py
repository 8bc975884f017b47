"""Thin routes for the weights and rewards. Every write is one PostgreSQL transaction that
also records the Idempotency-Key, under a row lock or in single atomic statements; once it
has committed, the listener's learning version moves so that every recommendation replica
rereads it."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException, Request

from v5_shared import idempotency, learning_store, metrics
from v5_shared.auth import USER_SCOPED_RESPONSES, CurrentPrincipal, ensure_same_user
from v5_shared.catalog.model import Track
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.datastores import DataStores
from v5_shared.domain.bandit import prior_from_aggregate
from v5_shared.domain.rewards import reward_for
from v5_shared.domain.weights import apply_explicit, apply_feedback, default_weights
from v5_shared.learning_versions import mark_changed
from v5_shared.recommendations import RecommendationLog
from v5_shared.responses import FastJSONResponse
from v5_shared.routing import JSONRoute
from v5_shared.schemas import UserIdPath, iso
from v5_shared.sessions import SessionStore

from .matching import feedback_matches
from .schemas import (
    ExplicitAction,
    FeedbackAction,
    PosteriorOut,
    RewardOut,
    RewardRequest,
    WeightsAction,
    WeightsOut,
)
from .settings import LearningSettings

learning_router = APIRouter(prefix="/api/v1/v5/learning", tags=["learning"], route_class=JSONRoute)
feedback_router = APIRouter(prefix="/api/v1/v5/feedback", tags=["feedback"], route_class=JSONRoute)
metrics.expose_learning_series()

USER_RESPONSES = {
    **USER_SCOPED_RESPONSES,
    404: {"description": "unknown track_id or recommendation_id"},
}
WRITE_RESPONSES = {
    **USER_RESPONSES,
    409: {"description": "Idempotency-Key reused with another body"},
}


def _weights_out(user_id: str, state: learning_store.WeightsState) -> WeightsOut:
    return WeightsOut(
        user_id=user_id,
        weights=state.weights,
        adjustment_count=state.adjustment_count,
        updated_at=iso(state.updated_at),
    )


@learning_router.get("/weights/{user_id}", response_model=WeightsOut, responses=USER_RESPONSES)
async def get_weights(user_id: UserIdPath, request: Request, principal: CurrentPrincipal) -> Any:
    ensure_same_user(principal, user_id)
    stores: DataStores = request.app.state.stores
    async with stores.connection() as conn:
        state = await learning_store.weights_of(conn, user_id)
    return _weights_out(user_id, state)


async def _feedback_matches(request: Request, user_id: str, track: Track) -> dict[str, float]:
    """How strongly the track matched each feature for this listener right now."""
    sessions: SessionStore = request.app.state.sessions
    log: RecommendationLog = request.app.state.recommendation_log
    session = await sessions.read(user_id)
    recent = await log.recent_track_ids(user_id)
    return feedback_matches(track, session, recent)


@learning_router.post("/weights/{user_id}", response_model=WeightsOut, responses=WRITE_RESPONSES)
async def post_weights(
    user_id: UserIdPath,
    request: Request,
    principal: CurrentPrincipal,
    action: WeightsAction,
) -> Any:
    ensure_same_user(principal, user_id)
    settings: LearningSettings = request.app.state.settings
    stores: DataStores = request.app.state.stores
    idem = idempotency.for_request(request, f"learning/weights/{user_id}", action)
    matches: dict[str, float] | None = None
    if isinstance(action, FeedbackAction):
        catalog: CatalogWatcher[dict[str, Track]] = request.app.state.catalog
        track = catalog.require().get(action.track_id)
        if track is None:
            raise HTTPException(status_code=404, detail="unknown track_id")
        matches = await _feedback_matches(request, user_id, track)

    stored: idempotency.StoredResponse | None = None
    async with stores.transaction() as conn:
        if idem is not None:
            stored = await idempotency.pg_claim(conn, user_id, idem)
        if stored is None:
            payload = await _adjust_weights(conn, user_id, action, matches, settings)
            if idem is not None:
                await idempotency.pg_store(conn, user_id, idem, 200, payload)
    if stored is None and isinstance(action, FeedbackAction):
        metrics.count_weight_feedback(action.feedback)
    # After the commit; on a replay too, in case the first attempt failed right here.
    await mark_changed(stores.redis, [user_id])
    if stored is not None and idem is not None:
        return idempotency.replay(stored, idem)
    return FastJSONResponse(payload)


async def _adjust_weights(
    conn: asyncpg.Connection,
    user_id: str,
    action: WeightsAction,
    matches: dict[str, float] | None,
    settings: LearningSettings,
) -> dict[str, Any]:
    """Lock the weights row, apply the action, record the change; the response body."""
    current = await learning_store.lock_weights(conn, user_id)
    if isinstance(action, FeedbackAction):
        assert matches is not None
        after = apply_feedback(
            current.weights,
            matches,
            action.feedback,
            learning_rate=settings.weight_learning_rate,
        )
        saved = await learning_store.save_weights(
            conn,
            user_id,
            action="feedback",
            before=current.weights,
            after=after,
            track_id=action.track_id,
            feedback=action.feedback,
        )
    elif isinstance(action, ExplicitAction):
        after = apply_explicit(current.weights, action.weights)
        saved = await learning_store.save_weights(
            conn, user_id, action="explicit", before=current.weights, after=after
        )
    else:
        saved = await learning_store.save_weights(
            conn, user_id, action="reset", before=current.weights, after=default_weights()
        )
    return _weights_out(user_id, saved).model_dump(mode="json")


@feedback_router.post(
    "/reward",
    response_model=RewardOut,
    responses={**WRITE_RESPONSES, 422: {"description": "track not in the recommendation"}},
)
async def reward(body: RewardRequest, request: Request, principal: CurrentPrincipal) -> Any:
    ensure_same_user(principal, body.user_id)
    stores: DataStores = request.app.state.stores
    log: RecommendationLog = request.app.state.recommendation_log
    idem = idempotency.for_request(request, "feedback/reward", body)

    served = await log.served(body.recommendation_id)
    if served is None:
        async with stores.connection() as conn:
            served = await learning_store.recommendation_of(conn, body.recommendation_id)
    if served is None:
        raise HTTPException(status_code=404, detail="unknown recommendation_id")
    if served["user_id"] != body.user_id:
        raise HTTPException(status_code=403, detail="forbidden: that recommendation is not yours")
    if body.track_id not in served["track_ids"]:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["body", "track_id"],
                    "msg": "the recommendation did not contain this track",
                    "type": "value_error",
                }
            ],
        )
    arm = served["arm"]
    value = reward_for(body.event, body.listen_ratio)
    stored: idempotency.StoredResponse | None = None
    async with stores.transaction() as conn:
        if idem is not None:
            stored = await idempotency.pg_claim(conn, body.user_id, idem)
        if stored is None:
            payload = await _record_reward(conn, body, arm, value)
            if idem is not None:
                await idempotency.pg_store(conn, body.user_id, idem, 200, payload)
    if stored is None:
        metrics.count_reward(arm, body.event, value)
    await mark_changed(stores.redis, [body.user_id])
    if stored is not None and idem is not None:
        return idempotency.replay(stored, idem)
    return FastJSONResponse(payload)


async def _record_reward(
    conn: asyncpg.Connection, body: RewardRequest, arm: str, value: float
) -> dict[str, Any]:
    """Add the reward to the posteriors and log the event; the response body."""
    aggregate = await learning_store.aggregate_posteriors(conn)
    posterior = await learning_store.apply_reward(
        conn,
        body.user_id,
        arm,
        prior=prior_from_aggregate(aggregate.get(arm)),
        alpha_increment=(1 + value) / 2,
        beta_increment=(1 - value) / 2,
    )
    await learning_store.insert_feedback_event(
        conn,
        user_id=body.user_id,
        recommendation_id=body.recommendation_id,
        track_id=body.track_id,
        event=body.event,
        listen_ratio=body.listen_ratio,
        reward=value,
        arm=arm,
    )
    return RewardOut(
        reward=round(value, 6),
        strategy=arm,
        posterior=PosteriorOut(alpha=posterior.alpha, beta=posterior.beta),
    ).model_dump(mode="json")
