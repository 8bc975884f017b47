"""When to comfort: the listener's mood is declining, or low right now."""

from __future__ import annotations

# A latest valence below this counts as low (valence is in [-1, 1]).
LOW_VALENCE = -0.2


def comfort_applies(trend: str, latest_valence: float | None, *, low: float = LOW_VALENCE) -> bool:
    if latest_valence is None:
        return False
    return trend == "declining" or latest_valence < low
