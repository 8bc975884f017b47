"""The learning domain shared by the recommendation and learning services, without I/O:
the nine scoring weights and how feedback moves them, Thompson sampling over strategies,
and the rewards of listening events."""

from v5_shared.domain.bandit import (
    ARM_TILTS,
    ARMS,
    Posterior,
    arm_weights,
    choose_arm,
    eligible_arms,
    prior_from_aggregate,
    update_posterior,
)
from v5_shared.domain.rewards import EVENTS, reward_for
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

__all__ = [
    "ARMS",
    "ARM_TILTS",
    "DEFAULT_WEIGHTS",
    "EVENTS",
    "FEEDBACK_TYPES",
    "WEIGHT_NAMES",
    "Posterior",
    "WeightValidationError",
    "apply_explicit",
    "apply_feedback",
    "arm_weights",
    "choose_arm",
    "complete_weights",
    "default_weights",
    "eligible_arms",
    "normalise_affinities",
    "prior_from_aggregate",
    "reward_for",
    "track_feature_matches",
    "update_posterior",
    "validate_explicit",
]
