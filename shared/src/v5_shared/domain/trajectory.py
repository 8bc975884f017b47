"""The direction of the listener's mood over the last turns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Trend = Literal["improving", "declining", "stable", "unknown"]


def valence_trend(
    valences: Sequence[float], *, window: int = 5, threshold: float = 0.05
) -> tuple[Trend, float]:
    """The trend and least-squares slope (valence per turn) of the last ``window`` points.

    Below two points there is no direction: ("unknown", 0.0). Only the recent points count,
    so a listener who was low an hour ago but is brightening now reads as improving. The
    slope is rounded to 4 decimals, and the trend is read from the rounded slope so that
    the two never disagree.
    """
    if window < 2:
        raise ValueError("window must be at least 2")
    recent = list(valences[-window:])
    n = len(recent)
    if n < 2:
        return "unknown", 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(recent) / n
    # Turns are evenly spaced, so x is 0..n-1 and sum((x - mean_x)^2) = n(n^2 - 1)/12.
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(recent))
    slope = round(covariance / (n * (n * n - 1) / 12), 4)
    if slope > threshold:
        return "improving", slope
    if slope < -threshold:
        return "declining", slope
    return "stable", slope
