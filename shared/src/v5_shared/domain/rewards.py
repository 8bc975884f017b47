"""Rewards in [-1, 1] for listening events, which update the arm that recommended a track.

The API promises, for the same listen ratio r: save >= like > complete > play > skip >
dislike, like > 0 > skip, and a play's reward growing with r. The values below keep every
event in its own band, disjoint from the others, so the ordering holds even between
*different* ratios (and for r = None, "not given"):

    save      1.0                          always
    like      0.8 + 0.1 r                  [0.8, 0.9]   a longer listen makes a like surer
    complete  0.5 + 0.2 r                  [0.5, 0.7]   a weak positive: may be background
    play     -0.2 + 0.6 r                  [-0.2, 0.4]  neutral-ish, strictly up with r
    skip     -0.5 + 0.2 r                  [-0.5, -0.3] a late skip is less of a rejection
    dislike  -1.0                          always

Defaults for r = None: like gets no bonus (r = 0), complete means the whole track was
heard (r = 1), a play is taken as half heard (r = 0.5, reward 0.1), a skip as immediate
(r = 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

EVENTS: tuple[str, ...] = ("like", "dislike", "skip", "save", "complete", "play")

# event -> (reward at r = 0, slope in r, r assumed when listen_ratio is None)
REWARD_LINES: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {
        "save": (1.0, 0.0, 0.0),
        "like": (0.8, 0.1, 0.0),
        "complete": (0.5, 0.2, 1.0),
        "play": (-0.2, 0.6, 0.5),
        "skip": (-0.5, 0.2, 0.0),
        "dislike": (-1.0, 0.0, 0.0),
    }
)


def reward_for(event: str, listen_ratio: float | None = None) -> float:
    """The reward in [-1, 1] for one listening event (see the module docstring).

    ``listen_ratio`` is the share of the track heard, in [0, 1], or None when not given.
    Raises ``ValueError`` for an unknown event or a ratio that is not a finite number in
    [0, 1] (the HTTP schema rejects those first; this guards other callers).
    """
    line = REWARD_LINES.get(event)
    if line is None:
        raise ValueError(f"unknown event {event!r} (expected one of: {', '.join(EVENTS)})")
    base, slope, assumed = line
    if listen_ratio is None:
        ratio = assumed
    else:
        if isinstance(listen_ratio, bool):
            raise ValueError("listen_ratio must be a number, not a bool")
        ratio = float(listen_ratio)
        if not (math.isfinite(ratio) and 0.0 <= ratio <= 1.0):
            raise ValueError(f"listen_ratio must be in [0, 1], got {listen_ratio!r}")
    # Not rounded: rounding could make two close ratios tie, and a play's reward must grow
    # strictly with the ratio.
    return min(1.0, max(-1.0, base + slope * ratio))
