"""The policies compared: which arm (strategy) serves each recommendation, and whether the
listener's feedback is learned from. Pure: the product's own ``choose_arm`` for Thompson
sampling; the rest are the baselines.

- ``adaptive``: the product. Thompson sampling over the eligible arms (``choose_arm`` on the
  listener's Beta posteriors, new arms starting from the prior shrunk toward all listeners'
  aggregate), the arm's tilt of the listener's weights, and learning from every event:
  rewards update the posteriors and the aggregate, feedback moves the weights, likes and
  saves join the liked tracks that taste similarity reads.
- ``static``: the default weights and the ``personalized`` arm, nothing learned (no weight
  changes, no posteriors, no liked tracks). It still reads the conversation (genres,
  artists, mood, comfort) and avoids what it served lately, as the product does.
- ``popular``: the ``popular`` arm (popularity up, novelty and taste down) with the default
  weights, nothing learned.
- ``random``: tracks drawn uniformly from the catalog (none it served the listener lately).
- ``epsilon_greedy``: with probability 0.1 a uniformly random eligible arm, otherwise the
  arm with the highest posterior mean; the same posteriors, priors and learning as
  ``adaptive``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from v5_shared.domain.bandit import UNIFORM, Posterior, choose_arm

ArmRule = Literal["thompson", "epsilon_greedy", "fixed", "random_tracks"]


@dataclass(frozen=True)
class Policy:
    name: str
    rule: ArmRule
    learns: bool
    fixed_arm: str | None = None
    epsilon: float = 0.0


POLICIES: dict[str, Policy] = {
    "adaptive": Policy("adaptive", "thompson", learns=True),
    "static": Policy("static", "fixed", learns=False, fixed_arm="personalized"),
    "popular": Policy("popular", "fixed", learns=False, fixed_arm="popular"),
    "random": Policy("random", "random_tracks", learns=False),
    "epsilon_greedy": Policy("epsilon_greedy", "epsilon_greedy", learns=True, epsilon=0.1),
}


def choose(
    policy: Policy,
    posteriors: Mapping[str, Posterior],
    eligible: Sequence[str],
    rng: np.random.Generator,
) -> tuple[str, float]:
    """The arm for this recommendation and the probability the policy had of choosing it."""
    if policy.rule == "thompson":
        arm, propensity, _ = choose_arm(posteriors, eligible, rng)
        return arm, propensity
    if policy.rule == "epsilon_greedy":
        arms = list(eligible)
        means = [posteriors.get(a, UNIFORM).mean for a in arms]
        greedy = arms[int(np.argmax(means))]  # ties: the first in the eligible order
        explore = rng.random() < policy.epsilon
        arm = arms[int(rng.integers(len(arms)))] if explore else greedy
        share = policy.epsilon / len(arms)
        return arm, share + (1.0 - policy.epsilon) * (arm == greedy)
    if policy.rule == "fixed":
        assert policy.fixed_arm is not None
        return policy.fixed_arm, 1.0
    raise ValueError(f"policy {policy.name!r} does not choose arms")
