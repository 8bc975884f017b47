"""Synthetic listeners with hidden tastes, and how they respond to what they hear.

Pure: numpy over the catalog's arrays, no I/O, no product code (the product never sees any
of this; it only sees the messages a listener sends and the events they answer with).

The hidden model, per listener:

- **Genres.** An affinity in [0, 1] per genre: one to three favourites (1.0, then lower),
  the other genres at a base level that is low for a *sharp* listener and up to 0.6 for a
  broad one. A track's genre affinity is 0.7 x its primary genre's + 0.3 x its best genre's.
  A few listeners (``DRIFT_SHARE``) drift: between two interactions of their run their
  favourites move, linearly, to other genres.
- **Artists.** Two to six favourite artists among their favourite genres' artists, with
  affinities 0.5-1; a track's artist affinity is its best credited artist's.
- **Mood.** A hidden mood (valence, arousal) in [-1, 1]^2 that moves: each session starts
  somewhere, drifts up, down, in a wave or not at all, and responds to what is heard (below).
  The listener wants tracks close to their mood: on the tracks' [0, 1] scale at
  ``((valence + 1) / 2 + lift, (arousal + 1) / 2)``, where ``lift`` is a personal liking
  for slightly brighter music (0-0.08).
- **Popularity.** Some like the mainstream, some the obscure: a term
  ``popularity_taste * 2 * (popularity - 0.15)``.
- **Novelty fatigue.** Each earlier hearing of the same track costs ``fatigue`` (up to
  three hearings).

The hidden utility of a track is

    u = genre_weight * genre + artist_weight * artist + mood_weight * closeness
        + popularity_taste * 2 * (popularity - 0.15) - fatigue * min(heard, 3)

with ``closeness = exp(-d^2 / (2 * 0.25^2))`` for the distance ``d`` between the track's
(valence, energy) and what the listener wants now. The weights differ per listener: how
much genre matters rises with the listener's sharpness.

**Responses.** An ordered logit: the listener's reaction is ``z = u + TEMPERATURE * L`` with
``L`` standard logistic noise, and the event is the band of ``z`` between the cut points
``CUTS``: dislike < skip < complete < like < save. The cut points are calibrated on the
catalog alone, never on a policy's results: a random catalog track is liked or saved about
5 % of the time, and the five best tracks for the listener at a session's start about 80 %
(4.4 % and 81 % over the default seed's first 100 listeners). The noise comes
from a uniform drawn per (listener, interaction, slot) from the listener's own stream, the
same for every policy, so the same track at the same moment always gets the same answer
whichever policy served it.
The probability of each event is therefore known exactly, and so is the **expected reward**
of any track: ``sum_e P(e) * reward_for(e, LISTEN_RATIO[e])`` with the product's own
``reward_for``.

**Mood response (the iso principle).** A heard track pulls the valence toward its own
valence ``2 * track_valence - 1`` by

    dv = MOOD_RATE * heard * d * exp(-(d / MOOD_REACH)^2),  d = track valence - mood valence

where ``heard`` is the share of the track listened to (1 for complete/like/save, 0.15 for
a skip, 0.05 for a dislike). The pull is strongest for a track a little above or below
the mood (|d| = MOOD_REACH / sqrt 2, about 0.35) and fades for a track far from it: a
euphoric track played to a sad listener barely reaches them (and is likely skipped), a
track just above their mood lifts them, one at their mood holds them where they are. That
is the iso principle's premise: meet the mood, then lead it. Arousal follows the track's
energy more weakly (``AROUSAL_RATE``). After each interaction the session's drift and a
little noise (``MOOD_NOISE``) are added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from recommendation_service.catalog import CatalogIndex
from v5_shared.domain.rewards import reward_for

F64 = npt.NDArray[np.float64]

EVENTS: tuple[str, ...] = ("dislike", "skip", "complete", "like", "save")
POSITIVE = frozenset({"like", "save"})
# Cut points on z between the events above (four cuts, five bands).
CUTS: tuple[float, float, float, float] = (-0.2, 1.6, 2.1, 2.7)
TEMPERATURE = 0.35
# Share of a track heard, per event: what the reward and the mood response see.
LISTEN_RATIO: dict[str, float] = {
    "dislike": 0.05,
    "skip": 0.15,
    "complete": 1.0,
    "like": 1.0,
    "save": 1.0,
}
REWARDS: dict[str, float] = {event: reward_for(event, LISTEN_RATIO[event]) for event in EVENTS}
_REWARD_VECTOR = np.array([REWARDS[e] for e in EVENTS])

PRIMARY_GENRE_SHARE = 0.7
CLOSENESS_WIDTH = 0.25
POPULARITY_PIVOT = 0.15
MAX_FATIGUE_HEARINGS = 3
MOOD_RATE = 0.1
MOOD_REACH = 0.5
AROUSAL_RATE = 0.05
MOOD_NOISE = 0.04
DRIFT_SHARE = 0.12
# Per-interaction drift of the valence, by the kind of session.
SESSION_DRIFTS: dict[str, float] = {"rising": 0.04, "falling": -0.04, "flat": 0.0, "wave": 0.0}
WAVE_AMPLITUDE = 0.06


@dataclass(frozen=True)
class CatalogArrays:
    """What the listener model reads per track, as arrays over the catalog."""

    valence: F64
    energy: F64
    popularity: F64
    primary_genre: npt.NDArray[np.intp]  # genre column (-1: none)
    genre_set_of: npt.NDArray[np.intp]
    set_genres: list[tuple[int, ...]]
    n_genres: int
    genre_sizes: F64  # tracks per genre column

    @staticmethod
    def of(catalog: CatalogIndex) -> CatalogArrays:
        return CatalogArrays(
            valence=catalog.valence.astype(np.float64),
            energy=catalog.energy.astype(np.float64),
            popularity=catalog.popularity.astype(np.float64),
            primary_genre=catalog.primary_genre.astype(np.intp),
            genre_set_of=catalog.genre_set_of,
            set_genres=catalog.set_genres,
            n_genres=len(catalog.genre_names),
            genre_sizes=np.diff(catalog.genre_track_ptr).astype(np.float64),
        )


@dataclass(frozen=True)
class SessionPlan:
    start: int  # first interaction of the session (0-based, over the listener's run)
    length: int
    valence: float  # hidden mood at the start
    arousal: float
    kind: str  # a key of SESSION_DRIFTS


@dataclass(frozen=True)
class Listener:
    """A listener's hidden taste and habits; never shown to the product."""

    listener_id: int
    genre_affinity: F64  # per genre column, [0, 1]
    drift_affinity: F64 | None  # where a drifting listener's affinity moves to
    drift_span: tuple[int, int]  # interactions over which it moves
    artist_affinity: dict[int, float]  # artist id -> [0, 1]
    sharpness: float  # [0, 1]: 1 = one genre and nothing else
    genre_weight: float
    artist_weight: float
    mood_weight: float
    popularity_taste: float
    lift: float
    fatigue: float
    # Habits of speech: chance of naming a genre / an artist / the mood at a session's
    # start, and of saying something again before a later recommendation.
    names_genre: float
    names_artist: float
    reports_mood: float
    talks_again: float
    sessions: tuple[SessionPlan, ...]

    def affinity_at(self, interaction: int) -> F64:
        if self.drift_affinity is None:
            return self.genre_affinity
        start, end = self.drift_span
        share = min(max((interaction - start) / max(end - start, 1), 0.0), 1.0)
        if share <= 0.0:
            return self.genre_affinity
        return (1.0 - share) * self.genre_affinity + share * self.drift_affinity

    def session_at(self, interaction: int) -> SessionPlan:
        for plan in self.sessions:
            if plan.start <= interaction < plan.start + plan.length:
                return plan
        return self.sessions[-1]


def _favourite_genres(rng: np.random.Generator, arrays: CatalogArrays, count: int) -> list[int]:
    # Listeners are drawn to genres roughly as the catalog holds them (more pop fans than
    # gospel fans), flattened a little.
    weights = np.sqrt(arrays.genre_sizes)
    chosen = rng.choice(arrays.n_genres, size=count, replace=False, p=weights / weights.sum())
    return [int(g) for g in chosen]


def _affinity(
    rng: np.random.Generator, arrays: CatalogArrays, favourites: list[int], sharpness: float
) -> F64:
    base = (1.0 - sharpness) * rng.uniform(0.0, 0.6, size=arrays.n_genres)
    levels = (1.0, rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.7))
    for genre, level in zip(favourites, levels, strict=False):
        base[genre] = max(base[genre], level)
    return base


def make_listener(
    listener_id: int,
    catalog: CatalogIndex,
    arrays: CatalogArrays,
    *,
    seed: int,
    interactions: int,
) -> Listener:
    """One listener of the population, from its own stream: the same for every policy."""
    rng = np.random.default_rng([seed, listener_id, 0])
    sharpness = float(rng.uniform(0.2, 1.0))
    n_favourites = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    favourites = _favourite_genres(rng, arrays, n_favourites)
    affinity = _affinity(rng, arrays, favourites, sharpness)

    drift_affinity: F64 | None = None
    drift_span = (0, 0)
    if rng.random() < DRIFT_SHARE:
        others = [g for g in _favourite_genres(rng, arrays, 4) if g not in favourites]
        drift_affinity = _affinity(rng, arrays, others[:n_favourites] or others[:1], sharpness)
        start = int(rng.integers(interactions // 4, interactions // 2 + 1))
        drift_span = (start, start + max(interactions // 3, 1))

    artist_affinity: dict[int, float] = {}
    pool: list[int] = []
    for genre in favourites:
        names = catalog.artists_by_genre.get(catalog.genre_names[genre], [])
        pool.extend(catalog.artist_key[a.name.lower()] for a in names if a.tracks >= 3)
    if pool:
        count = min(int(rng.integers(2, 7)), len(pool))
        for artist in rng.choice(np.array(sorted(set(pool))), size=count, replace=False):
            artist_affinity[int(artist)] = float(rng.uniform(0.5, 1.0))

    sessions: list[SessionPlan] = []
    start = 0
    while start < interactions:
        length = int(rng.integers(6, 15))
        kind = str(rng.choice(list(SESSION_DRIFTS)))
        sessions.append(
            SessionPlan(
                start=start,
                length=length,
                valence=float(rng.uniform(-0.5, 0.7)),
                arousal=float(rng.uniform(-0.6, 0.6)),
                kind=kind,
            )
        )
        start += length

    return Listener(
        listener_id=listener_id,
        genre_affinity=affinity,
        drift_affinity=drift_affinity,
        drift_span=drift_span,
        artist_affinity=artist_affinity,
        sharpness=sharpness,
        genre_weight=0.8 + 1.4 * sharpness,
        artist_weight=float(rng.uniform(0.3, 1.0)),
        mood_weight=float(rng.uniform(0.3, 1.4)),
        popularity_taste=float(np.clip(rng.normal(0.2, 0.4), -0.6, 1.0)),
        lift=float(rng.uniform(0.0, 0.08)),
        fatigue=float(rng.uniform(0.1, 0.35)),
        names_genre=float(rng.uniform(0.3, 0.9)),
        names_artist=float(rng.uniform(0.05, 0.4)),
        reports_mood=float(rng.uniform(0.5, 0.95)),
        talks_again=float(rng.uniform(0.2, 0.6)),
        sessions=tuple(sessions),
    )


def make_population(
    catalog: CatalogIndex, arrays: CatalogArrays, *, count: int, seed: int, interactions: int
) -> list[Listener]:
    return [
        make_listener(i, catalog, arrays, seed=seed, interactions=interactions)
        for i in range(count)
    ]


@dataclass
class ListenerState:
    """What changes while a listener listens: their mood and what they have heard."""

    valence: float = 0.0
    arousal: float = 0.0
    interaction: int = 0
    heard: dict[int, int] = field(default_factory=dict)  # track index -> hearings
    reported_valence: float | None = None  # the last mood they told the system

    def start_session(self, plan: SessionPlan) -> None:
        self.valence, self.arousal = plan.valence, plan.arousal
        self.reported_valence = None


class TasteModel:
    """A listener's hidden utilities over the catalog, with what is cached per listener."""

    def __init__(self, listener: Listener, catalog: CatalogIndex, arrays: CatalogArrays) -> None:
        self.listener = listener
        self.arrays = arrays
        artist = np.zeros(len(catalog.tracks))
        for artist_id, value in listener.artist_affinity.items():
            tracks = catalog.artist_tracks(artist_id)
            artist[tracks] = np.maximum(artist[tracks], value)
        popularity = arrays.popularity - POPULARITY_PIVOT
        # The artist and popularity terms: they depend on neither the mood nor the moment.
        self._fixed = listener.artist_weight * artist + (
            listener.popularity_taste * 2.0 * popularity
        )
        self._genre_cache: tuple[int, F64] | None = None

    def _lasting_scores(self, interaction: int) -> F64:
        """Genre, artist and popularity terms per track (moving only for a drifter)."""
        listener = self.listener
        key = 0 if listener.drift_affinity is None else interaction
        if self._genre_cache is None or self._genre_cache[0] != key:
            affinity = listener.affinity_at(interaction)
            arrays = self.arrays
            per_set = np.array(
                [max((affinity[g] for g in genres), default=0.0) for genres in arrays.set_genres]
            )
            primary = np.where(arrays.primary_genre >= 0, affinity[arrays.primary_genre], 0.0)
            genre = (
                PRIMARY_GENRE_SHARE * primary
                + (1 - PRIMARY_GENRE_SHARE) * per_set[arrays.genre_set_of]
            )
            self._genre_cache = (key, listener.genre_weight * genre + self._fixed)
        return self._genre_cache[1]

    def wanted(self, state: ListenerState) -> tuple[float, float]:
        """The (valence, energy) on the tracks' scale that the listener wants now."""
        v = min(max((state.valence + 1.0) / 2.0 + self.listener.lift, 0.0), 1.0)
        e = min(max((state.arousal + 1.0) / 2.0, 0.0), 1.0)
        return v, e

    def utilities(self, state: ListenerState) -> F64:
        """The hidden utility of every catalog track, now."""
        want_v, want_e = self.wanted(state)
        arrays = self.arrays
        dist2 = (arrays.valence - want_v) ** 2 + (arrays.energy - want_e) ** 2
        closeness = np.exp(-dist2 / (2.0 * CLOSENESS_WIDTH**2))
        u = self._lasting_scores(state.interaction) + self.listener.mood_weight * closeness
        if state.heard:
            heard = np.fromiter(state.heard, dtype=np.intp, count=len(state.heard))
            times = np.fromiter(state.heard.values(), dtype=np.float64, count=len(state.heard))
            u[heard] -= self.listener.fatigue * np.minimum(times, MAX_FATIGUE_HEARINGS)
        return u

    def utility(self, state: ListenerState, track: int) -> float:
        """The hidden utility of one track, now (the same as ``utilities(state)[track]``)."""
        want_v, want_e = self.wanted(state)
        arrays = self.arrays
        dist2 = (arrays.valence[track] - want_v) ** 2 + (arrays.energy[track] - want_e) ** 2
        closeness = math.exp(-dist2 / (2.0 * CLOSENESS_WIDTH**2))
        u = float(self._lasting_scores(state.interaction)[track])
        u += self.listener.mood_weight * closeness
        times = state.heard.get(track, 0)
        return u - self.listener.fatigue * min(times, MAX_FATIGUE_HEARINGS)


def event_probabilities(utility: F64) -> npt.NDArray[np.float64]:
    """P(event) per utility, shape (n, 5) in ``EVENTS`` order."""
    cuts = np.asarray(CUTS)
    # P(z < c) for each cut: the logistic CDF at (c - u) / T.
    below = 1.0 / (1.0 + np.exp(-(cuts[None, :] - utility[:, None]) / TEMPERATURE))
    bounds = np.concatenate(
        [np.zeros((utility.size, 1)), below, np.ones((utility.size, 1))], axis=1
    )
    return np.diff(bounds, axis=1)


def expected_rewards(utility: F64) -> F64:
    """The expected reward of tracks with these utilities (see the module docstring)."""
    return event_probabilities(utility) @ _REWARD_VECTOR


def like_probabilities(utility: F64) -> F64:
    """P(like or save) per utility."""
    return 1.0 / (1.0 + np.exp(-(utility - CUTS[2]) / TEMPERATURE))


def event_for(utility: float, uniform: float) -> str:
    """The listener's answer to a track of this utility, given their noise draw in (0, 1)."""
    uniform = min(max(uniform, 1e-12), 1.0 - 1e-12)
    z = utility + TEMPERATURE * math.log(uniform / (1.0 - uniform))
    for event, cut in zip(EVENTS, CUTS, strict=False):
        if z < cut:
            return event
    return EVENTS[-1]


def mood_pull(mood_valence: float, track_valence: float) -> float:
    """The iso-principle response: the valence change from hearing a track in full."""
    d = (2.0 * track_valence - 1.0) - mood_valence
    return MOOD_RATE * d * math.exp(-((d / MOOD_REACH) ** 2))


def hear(state: ListenerState, arrays: CatalogArrays, track: int, event: str) -> None:
    """The listener heard (part of) a track: their mood responds and they remember it."""
    heard = LISTEN_RATIO[event]
    state.valence = _clip(state.valence + heard * mood_pull(state.valence, arrays.valence[track]))
    target_arousal = 2.0 * float(arrays.energy[track]) - 1.0
    state.arousal = _clip(state.arousal + heard * AROUSAL_RATE * (target_arousal - state.arousal))
    state.heard[track] = state.heard.get(track, 0) + 1


def end_interaction(
    state: ListenerState, plan: SessionPlan, noise: tuple[float, float], *, drift: float | None
) -> None:
    """Between two recommendations: the session's drift and a little noise."""
    step = SESSION_DRIFTS[plan.kind] if drift is None else drift
    if plan.kind == "wave" and drift is None:
        phase = 2.0 * math.pi * (state.interaction - plan.start) / max(plan.length, 1)
        step = WAVE_AMPLITUDE * math.cos(phase)
    state.valence = _clip(state.valence + step + MOOD_NOISE * noise[0])
    state.arousal = _clip(state.arousal + MOOD_NOISE * noise[1])
    state.interaction += 1


def _clip(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else float(value)
