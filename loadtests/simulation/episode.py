"""One listener's run against a system (the product in process under a policy, or a live
cluster): talk, get a list, listen to it track by track, answer each track, and what that
is worth.

An **interaction** is one recommendation: the listener may say something first (see
``speech.utterance``), asks for ``list_size`` tracks, hears them in the order served and
answers each with an event (``listeners.event_for``), which the system receives as a
reward and as weight feedback. Their mood responds to each track heard, and drifts between
interactions. Sessions (6-14 interactions, per the listener's plan) end by expiry: the
conversation context is forgotten, the learning state stays.

All of the listener's randomness comes from streams keyed by (seed, listener,
interaction), drawn in full whether used or not, so it is the same under every policy; the
system's own randomness (Thompson draws, scoring noise, random tracks) comes from a stream
keyed by (seed, listener) that each policy's run starts afresh.

**Regret** of an interaction: the mean expected reward of the ``list_size`` best tracks in
the whole catalog for this listener at this moment, minus the mean expected reward of the
tracks served (both under the hidden model, at the interaction's start). It is exact (no
sampling noise) and never negative.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from conversation_service.app import build_matcher
from conversation_service.understanding import EntityMatcher
from recommendation_service.catalog import CatalogIndex
from v5_shared.catalog.commands import DEFAULT_CATALOG_SEED
from v5_shared.catalog.generator import generate_catalog

from .listeners import (
    LISTEN_RATIO,
    POSITIVE,
    CatalogArrays,
    Listener,
    ListenerState,
    SessionPlan,
    TasteModel,
    end_interaction,
    event_for,
    expected_rewards,
    hear,
)
from .product import Served
from .speech import Vocabulary, utterance

LIST_SIZE = 5
# Uniforms per interaction: 8 for speech, one per served track (up to MAX_LIST_SIZE).
MAX_LIST_SIZE = 50
_SPEECH_DRAWS = 8


@dataclass(frozen=True)
class World:
    """What every run shares: the catalog (the product's default, generated), its index,
    the conversation service's entity matcher and the listeners' vocabulary."""

    catalog: CatalogIndex
    arrays: CatalogArrays
    matcher: EntityMatcher
    vocabulary: Vocabulary


def build_world(seed: int = DEFAULT_CATALOG_SEED) -> World:
    tracks = generate_catalog(seed)
    catalog = CatalogIndex(version=1, tracks=tracks)
    matcher = build_matcher(1, tracks)
    return World(catalog, CatalogArrays.of(catalog), matcher, Vocabulary(matcher))


class System(Protocol):
    def begin(self, listener_id: int) -> None: ...
    def end_session(self, listener_id: int) -> None: ...
    def say(self, listener_id: int, message: str) -> object: ...
    def recommend(self, listener_id: int, limit: int, rng: np.random.Generator) -> Served: ...
    def feedback(
        self, listener_id: int, served: Served, track: int, event: str, listen_ratio: float
    ) -> float: ...


@dataclass
class Record:
    """Per (listener, interaction): counts of events, the reward, the regret."""

    listeners: int
    interactions: int
    events: npt.NDArray[np.int64] = field(init=False)  # (L, N, 5) in listeners.EVENTS order
    reward: npt.NDArray[np.float64] = field(init=False)  # summed over the list
    heard: npt.NDArray[np.int64] = field(init=False)  # tracks answered
    regret: npt.NDArray[np.float64] = field(init=False)  # per track, see the module doc
    comfort: npt.NDArray[np.bool_] = field(init=False)
    valence: npt.NDArray[np.float64] = field(init=False)  # hidden, after the interaction
    start_valence: npt.NDArray[np.float64] = field(init=False)  # at the first interaction
    arms: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def __post_init__(self) -> None:
        shape = (self.listeners, self.interactions)
        self.events = np.zeros((*shape, 5), dtype=np.int64)
        self.reward = np.zeros(shape)
        self.heard = np.zeros(shape, dtype=np.int64)
        self.regret = np.zeros(shape)
        self.comfort = np.zeros(shape, dtype=bool)
        self.valence = np.zeros(shape)
        self.start_valence = np.zeros(self.listeners)


EVENT_COLUMN = {"dislike": 0, "skip": 1, "complete": 2, "like": 3, "save": 4}


def run_listener(
    world: World,
    listener: Listener,
    system: System,
    record: Record,
    row: int,
    *,
    seed: int,
    interactions: int,
    list_size: int = LIST_SIZE,
    drift: float | None = None,
    always_mood: bool = False,
) -> None:
    """The listener's whole run against ``system``, recorded in ``record`` row ``row``."""
    if not 1 <= list_size <= MAX_LIST_SIZE:
        raise ValueError(f"list_size must be in 1..{MAX_LIST_SIZE}")
    lid = listener.listener_id
    model = TasteModel(listener, world.catalog, world.arrays)
    state = ListenerState()
    system_rng = np.random.default_rng([seed, lid, 2])
    system.begin(lid)
    for i in range(interactions):
        plan = listener.session_at(i)
        opening = i == plan.start
        if opening:
            if i > 0:
                system.end_session(lid)
            state.start_session(plan)
        if i == 0:
            record.start_valence[row] = state.valence
        stream = np.random.default_rng([seed, lid, i, 1])
        draws = stream.random(_SPEECH_DRAWS + MAX_LIST_SIZE)
        noise = stream.standard_normal(2)

        message, told_mood = utterance(
            world.vocabulary,
            world.catalog,
            listener,
            state,
            draws[:_SPEECH_DRAWS].tolist(),
            opening=opening,
            always_mood=always_mood,
        )
        if message is not None:
            system.say(lid, message)
            record.messages += 1
            if told_mood:
                state.reported_valence = state.valence

        served = system.recommend(lid, list_size, system_rng)
        record.arms[served.arm] += 1
        record.comfort[row, i] = served.comfort

        expected = expected_rewards(model.utilities(state))
        k = min(len(served.tracks), expected.size)
        if k:
            best = float(np.partition(expected, expected.size - k)[expected.size - k :].mean())
            record.regret[row, i] = best - float(expected[served.tracks].mean())

        for j, track in enumerate(served.tracks):
            event = event_for(model.utility(state, track), float(draws[_SPEECH_DRAWS + j]))
            ratio = LISTEN_RATIO[event]
            record.reward[row, i] += system.feedback(lid, served, track, event, ratio)
            record.events[row, i, EVENT_COLUMN[event]] += 1
            record.heard[row, i] += 1
            hear(state, world.arrays, track, event)
        end_interaction(state, plan, (float(noise[0]), float(noise[1])), drift=drift)
        record.valence[row, i] = state.valence


def declining_listener(listener: Listener, seed: int, interactions: int) -> Listener:
    """The listener in one session of declining mood (the comfort experiment): they start
    in a fair mood and tell it before every recommendation."""
    rng = np.random.default_rng([seed, listener.listener_id, 9])
    plan = SessionPlan(
        start=0,
        length=interactions,
        valence=float(rng.uniform(0.0, 0.4)),
        arousal=float(rng.uniform(-0.4, 0.2)),
        kind="falling",
    )
    return dataclasses.replace(listener, sessions=(plan,), drift_affinity=None)


def like_share(record: Record) -> float:
    heard = int(record.heard.sum())
    positive = int(record.events[..., [EVENT_COLUMN[e] for e in POSITIVE]].sum())
    return positive / heard if heard else 0.0
