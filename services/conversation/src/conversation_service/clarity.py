"""How clearly the listener's musical preferences are known after the turns so far."""

from __future__ import annotations

import math
from collections.abc import Mapping

# Total genre + artist weight at which the "amount expressed" term reaches 1 - 1/e; one
# mention weighs 1, so a single genre gives about 0.49 of the way and a handful of
# mentions nearly all of it (diminishing returns: the fifth mention adds little).
PREFERENCE_SCALE = 1.5
# Mood weight at which mood knowledge reaches 1 - 1/e of its small share.
MOOD_SCALE = 1.0
# Shares of the score. Moods steer the feel of a list but not what to play, so they add
# only a little; consistency keeps a floor so that a scattered listener still counts.
PREFERENCE_SHARE = 0.9
MOOD_SHARE = 0.1
CONSISTENCY_FLOOR = 0.4


def _positive(weights: Mapping[str, float]) -> list[float]:
    return [w for w in weights.values() if w > 0.0 and math.isfinite(w)]


def clarity(
    artists: Mapping[str, float],
    genres: Mapping[str, float],
    moods: Mapping[str, float],
    *,
    turns: int,
) -> float:
    """[0, 1] from the accumulated, recency-decayed entity weights of the session.

    Grows with how much the listener has expressed (total genre and artist weight, with
    diminishing returns) and with how consistent it is (the share of that weight on the
    heaviest genre and the heaviest artist); mood knowledge adds a little. The weights
    already carry recency, so ``turns`` only says whether anything can be known at all.
    """
    if turns < 0:
        raise ValueError("turns must not be negative")
    if turns == 0:
        return 0.0
    genre_weights, artist_weights = _positive(genres), _positive(artists)
    mood_total = sum(_positive(moods))
    preference_total = sum(genre_weights) + sum(artist_weights)

    preference = 0.0
    if preference_total > 0.0:
        amount = 1.0 - math.exp(-preference_total / PREFERENCE_SCALE)
        heaviest = max(genre_weights, default=0.0) + max(artist_weights, default=0.0)
        consistency = heaviest / preference_total
        preference = amount * (CONSISTENCY_FLOOR + (1.0 - CONSISTENCY_FLOOR) * consistency)
    mood = 1.0 - math.exp(-mood_total / MOOD_SCALE)
    score = PREFERENCE_SHARE * preference + MOOD_SHARE * mood
    return round(min(1.0, max(0.0, score)), 4)
