"""How long a simulated user thinks between two requests.

A person's pauses are taken as exponential (mean V5_THINK_SECONDS, default 10 s), so each
user's requests form a Poisson process and many users together offer a steady load with no
synchronised bursts; the first wait is drawn the same way, which gives every user a random
start phase.

Capacity runs raise the offered load in steps by shortening the mean think time at set
moments (V5_THINK_SCHEDULE). The wait is then drawn from the Poisson process whose rate
changes at each step, by inverting its cumulative rate: a user in a long pause at the end of
a slow step picks up the next step's pace at the step boundary, as the memoryless property
says it should, instead of finishing a pause drawn for the slow step.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass

DEFAULT_THINK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ThinkStep:
    think_seconds: float
    seconds: float


@dataclass(frozen=True, slots=True)
class ThinkSchedule:
    """Mean think time over time: `steps` one after another from `start` (a Unix time). The
    first step's pace also holds before the start, the last one's after the end."""

    start: float
    steps: tuple[ThinkStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a schedule needs at least one step")
        if any(s.think_seconds <= 0 or s.seconds <= 0 for s in self.steps):
            raise ValueError("think times and step lengths must be positive")

    @classmethod
    def constant(cls, think_seconds: float) -> ThinkSchedule:
        return cls(start=0.0, steps=(ThinkStep(think_seconds, math.inf),))

    def boundaries(self) -> list[tuple[float, float, float]]:
        """(from, to, mean think) of each step, the first from -inf and the last to +inf."""
        spans = []
        begin = self.start
        for step in self.steps:
            spans.append((begin, begin + step.seconds, step.think_seconds))
            begin += step.seconds
        first_to, first_mean = spans[0][1], spans[0][2]
        spans[0] = (-math.inf, first_to, first_mean)
        last_from, last_mean = spans[-1][0], spans[-1][2]
        spans[-1] = (last_from, math.inf, last_mean)
        return spans

    def wait(self, now: float, unit_exponential: float) -> float:
        """Seconds from `now` to the next request, for a draw of an exponential of mean 1:
        the time at which the cumulative rate (1 / mean think, step by step) reaches it."""
        hazard_left = unit_exponential
        at = now
        for _begin, end, mean in self.boundaries():
            if end <= at:
                continue
            hazard_here = (end - at) / mean
            if hazard_left <= hazard_here:
                return at + hazard_left * mean - now
            hazard_left -= hazard_here
            at = end
        raise AssertionError("the last step never ends")

    def to_json(self) -> str:
        return json.dumps(
            {"start": self.start, "steps": [[s.think_seconds, s.seconds] for s in self.steps]}
        )

    @classmethod
    def from_json(cls, text: str) -> ThinkSchedule:
        data = json.loads(text)
        steps = tuple(ThinkStep(float(think), float(seconds)) for think, seconds in data["steps"])
        return cls(start=float(data["start"]), steps=steps)


def schedule_from_environment() -> ThinkSchedule:
    """V5_THINK_SCHEDULE (a schedule's JSON, set by the capacity runner) or else a constant
    V5_THINK_SECONDS."""
    scheduled = os.environ.get("V5_THINK_SCHEDULE")
    if scheduled:
        return ThinkSchedule.from_json(scheduled)
    think = float(os.environ.get("V5_THINK_SECONDS") or DEFAULT_THINK_SECONDS)
    return ThinkSchedule.constant(think)


class ThinkTime:
    """A locust `wait_time`: called with the user, returns the pause before its next request."""

    def __init__(self, schedule: ThinkSchedule, rng: random.Random | None = None) -> None:
        self.schedule = schedule
        self.rng = rng or random.Random()

    def __call__(self, _user: object = None) -> float:
        return self.schedule.wait(time.time(), self.rng.expovariate(1.0))
