"""The product run in process: the recommendation and learning services' own domain code,
with the state they keep in Redis and PostgreSQL held in memory instead.

A recommendation is what ``POST /recommendation/adaptive`` does, minus its I/O: the
session (``SessionMirror``), ``build_listener``, ``eligible_arms``, the posteriors (a
listener's own, or ``prior_from_aggregate`` of the aggregate for an arm they have none
for), the policy's arm (``choose_arm`` for the product), ``arm_weights`` and
``scoring.recommend`` over a ``CatalogIndex`` of the generated catalog; then, as the
commit does, the served tracks go to the front of the novelty list and the arm's posterior
is created from the prior (the impression consumer's work).

Feedback is what ``POST /feedback/reward`` and ``POST /learning/weights/{user_id}``
(``{"action": "feedback"}``) do: ``reward_for`` and ``update_posterior`` on the listener's
posterior and on the aggregate; ``feedback_matches`` (the learning service's, over the
session and novelty list) and ``apply_feedback`` with the learning service's default
learning rate; likes and saves become liked tracks (the latest 50, as
``listener_learning`` reads them).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np

from conversation_service.understanding import EntityMatcher, Understanding, understand
from learning_service.matching import feedback_matches
from learning_service.settings import LearningSettings
from recommendation_service.catalog import CatalogIndex
from recommendation_service.listener import RequestedContext, build_listener
from recommendation_service.scoring import recommend
from v5_shared.domain.bandit import (
    UNIFORM,
    Posterior,
    arm_weights,
    eligible_arms,
    prior_from_aggregate,
    update_posterior,
)
from v5_shared.domain.rewards import reward_for
from v5_shared.domain.weights import FEEDBACK_TYPES, apply_feedback, default_weights
from v5_shared.settings import Settings

from .policies import Policy, choose
from .session import SessionMirror

_SETTINGS = Settings()
_LEARNING = LearningSettings()
NOVELTY_MEMORY = _SETTINGS.novelty_memory
COMFORT_LOW_VALENCE = _SETTINGS.comfort_valence_threshold
LEARNING_RATE = _LEARNING.weight_learning_rate
LIKED_LIMIT = 50  # learning_store.listener_learning's default
NO_REQUEST = RequestedContext(None, None, [], [])


@dataclass(frozen=True)
class Served:
    """One recommendation as the listener receives it."""

    recommendation_id: str
    arm: str
    propensity: float
    comfort: bool
    tracks: list[int]  # catalog indices, in the order served


@dataclass
class ListenerLearning:
    """What the product holds for one listener (Redis and PostgreSQL in production)."""

    session: SessionMirror = field(default_factory=SessionMirror)
    weights: dict[str, float] = field(default_factory=default_weights)
    adjustments: int = 0
    arms: dict[str, Posterior] = field(default_factory=dict)
    pulls: dict[str, int] = field(default_factory=dict)
    rewards: int = 0
    liked: list[str] = field(default_factory=list)  # newest first
    recent: list[str] = field(default_factory=list)  # newest first


class InProcessProduct:
    """The product for a population of listeners, under one policy."""

    def __init__(
        self,
        catalog: CatalogIndex,
        matcher: EntityMatcher,
        policy: Policy,
        *,
        comfort: bool = True,
    ) -> None:
        self.catalog = catalog
        self.matcher = matcher
        self.policy = policy
        self.comfort = comfort
        self.aggregate: dict[str, Posterior] = {}
        self.listeners: dict[int, ListenerLearning] = {}
        self._ids = itertools.count(1)

    def begin(self, listener_id: int) -> None:
        self.listeners[listener_id] = ListenerLearning()

    def end_session(self, listener_id: int) -> None:
        self.listeners[listener_id].session.end()

    def say(self, listener_id: int, message: str) -> Understanding:
        understanding = understand(message, self.matcher)
        self.listeners[listener_id].session.apply(message, understanding)
        return understanding

    def recommend(self, listener_id: int, limit: int, rng: np.random.Generator) -> Served:
        state = self.listeners[listener_id]
        policy = self.policy
        rec_id = f"r{next(self._ids)}"
        if policy.rule == "random_tracks":
            tracks = self._random_tracks(state, limit, rng)
            self._commit(state, tracks, None)
            return Served(rec_id, "random", 1.0, False, tracks)

        listener = build_listener(
            state.session.state,
            NO_REQUEST,
            liked_track_ids=state.liked[:LIKED_LIMIT],
            recent_track_ids=state.recent[:NOVELTY_MEMORY],
            exclude_track_ids=[],
            has_feedback=state.adjustments > 0 or state.rewards > 0,
            comfort_low_valence=COMFORT_LOW_VALENCE,
        )
        if not self.comfort and listener.comfort:
            listener = dataclasses.replace(listener, comfort=False)
        eligible = eligible_arms(comfort_applies=listener.comfort)
        posteriors = {
            arm: state.arms.get(arm) or prior_from_aggregate(self.aggregate.get(arm))
            for arm in eligible
        }
        arm, propensity = choose(policy, posteriors, eligible, rng)
        weights = arm_weights(arm, state.weights)
        scored = recommend(self.catalog, listener, weights, limit=limit, rng=rng)
        tracks = [item.index for item in scored]
        self._commit(state, tracks, arm if policy.learns else None)
        return Served(rec_id, arm, propensity, listener.comfort, tracks)

    def _random_tracks(
        self, state: ListenerLearning, limit: int, rng: np.random.Generator
    ) -> list[int]:
        recent = {self.catalog.by_id[t] for t in state.recent[:NOVELTY_MEMORY]}
        tracks: list[int] = []
        n = len(self.catalog.tracks)
        while len(tracks) < limit:
            index = int(rng.integers(n))
            if index not in recent and index not in tracks:
                tracks.append(index)
        return tracks

    def _commit(self, state: ListenerLearning, tracks: list[int], arm: str | None) -> None:
        ids = [self.catalog.tracks[i].track_id for i in tracks]
        # LPUSH of the served ids in order: the last served is the newest.
        state.recent = [*reversed(ids), *state.recent][:NOVELTY_MEMORY]
        if arm is not None:
            if arm not in state.arms:
                state.arms[arm] = prior_from_aggregate(self.aggregate.get(arm))
            state.pulls[arm] = state.pulls.get(arm, 0) + 1

    def feedback(
        self, listener_id: int, served: Served, track: int, event: str, listen_ratio: float
    ) -> float:
        """The listener's event on a served track; returns its reward."""
        value = reward_for(event, listen_ratio)
        if not self.policy.learns:
            return value
        state = self.listeners[listener_id]
        # POST /feedback/reward
        arm = served.arm
        prior = state.arms.get(arm) or prior_from_aggregate(self.aggregate.get(arm))
        state.arms[arm] = update_posterior(prior, value)
        self.aggregate[arm] = update_posterior(self.aggregate.get(arm, UNIFORM), value)
        state.rewards += 1
        # POST /learning/weights/{user_id} {"action": "feedback"}
        if event in FEEDBACK_TYPES:
            item = self.catalog.tracks[track]
            matches = feedback_matches(item, state.session.state, state.recent)
            state.weights = apply_feedback(
                state.weights, matches, event, learning_rate=LEARNING_RATE
            )
            state.adjustments += 1
        if event in ("like", "save"):
            track_id = self.catalog.tracks[track].track_id
            state.liked = [track_id, *(t for t in state.liked if t != track_id)][:LIKED_LIMIT]
        return value
