"""The nine per-user scoring weights: defaults, explicit edits and learning from feedback.

Pure functions over plain mappings, no I/O: the learning service persists and audits the
results, the recommendation service reads them. Every function returns a fresh ``dict``
with exactly the nine names in ``WEIGHT_NAMES`` order, so callers can store or compare
results without normalising them first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from types import MappingProxyType

WEIGHT_NAMES: tuple[str, ...] = (
    "genre_match",
    "artist_match",
    "mood_match",
    "energy_match",
    "valence_match",
    "taste_match",
    "popularity",
    "novelty",
    "diversity",
)

# Read-only so that no caller can change the defaults every new user gets; use
# default_weights() for a mutable copy.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    dict(zip(WEIGHT_NAMES, (0.8, 0.6, 0.7, 0.5, 0.5, 0.6, 0.4, 0.3, 0.3), strict=True))
)

FEEDBACK_TYPES: tuple[str, ...] = ("like", "dislike", "skip", "save", "complete")

# Direction and size of a feedback's step, as a multiple of learning_rate * match strength.
# A save is a stronger commitment than a like (the listener wants the track again), a
# complete is only a weak positive (it may just have played in the background), and a
# dislike is an explicit rejection where a skip may only mean "not now".
FEEDBACK_FACTORS: Mapping[str, float] = MappingProxyType(
    {"like": 1.0, "dislike": -1.0, "skip": -0.5, "save": 1.5, "complete": 0.3}
)

DEFAULT_LEARNING_RATE = 0.05

# Stored weights are rounded so that repeated updates do not accumulate float noise in the
# database or the audit log (before/after values compare equal when nothing moved).
_DECIMALS = 6

# How far (on the [0, 1] feature scale) a track may sit from the listener's target valence
# or energy before it stops matching at all: the match falls linearly from 1 at the target
# to 0 at this distance, so only tracks reasonably close to the target count as matched.
MOOD_MATCH_WIDTH = 0.5


class WeightValidationError(ValueError):
    """An explicit weight update names an unknown weight or carries an invalid value."""


def default_weights() -> dict[str, float]:
    """A fresh, mutable copy of the defaults, in ``WEIGHT_NAMES`` order."""
    return dict(DEFAULT_WEIGHTS)


def validate_explicit(updates: Mapping[str, object]) -> dict[str, float]:
    """Check a client's partial weight update and return it as ``{name: float}``.

    Raises ``WeightValidationError`` for an unknown weight name, a value that is not a
    real number (bools and numeric strings included), NaN or infinity, or a value outside
    [0, 1]; both bounds are allowed. All problems are reported in one message so a client
    can fix its request in one go. The result keeps ``WEIGHT_NAMES`` order.
    """
    problems: list[str] = []
    accepted: dict[str, float] = {}
    for name, value in updates.items():
        if name not in DEFAULT_WEIGHTS:
            expected = ", ".join(WEIGHT_NAMES)
            problems.append(f"unknown weight {name!r} (expected one of: {expected})")
            continue
        # bool is an int subclass, but True/False as a weight is a client mistake, not 1/0.
        if isinstance(value, bool) or not isinstance(value, Real):
            problems.append(f"weight {name!r} must be a number, got {type(value).__name__}")
            continue
        number = float(value)
        if not math.isfinite(number):
            problems.append(f"weight {name!r} must be finite, got {value!r}")
        elif not 0.0 <= number <= 1.0:
            problems.append(f"weight {name!r} must be in [0, 1], got {value!r}")
        else:
            accepted[name] = number
    if problems:
        raise WeightValidationError("; ".join(problems))
    return {name: accepted[name] for name in WEIGHT_NAMES if name in accepted}


def complete_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """All nine weights in order: missing names take their default, unknown names are
    dropped and values are clipped to [0, 1].

    Stored rows written by an older version (or a hand-edited database) must not break
    scoring, so reading is lenient; writing through ``validate_explicit`` is strict.
    """
    result: dict[str, float] = {}
    for name in WEIGHT_NAMES:
        raw: object = weights.get(name, DEFAULT_WEIGHTS[name])
        value = DEFAULT_WEIGHTS[name]
        if isinstance(raw, Real) and not isinstance(raw, bool) and math.isfinite(float(raw)):
            value = float(raw)
        result[name] = _clip01(value)
    return result


def apply_explicit(weights: Mapping[str, float], updates: Mapping[str, float]) -> dict[str, float]:
    """Set the weights named in ``updates`` (a partial update) and keep the others.

    ``updates`` is validated again (cheap, and this function may be called without going
    through the HTTP schema first), so an invalid update raises ``WeightValidationError``.
    Values are kept exactly as given (not rounded), so a client reads back what it set.
    """
    result = complete_weights(weights)
    result.update(validate_explicit(updates))
    return result


def apply_feedback(
    weights: Mapping[str, float],
    matched: Mapping[str, float],
    feedback: str,
    *,
    learning_rate: float = DEFAULT_LEARNING_RATE,
) -> dict[str, float]:
    """Move the weights of the features a track matched, in the feedback's direction.

    Each matched weight w takes a step ``s = learning_rate * FEEDBACK_FACTORS[feedback] *
    matched[name]`` (up for like/save/complete, down for skip/dislike) as a share of the
    room it has in that direction: ``w + s * (1 - w)`` up, ``w + s * w`` down; then it is
    clipped to [0, 1] and rounded to 6 decimals. Features with match 0, or absent from
    ``matched``, do not move. The shares make a weight settle where the listener's likes
    and skips of tracks with that feature balance, instead of every weight that most
    recommended tracks match running up to 1 and no longer telling tracks apart (the
    listener simulator, ``make simulate``, showed that).

    Consequence worth knowing: feedback on a track that matched nothing (all matches 0)
    changes no weight at all. The caller still records the adjustment (it counts towards
    ``adjustment_count``), and ``track_feature_matches`` makes popularity and novelty match
    for every track so that this only happens for an unpopular, already-heard track.

    Raises ``ValueError`` for an unknown feedback type, an unknown feature name in
    ``matched``, a match strength that is not finite, or a negative or non-finite
    ``learning_rate``. Match strengths are clipped to [0, 1].
    """
    factor = FEEDBACK_FACTORS.get(feedback)
    if factor is None:
        raise ValueError(
            f"unknown feedback {feedback!r} (expected one of: {', '.join(FEEDBACK_TYPES)})"
        )
    if not (math.isfinite(learning_rate) and learning_rate >= 0.0):
        raise ValueError(f"learning_rate must be finite and >= 0, got {learning_rate!r}")
    unknown = sorted(set(matched) - set(WEIGHT_NAMES))
    if unknown:
        raise ValueError(f"unknown feature(s) in matched: {', '.join(unknown)}")

    result = complete_weights(weights)
    for name, strength in matched.items():
        strength = float(strength)
        if not math.isfinite(strength):
            raise ValueError(f"match strength for {name!r} must be finite, got {strength!r}")
        strength = _clip01(strength)
        if strength == 0.0:
            continue
        step = learning_rate * factor * strength
        w = result[name]
        moved = w + step * (1.0 - w) if step > 0 else w + step * w
        result[name] = round(_clip01(moved), _DECIMALS)
    return result


def track_feature_matches(
    track_genres: Iterable[str],
    track_artists: Iterable[str],
    track_valence: float,
    track_energy: float,
    track_popularity: float,
    *,
    liked_genres: Mapping[str, float],
    liked_artists: Mapping[str, float],
    target_valence: float | None,
    target_energy: float | None,
    novelty: float,
) -> dict[str, float]:
    """How strongly a track matched each of the nine features for this listener, in [0, 1].

    Inputs: the track's genres, artists, valence, energy and popularity (all [0, 1] on the
    catalog's scale); the listener's accumulated genre and artist affinities normalised to
    [0, 1] (see ``normalise_affinities``; names compared case-insensitively); their target
    valence and energy on the track scale [0, 1], or None when no mood is known; and the
    track's novelty for this listener in [0, 1] (1 = never recommended to or heard by them).

    - genre_match / artist_match: the strongest affinity among the track's genres / artists.
    - valence_match / energy_match: 1 at the target, falling linearly to 0 at
      ``MOOD_MATCH_WIDTH`` away; 0 when the target is unknown.
    - mood_match: the same closeness for the (valence, energy) point, using the RMS distance
      over whichever targets are known; 0 when neither is.
    - taste_match: the mean of genre and artist match, i.e. closeness to what they liked;
      a track needs both the genre and the artist to count as fully "their taste".
    - popularity: how far the track's popularity lies above the middle of the scale,
      ``2 * popularity - 1`` (0 for a track of middling popularity or less): nearly every
      recommended track has some popularity, so only a more popular than middling one
      says anything about a taste for hits. novelty: the given novelty. Both need nothing
      about the listener, so feedback on a cold-start recommendation still teaches something.
    - diversity: how far the track lies outside the listener's established taste,
      ``1 - max(genre_match, artist_match)``, so liking off-taste tracks strengthens
      diversity and skipping them weakens it; 0 when no taste is known yet (nothing to be
      diverse from, and a cold-start like should not be read as a wish for variety).
    """
    genres = {g.casefold() for g in track_genres}
    artists = {a.casefold() for a in track_artists}
    genre = _strongest(genres, liked_genres)
    artist = _strongest(artists, liked_artists)

    track_v = _unit(track_valence, "track_valence")
    track_e = _unit(track_energy, "track_energy")
    target_v = None if target_valence is None else _unit(target_valence, "target_valence")
    target_e = None if target_energy is None else _unit(target_energy, "target_energy")
    valence = _closeness(track_v, target_v)
    energy = _closeness(track_e, target_e)
    known = [
        abs(track - target)
        for track, target in ((track_v, target_v), (track_e, target_e))
        if target is not None
    ]
    mood = 0.0
    if known:
        rms = math.sqrt(sum(d * d for d in known) / len(known))
        mood = _clip01(1.0 - rms / MOOD_MATCH_WIDTH)

    taste_known = any(v > 0 for v in liked_genres.values()) or any(
        v > 0 for v in liked_artists.values()
    )
    diversity = 1.0 - max(genre, artist) if taste_known else 0.0

    matches = {
        "genre_match": genre,
        "artist_match": artist,
        "mood_match": mood,
        "energy_match": energy,
        "valence_match": valence,
        "taste_match": (genre + artist) / 2.0,
        "popularity": _clip01(2.0 * _unit(track_popularity, "track_popularity") - 1.0),
        "novelty": _unit(novelty, "novelty"),
        "diversity": diversity,
    }
    return {name: round(_clip01(matches[name]), _DECIMALS) for name in WEIGHT_NAMES}


def normalise_affinities(raw: Mapping[str, float]) -> dict[str, float]:
    """Scale accumulated genre or artist weights to [0, 1] by the strongest one.

    Keys are case-folded (matching in ``track_feature_matches`` is case-insensitive);
    non-positive and non-finite values are dropped, since they express no affinity.
    """
    positive: dict[str, float] = {}
    for key, value in raw.items():
        value = float(value)
        if math.isfinite(value) and value > 0:
            folded = key.casefold()
            positive[folded] = max(positive.get(folded, 0.0), value)
    if not positive:
        return {}
    top = max(positive.values())
    return {key: value / top for key, value in positive.items()}


def _strongest(names: set[str], affinities: Mapping[str, float]) -> float:
    best = 0.0
    for key, value in affinities.items():
        if key.casefold() in names:
            value = float(value)
            if math.isfinite(value):
                best = max(best, _clip01(value))
    return best


def _closeness(track: float, target: float | None) -> float:
    if target is None:
        return 0.0
    return _clip01(1.0 - abs(track - target) / MOOD_MATCH_WIDTH)


def _unit(value: float, name: str) -> float:
    """A feature value on the [0, 1] scale: clipped, but NaN/inf is a caller bug."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return _clip01(value)


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))
