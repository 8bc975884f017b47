"""The nine weights: defaults, explicit updates, learning from feedback, feature matches."""

from __future__ import annotations

import math
from typing import Any

import pytest

from v5_shared.domain.weights import (
    DEFAULT_WEIGHTS,
    FEEDBACK_TYPES,
    WEIGHT_NAMES,
    WeightValidationError,
    apply_explicit,
    apply_feedback,
    complete_weights,
    default_weights,
    normalise_affinities,
    track_feature_matches,
    validate_explicit,
)

EXPECTED_DEFAULTS = {
    "genre_match": 0.8,
    "artist_match": 0.6,
    "mood_match": 0.7,
    "energy_match": 0.5,
    "valence_match": 0.5,
    "taste_match": 0.6,
    "popularity": 0.4,
    "novelty": 0.3,
    "diversity": 0.3,
}

ALL_MATCHED = dict.fromkeys(WEIGHT_NAMES, 1.0)


# --- defaults -------------------------------------------------------------------------


def test_default_weights_are_exact_and_ordered() -> None:
    assert WEIGHT_NAMES == tuple(EXPECTED_DEFAULTS)
    assert dict(DEFAULT_WEIGHTS) == EXPECTED_DEFAULTS
    assert default_weights() == EXPECTED_DEFAULTS
    assert list(default_weights()) == list(WEIGHT_NAMES)
    assert FEEDBACK_TYPES == ("like", "dislike", "skip", "save", "complete")


def test_default_weights_returns_an_independent_copy() -> None:
    first = default_weights()
    first["genre_match"] = 0.0
    assert default_weights()["genre_match"] == 0.8
    with pytest.raises(TypeError):
        DEFAULT_WEIGHTS["genre_match"] = 0.0  # type: ignore[index]


# --- explicit updates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("updates", "fragment"),
    [
        ({"bogus": 0.5}, "unknown weight 'bogus'"),
        ({"genre_match": 1.01}, "[0, 1]"),
        ({"genre_match": -0.01}, "[0, 1]"),
        ({"genre_match": True}, "must be a number"),
        ({"genre_match": False}, "must be a number"),
        ({"genre_match": "0.5"}, "must be a number"),
        ({"genre_match": None}, "must be a number"),
        ({"genre_match": math.nan}, "finite"),
        ({"genre_match": math.inf}, "finite"),
    ],
)
def test_validate_explicit_rejects(updates: dict[str, object], fragment: str) -> None:
    with pytest.raises(WeightValidationError) as excinfo:
        validate_explicit(updates)
    assert fragment in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)  # routers may map ValueError to 422


def test_validate_explicit_reports_every_problem() -> None:
    with pytest.raises(WeightValidationError) as excinfo:
        validate_explicit({"bogus": 0.5, "novelty": 2.0})
    assert "bogus" in str(excinfo.value) and "novelty" in str(excinfo.value)


def test_validate_explicit_accepts_inclusive_bounds_and_ints() -> None:
    assert validate_explicit({"novelty": 1.0, "genre_match": 0.0, "diversity": 1}) == {
        "genre_match": 0.0,
        "novelty": 1.0,
        "diversity": 1.0,
    }
    assert validate_explicit({}) == {}
    result = validate_explicit({"diversity": 1})
    assert type(result["diversity"]) is float


def test_apply_explicit_is_a_partial_update() -> None:
    before = default_weights()
    after = apply_explicit(before, {"popularity": 1.0, "novelty": 0.0})
    assert after["popularity"] == 1.0 and after["novelty"] == 0.0
    assert {k: v for k, v in after.items() if k not in ("popularity", "novelty")} == {
        k: v for k, v in before.items() if k not in ("popularity", "novelty")
    }
    assert before == EXPECTED_DEFAULTS  # the input is not mutated
    assert list(after) == list(WEIGHT_NAMES)


def test_apply_explicit_keeps_values_exactly() -> None:
    after = apply_explicit(default_weights(), {"novelty": 0.123456789})
    assert after["novelty"] == 0.123456789


def test_apply_explicit_validates() -> None:
    with pytest.raises(WeightValidationError):
        apply_explicit(default_weights(), {"popularity": 1.5})


def test_complete_weights_fills_missing_and_drops_unknown() -> None:
    weights = complete_weights({"genre_match": 0.1, "legacy": 0.9, "novelty": 7.0})
    assert list(weights) == list(WEIGHT_NAMES)
    assert weights["genre_match"] == 0.1 and weights["novelty"] == 1.0
    assert weights["artist_match"] == DEFAULT_WEIGHTS["artist_match"]


# --- feedback -------------------------------------------------------------------------


def _delta(feedback: str, strength: float = 1.0) -> float:
    before = default_weights()
    after = apply_feedback(before, {"genre_match": strength}, feedback)
    return after["genre_match"] - before["genre_match"]


def test_feedback_directions_and_magnitudes() -> None:
    like, save, complete = _delta("like"), _delta("save"), _delta("complete")
    skip, dislike = _delta("skip"), _delta("dislike")
    assert save >= like > complete > 0
    assert dislike < skip < 0
    # learning_rate * match strength * headroom for a like: genre_match starts at 0.8.
    assert like == pytest.approx(0.05 * (1 - 0.8))
    # A step down is the same share of what there is below.
    assert dislike == pytest.approx(-0.05 * 0.8)


def test_feedback_steps_shrink_towards_the_bounds() -> None:
    # An up-step takes a share of the headroom, a down-step a share of the weight: a weight
    # that one sort of feedback keeps pushing approaches its bound without piling up there,
    # so weights that every track matches do not all end at 1 and stop ranking anything.
    low = apply_feedback({"genre_match": 0.2}, {"genre_match": 1.0}, "like")["genre_match"]
    high = apply_feedback({"genre_match": 0.9}, {"genre_match": 1.0}, "like")["genre_match"]
    assert low - 0.2 == pytest.approx(0.05 * 0.8) and high - 0.9 == pytest.approx(0.05 * 0.1)
    down_low = apply_feedback({"genre_match": 0.2}, {"genre_match": 1.0}, "skip")
    down_high = apply_feedback({"genre_match": 0.9}, {"genre_match": 1.0}, "skip")
    assert 0.2 - down_low["genre_match"] < 0.9 - down_high["genre_match"]


def test_feedback_scales_with_match_strength_and_learning_rate() -> None:
    assert _delta("like", 0.5) == pytest.approx(_delta("like", 1.0) / 2)
    after = apply_feedback(default_weights(), {"mood_match": 1.0}, "like", learning_rate=0.1)
    assert after["mood_match"] == pytest.approx(0.7 + 0.1 * (1 - 0.7))


def test_feedback_leaves_unmatched_features_unchanged() -> None:
    before = default_weights()
    matched = {"genre_match": 1.0, "mood_match": 0.8, "novelty": 0.0}
    for feedback in FEEDBACK_TYPES:
        after = apply_feedback(before, matched, feedback)
        for name in WEIGHT_NAMES:
            if name not in ("genre_match", "mood_match"):
                assert after[name] == before[name], (feedback, name)


def test_feedback_on_a_track_that_matched_nothing_changes_nothing() -> None:
    before = default_weights()
    nothing = dict.fromkeys(WEIGHT_NAMES, 0.0)
    assert apply_feedback(before, nothing, "like") == before
    assert apply_feedback(before, {}, "dislike") == before


@pytest.mark.parametrize("feedback", FEEDBACK_TYPES)
def test_weights_stay_in_unit_interval_after_many_repeats(feedback: str) -> None:
    weights = default_weights()
    for _ in range(1000):
        weights = apply_feedback(weights, ALL_MATCHED, feedback)
        assert all(0.0 <= value <= 1.0 for value in weights.values())
    expected = 1.0 if feedback in ("like", "save", "complete") else 0.0
    assert all(value == pytest.approx(expected, abs=1e-3) for value in weights.values())


def test_feedback_results_are_rounded() -> None:
    after = apply_feedback(default_weights(), {"genre_match": 1 / 3}, "like")
    assert after["genre_match"] == round(after["genre_match"], 6)


@pytest.mark.parametrize(
    ("matched", "feedback", "kwargs"),
    [
        ({"genre_match": 1.0}, "love", {}),
        ({"bogus": 1.0}, "like", {}),
        ({"genre_match": math.nan}, "like", {}),
        ({"genre_match": 1.0}, "like", {"learning_rate": -0.1}),
        ({"genre_match": 1.0}, "like", {"learning_rate": math.nan}),
    ],
)
def test_feedback_rejects_bad_input(
    matched: dict[str, float], feedback: str, kwargs: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        apply_feedback(default_weights(), matched, feedback, **kwargs)


# --- feature matches ------------------------------------------------------------------


def _matches(
    *,
    track_genres: tuple[str, ...] = ("jazz", "soul"),
    track_artists: tuple[str, ...] = ("Mara Quill",),
    track_valence: float = 0.6,
    track_energy: float = 0.3,
    track_popularity: float = 0.7,
    liked_genres: dict[str, float] | None = None,
    liked_artists: dict[str, float] | None = None,
    target_valence: float | None = 0.65,
    target_energy: float | None = 0.25,
    novelty: float = 1.0,
) -> dict[str, float]:
    """A jazz track by an artist the listener half-likes, close to their mood target."""
    return track_feature_matches(
        track_genres,
        track_artists,
        track_valence,
        track_energy,
        track_popularity,
        liked_genres={"jazz": 1.0, "rock": 0.4} if liked_genres is None else liked_genres,
        liked_artists={"mara quill": 0.5} if liked_artists is None else liked_artists,
        target_valence=target_valence,
        target_energy=target_energy,
        novelty=novelty,
    )


def test_track_feature_matches_covers_all_names_in_range() -> None:
    matches = _matches()
    assert list(matches) == list(WEIGHT_NAMES)
    assert all(0.0 <= value <= 1.0 for value in matches.values())
    assert matches["genre_match"] == 1.0
    assert matches["artist_match"] == 0.5  # case-insensitive artist match
    assert matches["taste_match"] == 0.75
    # Popularity counts as matched above the middle of the scale: 0.7 -> 0.4.
    assert matches["popularity"] == pytest.approx(0.4) and matches["novelty"] == 1.0
    assert matches["valence_match"] == pytest.approx(0.9)
    assert matches["energy_match"] == pytest.approx(0.9)
    assert matches["mood_match"] == pytest.approx(0.9)
    assert matches["diversity"] == 0.0  # squarely inside the listener's taste


def test_track_feature_matches_mood_closeness_falls_with_distance() -> None:
    near = _matches(track_valence=0.6, target_valence=0.6)["valence_match"]
    mid = _matches(track_valence=0.6, target_valence=0.4)["valence_match"]
    far = _matches(track_valence=0.9, target_valence=0.1)["valence_match"]
    assert near == 1.0 > mid > far == 0.0
    only_energy = _matches(target_valence=None)
    assert only_energy["valence_match"] == 0.0
    assert only_energy["mood_match"] == only_energy["energy_match"] > 0


def test_track_feature_matches_off_taste_track_counts_as_diverse() -> None:
    matches = _matches(track_genres=("metal",), track_artists=("Someone Else",))
    assert matches["genre_match"] == matches["artist_match"] == matches["taste_match"] == 0
    assert matches["diversity"] == 1.0


def test_track_feature_matches_popularity_only_above_the_middle() -> None:
    # Nearly every recommended track has some popularity: counting all of it as a match
    # would move the popularity weight with every like, whatever the listener's taste for
    # hits. Only a track more popular than middling matched it.
    assert _matches(track_popularity=0.3)["popularity"] == 0.0
    assert _matches(track_popularity=0.5)["popularity"] == 0.0
    assert _matches(track_popularity=1.0)["popularity"] == 1.0
    liked_obscure = apply_feedback(default_weights(), _matches(track_popularity=0.2), "like")
    assert liked_obscure["popularity"] == default_weights()["popularity"]


def test_track_feature_matches_cold_start_still_matches_popularity_and_novelty() -> None:
    matches = _matches(
        liked_genres={}, liked_artists={}, target_valence=None, target_energy=None, novelty=0.8
    )
    assert matches["popularity"] == pytest.approx(0.4) and matches["novelty"] == 0.8
    assert all(
        value == 0.0 for name, value in matches.items() if name not in ("popularity", "novelty")
    )
    # ... so a like on a cold-start recommendation still moves some weights.
    before = default_weights()
    after = apply_feedback(before, matches, "like")
    assert after["popularity"] > before["popularity"] and after["novelty"] > before["novelty"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"track_valence": 1.4, "track_energy": -0.2, "track_popularity": 3.0},
        {"liked_genres": {"jazz": 5.0}, "liked_artists": {"mara quill": -1.0}},
        {"novelty": 2.0, "target_valence": 1.5, "target_energy": -1.0},
    ],
)
def test_track_feature_matches_clips_out_of_range_inputs(overrides: dict[str, Any]) -> None:
    assert all(0.0 <= value <= 1.0 for value in _matches(**overrides).values())


def test_track_feature_matches_rejects_nan() -> None:
    with pytest.raises(ValueError):
        _matches(track_valence=math.nan)


def test_normalise_affinities() -> None:
    assert normalise_affinities({"Jazz": 4.0, "rock": 1.0, "pop": 0.0, "x": -2.0}) == {
        "jazz": 1.0,
        "rock": 0.25,
    }
    assert normalise_affinities({}) == {}
