"""Thompson sampling over strategies: posteriors, priors, arm choice, propensities, tilts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from v5_shared.domain.bandit import (
    ARM_TILTS,
    ARMS,
    Posterior,
    PropensityMethod,
    arm_weights,
    choose_arm,
    eligible_arms,
    prior_from_aggregate,
    update_posterior,
)
from v5_shared.domain.weights import WEIGHT_NAMES, default_weights

# --- posteriors -----------------------------------------------------------------------


def test_arms() -> None:
    assert ARMS == ("personalized", "mood_match", "popular", "discovery", "comfort")


@pytest.mark.parametrize(
    ("reward", "d_alpha", "d_beta"),
    [(1.0, 1.0, 0.0), (-1.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.5, 0.75, 0.25), (-0.6, 0.2, 0.8)],
)
def test_update_posterior_arithmetic(reward: float, d_alpha: float, d_beta: float) -> None:
    before = Posterior(3.0, 2.0)
    after = update_posterior(before, reward)
    assert after.alpha == pytest.approx(before.alpha + d_alpha)
    assert after.beta == pytest.approx(before.beta + d_beta)
    assert after.alpha + after.beta == pytest.approx(before.alpha + before.beta + 1.0)
    assert before == Posterior(3.0, 2.0)  # frozen: the input is unchanged


def test_update_posterior_grows_by_exactly_one_per_event() -> None:
    posterior = Posterior(1.0, 1.0)
    rewards = np.random.default_rng(3).uniform(-1, 1, size=1000)
    for reward in rewards:
        posterior = update_posterior(posterior, float(reward))
    assert posterior.alpha + posterior.beta == pytest.approx(1002.0, abs=1e-9)


def test_update_posterior_clips_rewards_and_rejects_nan() -> None:
    assert update_posterior(Posterior(1, 1), 5.0) == Posterior(2.0, 1.0)
    assert update_posterior(Posterior(1, 1), -5.0) == Posterior(1.0, 2.0)
    with pytest.raises(ValueError):
        update_posterior(Posterior(1, 1), math.nan)


def test_posterior_mean_and_validation() -> None:
    assert Posterior(3.0, 1.0).mean == 0.75
    for alpha, beta in ((0.0, 1.0), (1.0, -1.0), (math.inf, 1.0), (math.nan, 1.0)):
        with pytest.raises(ValueError):
            Posterior(alpha, beta)


def test_prior_without_aggregate_is_uniform() -> None:
    assert prior_from_aggregate(None) == Posterior(1.0, 1.0)


def test_prior_is_shrunk_toward_the_aggregate() -> None:
    aggregate = Posterior(800.0, 200.0)  # mean 0.8 over a long history
    prior = prior_from_aggregate(aggregate)
    assert 0.5 < prior.mean < 0.8
    assert prior.alpha + prior.beta == pytest.approx(2.0 + 4.0)  # borrows 4, not 1,000
    assert prior == Posterior(1.0 + 4 * 0.8, 1.0 + 4 * 0.2)
    assert prior_from_aggregate(aggregate, strength=0.0) == Posterior(1.0, 1.0)
    low = prior_from_aggregate(Posterior(10.0, 90.0))
    assert 0.1 < low.mean < 0.5
    with pytest.raises(ValueError):
        prior_from_aggregate(aggregate, strength=-1.0)


# --- eligibility and choice -----------------------------------------------------------


def test_eligible_arms() -> None:
    assert eligible_arms(comfort_applies=True) == ARMS
    assert eligible_arms(comfort_applies=False) == (
        "personalized",
        "mood_match",
        "popular",
        "discovery",
    )


@pytest.mark.parametrize("method", ["quadrature", "monte_carlo"])
def test_choose_arm_only_chooses_eligible_arms(method: PropensityMethod) -> None:
    rng = np.random.default_rng(11)
    # comfort would win easily if it were eligible
    posteriors = {arm: Posterior(1.0, 1.0) for arm in ARMS}
    posteriors["comfort"] = Posterior(500.0, 1.0)
    eligible = eligible_arms(comfort_applies=False)
    for _ in range(200):
        arm, propensity, probs = choose_arm(posteriors, eligible, rng, method=method)
        assert arm in eligible and arm != "comfort"
        assert set(probs) == set(eligible)
        assert propensity == probs[arm]
        assert sum(probs.values()) == pytest.approx(1.0)
        assert all(p > 0 for p in probs.values())


@pytest.mark.parametrize("method", ["quadrature", "monte_carlo"])
def test_choose_arm_probabilities_are_positive_even_for_hopeless_arms(
    method: PropensityMethod,
) -> None:
    posteriors = {"popular": Posterior(1000.0, 1.0), "discovery": Posterior(1.0, 1000.0)}
    _, _, probs = choose_arm(
        posteriors,
        ("popular", "discovery"),
        np.random.default_rng(0),
        method=method,
    )
    assert sum(probs.values()) == pytest.approx(1.0)
    assert probs["discovery"] > 0
    assert probs["discovery"] == pytest.approx(1 / 4000, rel=0.01)  # the floor, renormalised


@pytest.mark.parametrize("method", ["quadrature", "monte_carlo"])
def test_dominant_posterior_is_chosen_almost_always(method: PropensityMethod) -> None:
    posteriors = {"personalized": Posterior(200.0, 5.0), "popular": Posterior(5.0, 200.0)}
    eligible = ("personalized", "popular")
    chosen: Counter[str] = Counter()
    for seed in range(200):
        arm, propensity, probs = choose_arm(
            posteriors,
            eligible,
            np.random.default_rng(seed),
            method=method,
        )
        chosen[arm] += 1
        assert probs["personalized"] > 0.95
        if arm == "personalized":
            assert propensity > 0.95
    assert chosen["personalized"] / 200 > 0.95


def test_equal_posteriors_are_chosen_roughly_uniformly() -> None:
    rng = np.random.default_rng(2024)
    posteriors = {arm: Posterior(4.0, 3.0) for arm in ARMS}
    draws = 5000
    counts = Counter(choose_arm(posteriors, ARMS, rng)[0] for _ in range(draws))
    for arm in ARMS:
        # expected 1,000 each; the binomial sd is ~28, so +-150 is a > 5 sd margin
        assert abs(counts[arm] - draws / len(ARMS)) < 150, counts
    _, propensity, probs = choose_arm(posteriors, ARMS, rng)
    assert all(p == pytest.approx(0.2, abs=1e-3) for p in probs.values())
    assert propensity == pytest.approx(0.2, abs=1e-3)


def test_missing_posterior_counts_as_uniform() -> None:
    rng = np.random.default_rng(5)
    _, _, with_missing = choose_arm({"popular": Posterior(1, 1)}, ("popular", "discovery"), rng)
    assert with_missing["popular"] == pytest.approx(0.5, abs=1e-3)
    assert with_missing["discovery"] == pytest.approx(0.5, abs=1e-3)


def test_choice_frequencies_match_reported_probabilities() -> None:
    # The logged propensity must be the probability of the choice actually made.
    posteriors = {
        "personalized": Posterior(3.0, 4.0),
        "mood_match": Posterior(10.0, 3.0),
        "popular": Posterior(2.0, 9.0),
        "discovery": Posterior(50.0, 20.0),
    }
    eligible = tuple(posteriors)
    rng = np.random.default_rng(99)
    draws = 6000
    counts = Counter(choose_arm(posteriors, eligible, rng)[0] for _ in range(draws))
    _, _, probs = choose_arm(posteriors, eligible, rng)
    for arm in eligible:
        assert counts[arm] / draws == pytest.approx(probs[arm], abs=0.025), (arm, counts, probs)


@pytest.mark.parametrize(
    "params",
    [
        [(3, 4), (10, 3), (2, 9), (50, 20), (1, 1)],
        [(1, 200), (1, 150), (2, 300)],
        [(1, 1), (30, 1), (4, 1.5)],
        [(1e5, 1e5), (1.0001e5, 1e5)],
        [(2000, 1500), (1800, 1400), (200, 5), (5, 200), (30000, 20000)],
    ],
)
def test_quadrature_agrees_with_large_monte_carlo(params: list[tuple[float, float]]) -> None:
    eligible = ARMS[: len(params)]
    posteriors = {arm: Posterior(a, b) for arm, (a, b) in zip(eligible, params, strict=True)}
    rng = np.random.default_rng(7)
    _, _, quad = choose_arm(posteriors, eligible, rng, method="quadrature")
    _, _, mc = choose_arm(
        posteriors, eligible, rng, method="monte_carlo", propensity_samples=200_000
    )
    for arm in eligible:
        # 200,000 samples: Monte Carlo sd <= 0.0012
        assert quad[arm] == pytest.approx(mc[arm], abs=0.006), (arm, quad, mc)


def test_parameters_below_one_fall_back_to_monte_carlo() -> None:
    posteriors = {"popular": Posterior(0.5, 0.5), "discovery": Posterior(0.5, 0.5)}
    _, _, probs = choose_arm(posteriors, ("popular", "discovery"), np.random.default_rng(1))
    assert probs["popular"] == pytest.approx(0.5, abs=0.05)
    assert sum(probs.values()) == pytest.approx(1.0)


def test_choose_arm_is_reproducible_with_a_seed() -> None:
    posteriors = {arm: Posterior(2.0, 2.0) for arm in ARMS}
    first = [choose_arm(posteriors, ARMS, np.random.default_rng(s))[0] for s in range(20)]
    again = [choose_arm(posteriors, ARMS, np.random.default_rng(s))[0] for s in range(20)]
    assert first == again


def test_choose_arm_edge_cases() -> None:
    rng = np.random.default_rng(0)
    assert choose_arm({}, ("popular",), rng) == ("popular", 1.0, {"popular": 1.0})
    _, _, probs = choose_arm({}, ("popular", "popular", "discovery"), rng)
    assert set(probs) == {"popular", "discovery"}
    with pytest.raises(ValueError):
        choose_arm({}, (), rng)
    with pytest.raises(ValueError):
        choose_arm({}, ("popular", "jukebox"), rng)
    with pytest.raises(ValueError):
        choose_arm({}, ("popular", "discovery"), rng, propensity_samples=0)


# --- arm tilts ------------------------------------------------------------------------


def test_arm_tilts_are_well_formed() -> None:
    assert set(ARM_TILTS) == set(ARMS)
    for tilts in ARM_TILTS.values():
        assert set(tilts) <= set(WEIGHT_NAMES)
        assert all(-1.0 <= t <= 1.0 for t in tilts.values())


@pytest.mark.parametrize("arm", ARMS)
@pytest.mark.parametrize("value", [0.0, 0.37, 1.0])
def test_arm_weights_stay_in_unit_interval(arm: str, value: float) -> None:
    weights = arm_weights(arm, dict.fromkeys(WEIGHT_NAMES, value))
    assert list(weights) == list(WEIGHT_NAMES)
    assert all(0.0 <= w <= 1.0 for w in weights.values())


def test_personalized_is_identity() -> None:
    user = default_weights() | {"novelty": 0.123456789, "genre_match": 1.0}
    assert arm_weights("personalized", user) == user


def _raised(arm: str, name: str) -> float:
    return arm_weights(arm, default_weights())[name] - default_weights()[name]


def test_arm_tilts_point_the_right_way() -> None:
    assert _raised("popular", "popularity") > 0
    assert _raised("popular", "taste_match") < 0 and _raised("popular", "novelty") < 0
    assert _raised("discovery", "novelty") > 0 and _raised("discovery", "diversity") > 0
    assert _raised("discovery", "popularity") < 0
    for name in ("mood_match", "valence_match", "energy_match"):
        assert _raised("mood_match", name) > 0
    assert _raised("comfort", "mood_match") > 0 and _raised("comfort", "valence_match") > 0
    # weights an arm is not about stay as the user has them
    assert _raised("popular", "genre_match") == 0
    assert _raised("comfort", "novelty") == 0


def test_an_arm_can_raise_a_weight_the_user_set_to_zero() -> None:
    zeroed = default_weights() | {"novelty": 0.0}
    assert arm_weights("discovery", zeroed)["novelty"] > 0


def test_arm_weights_rejects_unknown_arm() -> None:
    with pytest.raises(ValueError):
        arm_weights("jukebox", default_weights())
