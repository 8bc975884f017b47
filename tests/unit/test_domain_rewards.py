"""Rewards for listening events: API.md's ordering for every listen ratio."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from v5_shared.domain.rewards import EVENTS, reward_for

RATIOS: list[float | None] = [0.0, 0.25, 0.5, 0.75, 1.0, None]


def test_events() -> None:
    assert EVENTS == ("like", "dislike", "skip", "save", "complete", "play")


@pytest.mark.parametrize("ratio", RATIOS)
def test_ordering_for_the_same_listen_ratio(ratio: float | None) -> None:
    r = {event: reward_for(event, ratio) for event in EVENTS}
    assert r["save"] >= r["like"] > r["complete"] > r["play"] > r["skip"] > r["dislike"]
    assert r["like"] > 0 > r["skip"]
    assert all(-1.0 <= value <= 1.0 for value in r.values())


def test_ordering_holds_even_across_different_ratios() -> None:
    # Stronger than the API asks: each event's rewards form a band of their own.
    order = ("save", "like", "complete", "play", "skip", "dislike")
    for higher, lower in itertools.pairwise(order):
        for r1, r2 in itertools.product(RATIOS, RATIOS):
            if higher == "save" and lower == "like":
                assert reward_for(higher, r1) >= reward_for(lower, r2)
            else:
                assert reward_for(higher, r1) > reward_for(lower, r2), (higher, r1, lower, r2)


def test_play_grows_strictly_with_listen_ratio() -> None:
    ratios = np.linspace(0.0, 1.0, 1001)
    rewards = [reward_for("play", float(r)) for r in ratios]
    assert all(b > a for a, b in itertools.pairwise(rewards))
    assert reward_for("play", 0.0) > reward_for("skip", 1.0)
    assert reward_for("play", 1.0) < reward_for("complete", 0.0)


def test_suggested_values() -> None:
    assert reward_for("save") == 1.0
    assert reward_for("dislike") == -1.0
    assert reward_for("like") == pytest.approx(0.8)
    assert reward_for("complete") == pytest.approx(0.7)  # "complete" means fully heard
    assert reward_for("play") == pytest.approx(0.1)  # taken as half heard
    assert reward_for("skip") == pytest.approx(-0.5)


@pytest.mark.parametrize("event", ["love", "", "LIKE"])
def test_unknown_event_is_rejected(event: str) -> None:
    with pytest.raises(ValueError):
        reward_for(event)


@pytest.mark.parametrize("ratio", [-0.01, 1.01, math.nan, math.inf, True])
def test_invalid_listen_ratio_is_rejected(ratio: float) -> None:
    with pytest.raises(ValueError):
        reward_for("play", ratio)
