"""Session-level signals of the conversation service: the mood trend over recent turns and
how clearly the listener's preferences are known."""

from __future__ import annotations

import pytest

from conversation_service.clarity import clarity
from v5_shared.domain.trajectory import valence_trend

# Weights as the session store accumulates them: a mention adds 1, each later turn
# multiplies earlier weights by 0.8.
DECAY = 0.8


def _mentioned_on_each_of(turns: int) -> float:
    return sum(DECAY**age for age in range(turns))


# --------------------------------------------------------------------------- trend


@pytest.mark.parametrize("valences", [[], [0.4]])
def test_fewer_than_two_points_are_unknown(valences: list[float]) -> None:
    assert valence_trend(valences) == ("unknown", 0.0)


def test_rising_valence_is_improving() -> None:
    assert valence_trend([-0.6, -0.3, 0.0, 0.3]) == ("improving", 0.3)


def test_falling_valence_is_declining() -> None:
    assert valence_trend([0.5, 0.2]) == ("declining", -0.3)


def test_flat_or_noisy_valence_is_stable() -> None:
    assert valence_trend([0.2, 0.2, 0.2]) == ("stable", 0.0)
    trend, slope = valence_trend([0.1, 0.3, 0.1, 0.3, 0.1])
    assert trend == "stable" and abs(slope) <= 0.05


def test_slope_is_least_squares_and_rounded() -> None:
    # x = 0..3, y = (0, 0.1, 0.1, 0.4): sum (x - 1.5)(y - 0.15) = 0.6 over sum (x - 1.5)^2 = 5.
    assert valence_trend([0.0, 0.1, 0.1, 0.4]) == ("improving", 0.12)
    trend, slope = valence_trend([0.0, 1 / 3, 2 / 3])
    assert slope == 0.3333 and trend == "improving"


def test_only_the_last_window_points_count() -> None:
    history = [-0.9, -0.9, 0.9, 0.9, 0.6, 0.3, 0.0, -0.3]
    assert valence_trend(history) == ("declining", -0.3)
    assert valence_trend(history, window=8)[0] == "improving"
    assert valence_trend([0.9, -0.5, -0.4], window=2) == ("improving", 0.1)


def test_the_threshold_separates_stable_from_moving() -> None:
    gentle = [0.0, 0.04, 0.08]
    assert valence_trend(gentle) == ("stable", 0.04)
    assert valence_trend(gentle, threshold=0.03) == ("improving", 0.04)
    assert valence_trend([0.0, -0.04, -0.08], threshold=0.03) == ("declining", -0.04)


def test_a_window_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        valence_trend([0.1, 0.2], window=1)


# --------------------------------------------------------------------------- clarity


def test_nothing_known_is_zero_clarity() -> None:
    assert clarity({}, {}, {}, turns=0) == 0.0
    assert clarity({}, {}, {}, turns=5) == 0.0
    assert clarity({"Mara Quill": 1.0}, {"jazz": 1.0}, {}, turns=0) == 0.0


def test_a_single_genre_mention_is_moderate() -> None:
    value = clarity({}, {"jazz": 1.0}, {}, turns=1)
    assert 0.3 <= value <= 0.5


def test_consistent_mentions_approach_high_clarity() -> None:
    weight = _mentioned_on_each_of(5)
    genre_only = clarity({}, {"jazz": weight}, {"calm": 1.0}, turns=5)
    with_artist = clarity({"Mara Quill": weight}, {"jazz": weight}, {"calm": 2.0}, turns=5)
    assert genre_only >= 0.75
    assert with_artist >= 0.85
    assert with_artist <= 1.0


def test_more_of_the_same_never_lowers_clarity() -> None:
    values = [clarity({}, {"jazz": _mentioned_on_each_of(n)}, {}, turns=n) for n in range(1, 8)]
    assert values == sorted(values)
    assert values[-1] > values[0]


def test_scattered_mentions_are_less_clear_than_concentrated_ones() -> None:
    scattered = clarity({}, {"jazz": 1.0, "metal": 1.0, "folk": 1.0, "techno": 1.0}, {}, turns=4)
    concentrated = clarity({}, {"jazz": 4.0}, {}, turns=4)
    assert scattered < concentrated
    artists_scattered = clarity({"A B": 1.0, "C D": 1.0, "E F": 1.0}, {}, {}, turns=3)
    artists_concentrated = clarity({"A B": 3.0}, {}, {}, turns=3)
    assert artists_scattered < artists_concentrated


def test_mood_knowledge_adds_a_little() -> None:
    without = clarity({}, {"jazz": 1.0}, {}, turns=1)
    with_mood = clarity({}, {"jazz": 1.0}, {"sad": 1.0}, turns=1)
    assert without < with_mood <= without + 0.15
    assert 0.0 < clarity({}, {}, {"sad": 1.0}, turns=1) < 0.15


def test_clarity_stays_in_range_and_is_rounded() -> None:
    value = clarity({"Mara Quill": 50.0}, {"jazz": 50.0}, {"calm": 50.0}, turns=50)
    assert 0.0 <= value <= 1.0
    value = clarity({}, {"jazz": 0.7}, {"sad": 0.3}, turns=2)
    assert value == round(value, 4)
    # Non-positive weights carry no knowledge.
    assert clarity({"X Y": 0.0}, {"jazz": -1.0}, {}, turns=2) == 0.0


def test_negative_turns_are_refused() -> None:
    with pytest.raises(ValueError):
        clarity({}, {}, {}, turns=-1)
