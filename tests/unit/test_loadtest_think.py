"""The think-time schedule: exponential pauses whose mean changes at step boundaries."""

from __future__ import annotations

import math
import random

import pytest

from loadtests.think import ThinkSchedule, ThinkStep, ThinkTime

TWO_STEPS = ThinkSchedule(start=100.0, steps=(ThinkStep(10.0, 30.0), ThinkStep(1.0, 30.0)))


def test_a_constant_pace_scales_the_unit_draw_by_the_mean() -> None:
    schedule = ThinkSchedule.constant(10.0)
    assert schedule.wait(now=12345.0, unit_exponential=0.7) == pytest.approx(7.0)


def test_a_pause_that_reaches_the_next_step_continues_at_its_pace() -> None:
    # At 125, 5 s of the slow step are left: they use up 0.5 of the unit draw of 1.0; the
    # other 0.5 at a mean of 1 s takes 0.5 s into the fast step.
    assert TWO_STEPS.wait(now=125.0, unit_exponential=1.0) == pytest.approx(5.5)
    # Within the step, the step's own mean.
    assert TWO_STEPS.wait(now=125.0, unit_exponential=0.2) == pytest.approx(2.0)


def test_the_first_pace_holds_before_the_start_and_the_last_after_the_end() -> None:
    assert TWO_STEPS.wait(now=0.0, unit_exponential=0.5) == pytest.approx(5.0)
    assert TWO_STEPS.wait(now=1000.0, unit_exponential=3.0) == pytest.approx(3.0)


def test_each_step_offers_its_own_request_rate() -> None:
    """One user simulated through both steps many times: the number of requests in each
    step is its length over its mean think time."""
    rng = random.Random(7)
    counts = [0, 0]
    runs = 400
    for _ in range(runs):
        now = TWO_STEPS.start + rng.uniform(0, 10) - 10  # a random phase before the start
        while True:
            now += TWO_STEPS.wait(now, rng.expovariate(1.0))
            if now >= TWO_STEPS.start + 60:
                break
            if now >= TWO_STEPS.start:
                counts[0 if now < TWO_STEPS.start + 30 else 1] += 1
    assert counts[0] / runs == pytest.approx(3.0, rel=0.1)
    assert counts[1] / runs == pytest.approx(30.0, rel=0.05)


def test_the_schedule_travels_as_json() -> None:
    assert ThinkSchedule.from_json(TWO_STEPS.to_json()) == TWO_STEPS


@pytest.mark.parametrize(
    "steps", [(), (ThinkStep(0.0, 10.0),), (ThinkStep(1.0, 0.0),), (ThinkStep(-1.0, 5.0),)]
)
def test_a_schedule_without_positive_steps_is_refused(steps: tuple[ThinkStep, ...]) -> None:
    with pytest.raises(ValueError):
        ThinkSchedule(start=0.0, steps=steps)


def test_think_time_draws_positive_pauses_with_the_schedule_mean() -> None:
    think = ThinkTime(ThinkSchedule.constant(2.0), random.Random(3))
    pauses = [think() for _ in range(20_000)]
    assert all(p > 0 for p in pauses)
    assert sum(pauses) / len(pauses) == pytest.approx(2.0, rel=0.05)
    # Exponential: as many pauses below the mean's ln 2 multiple (the median) as above.
    below_median = sum(p < 2.0 * math.log(2) for p in pauses) / len(pauses)
    assert below_median == pytest.approx(0.5, abs=0.02)
