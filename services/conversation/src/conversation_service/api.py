"""Thin routes: understand the message, apply the turn atomically in Redis, answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from v5_shared import idempotency, learning_store
from v5_shared.auth import USER_SCOPED_RESPONSES, CurrentPrincipal, ensure_same_user
from v5_shared.catalog.watcher import CatalogWatcher
from v5_shared.datastores import DataStores
from v5_shared.domain.bandit import ARMS, prior_from_aggregate
from v5_shared.domain.comfort import comfort_applies
from v5_shared.domain.trajectory import valence_trend
from v5_shared.responses import FastJSONResponse
from v5_shared.routing import JSONRoute
from v5_shared.schemas import UserIdPath, iso
from v5_shared.sessions import SessionContext, SessionStore, TurnConflict, WeightedName

from .clarity import clarity
from .reply import compose_reply
from .schemas import (
    ArmOut,
    ContextOut,
    ContinueRequest,
    ContinueResponse,
    Entities,
    MoodOut,
    NamedWeight,
    RewardsOut,
    SessionStatus,
    TrajectoryOut,
    TrajectoryPoint,
    WindowTurn,
)
from .understanding import EntityMatcher, understand

conversation_router = APIRouter(
    prefix="/api/v1/v5/conversation", tags=["conversation"], route_class=JSONRoute
)
session_router = APIRouter(prefix="/api/v1/v5/session", tags=["session"], route_class=JSONRoute)


def _context_out(context: SessionContext, window: int) -> ContextOut:
    def named(items: list[Any]) -> list[NamedWeight]:
        return [NamedWeight(name=i.name, weight=i.weight) for i in items]

    return ContextOut(
        window=window,
        artists=named(context.artists),
        genres=named(context.genres),
        moods=named(context.moods),
    )


def _now() -> datetime:
    return datetime.now(UTC)


@conversation_router.post(
    "/continue", response_model=ContinueResponse, responses={**USER_SCOPED_RESPONSES, 409: {}}
)
async def continue_conversation(
    body: ContinueRequest, request: Request, principal: CurrentPrincipal
) -> Any:
    ensure_same_user(principal, body.user_id)
    store: SessionStore = request.app.state.sessions
    watcher: CatalogWatcher[EntityMatcher] = request.app.state.catalog
    idem = idempotency.for_request(request, "conversation/continue", body)
    understanding = understand(body.message, watcher.require())
    at = iso(_now()) or ""
    point = (
        None
        if understanding.mood is None
        else {
            "valence": understanding.mood.valence,
            "arousal": understanding.mood.arousal,
            "at": at,
        }
    )
    try:
        snapshot, replayed = await store.apply_turn(
            body.user_id,
            candidate_session_id=uuid.uuid4().hex,
            now_iso=at,
            turn_fields=understanding.turn_record(body.message, at),
            point_fields=point,
            mentions={
                "artists": understanding.artists,
                "genres": understanding.genres,
                "moods": understanding.moods,
            },
            idempotency=idem,
        )
    except TurnConflict:
        raise idempotency.conflict() from None

    valences = [p["valence"] for p in snapshot.points]
    trend, slope = valence_trend(valences)
    artists, genres, moods = snapshot.context.as_maps()
    clear = clarity(artists, genres, moods, turns=snapshot.turn)
    latest = valences[-1] if valences else None
    comfort = comfort_applies(
        trend, latest, low=request.app.state.settings.comfort_valence_threshold
    )
    reply = compose_reply(
        understanding,
        turn=snapshot.turn,
        trend=trend,
        clarity=clear,
        top_genres=[g.name for g in snapshot.context.genres[:3]],
        top_artists=[a.name for a in snapshot.context.artists[:3]],
        comfort=comfort,
        seed=f"{snapshot.session_id}:{snapshot.turn}",
    )
    mood = understanding.mood
    context = snapshot.context
    # Built as plain data in the shape of ContinueResponse (its schema documents it): this
    # is the hot path, and pydantic would build and then dump a dozen nested models.
    return FastJSONResponse(
        headers={"Idempotent-Replay": "true"} if replayed else None,
        content={
            "session_id": snapshot.session_id,
            "turn": snapshot.turn,
            "reply": reply,
            "entities": {
                "artists": understanding.artists,
                "genres": understanding.genres,
                "moods": understanding.moods,
            },
            "context": {
                "window": snapshot.window,
                "artists": _named(context.artists),
                "genres": _named(context.genres),
                "moods": _named(context.moods),
            },
            "mood": None
            if mood is None
            else {"label": mood.label, "valence": mood.valence, "arousal": mood.arousal},
            "trajectory": {"trend": trend, "points": len(valences), "valence_slope": slope},
            "clarity": clear,
            "activity": understanding.activity,
            "target_energy": understanding.target_energy,
            "comfort": comfort,
        },
    )


def _named(items: list[WeightedName]) -> list[dict[str, Any]]:
    return [{"name": i.name, "weight": i.weight} for i in items]


@session_router.get(
    "/{user_id}/status", response_model=SessionStatus, responses=USER_SCOPED_RESPONSES
)
async def session_status(user_id: UserIdPath, request: Request, principal: CurrentPrincipal) -> Any:
    ensure_same_user(principal, user_id)
    store: SessionStore = request.app.state.sessions
    stores: DataStores = request.app.state.stores
    session = await store.read(user_id)
    async with stores.connection() as conn:
        learned = await learning_store.listener_learning(conn, user_id, liked_limit=0)
    weights, arms, aggregate, rewards = (
        learned.weights,
        learned.arms,
        learned.aggregate,
        learned.rewards,
    )
    bandit: dict[str, ArmOut] = {}
    for arm in ARMS:
        state = arms.get(arm)
        if state is None:
            prior = prior_from_aggregate(aggregate.get(arm))
            bandit[arm] = ArmOut(alpha=prior.alpha, beta=prior.beta, pulls=0)
        else:
            bandit[arm] = ArmOut(alpha=state.alpha, beta=state.beta, pulls=state.pulls)
    valences = [p["valence"] for p in session.points]
    trend, slope = valence_trend(valences)
    expires_at = (
        iso(_now() + timedelta(seconds=session.ttl_seconds)) if session.ttl_seconds else None
    )
    return SessionStatus(
        user_id=user_id,
        session_id=session.session_id,
        active=session.active,
        turns=session.turns,
        window=[
            WindowTurn(
                turn=t["turn"],
                message=t["message"],
                mood=None if t.get("mood") is None else MoodOut(**t["mood"]),
                entities=Entities(**t["entities"]),
                at=t["at"],
            )
            for t in session.window
        ],
        context=_context_out(session.context, len(session.window)),
        trajectory=TrajectoryOut(
            trend=trend,
            valence_slope=slope,
            points=[
                TrajectoryPoint(
                    turn=p["turn"], valence=p["valence"], arousal=p["arousal"], at=p["at"]
                )
                for p in session.points
            ],
        ),
        weights=weights.weights,
        adjustment_count=weights.adjustment_count,
        bandit=bandit,
        rewards=RewardsOut(count=rewards.count, total=round(rewards.total, 6), mean=rewards.mean),
        created_at=session.created_at,
        last_active_at=session.last_active_at,
        expires_at=expires_at,
    )


@session_router.delete("/{user_id}", status_code=204, responses=USER_SCOPED_RESPONSES)
async def end_session(
    user_id: UserIdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    ensure_same_user(principal, user_id)
    store: SessionStore = request.app.state.sessions
    await store.delete(user_id)
    return Response(status_code=204)
