"""Explicit SQL for offline policy evaluation (`v5ctl evaluate`): the logged impressions
(`recommendations`) with the reward each one earned (`feedback_events`), streamed through
a server-side cursor so a log of any length is evaluated in constant memory.

**An impression's reward** is the mean of the rewards recorded for its recommendation_id
(a listener may react to several of its tracks, or to one track more than once; each
reward is in [-1, 1], so the mean is too, and it is the per-event reward the bandit learns
from, averaged so an impression counts once). An impression without any feedback:

- ``zero`` (the default): counts with reward 0, the midpoint of the scale, which is also
  how much an ignored recommendation moves the bandit's posterior mean (not at all). Every
  impression stays in, so the estimate is the value per recommendation *served*, and it is
  unbiased for a target policy even when arms differ in how often they get any reaction
  at all -- which is part of how good an arm is.
- ``exclude``: left out. The estimate is then the value per recommendation *reacted to*;
  it conditions on something that happened after the arm was chosen, so it is biased
  whenever the arms' reaction rates differ. For diagnostics.

Feedback for an impression keeps arriving after it was served: evaluate up to an
``until`` some time ago (the reward endpoint accepts rewards for as long as the
recommendation is stored), or recent impressions count as unrewarded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
import orjson

from .domain.evaluation import (
    DEFAULT_CONFIDENCE,
    EvaluationResult,
    LoggedRecord,
    LogValidationError,
    OffPolicyEvaluator,
    TargetPolicy,
)

MissingReward = Literal["zero", "exclude"]
MISSING_REWARD_CHOICES: tuple[MissingReward, ...] = ("zero", "exclude")

# Rows fetched from the server-side cursor per round trip.
DEFAULT_BATCH_SIZE = 2000

# $1 since (inclusive) and $2 until (exclusive), $3 the user, each NULL for no filter;
# $4 true to keep impressions without feedback. The rewards are aggregated per
# (recommendation_id, user_id): the reward endpoint only accepts a reward from the user the
# recommendation was served to. The table's jsonb comes as text, decoded here, so this
# needs no codec on the connection. Ordered, so that the same log always sums in the same
# order and gives the same figures to the last digit.
_IMPRESSIONS = """
SELECT r.recommendation_id, r.arm, r.propensity, r.arm_probabilities::text AS probabilities,
       r.comfort, f.reward, coalesce(f.events, 0) AS events
FROM recommendations r
LEFT JOIN (
    SELECT recommendation_id, user_id, avg(reward) AS reward, count(*) AS events
    FROM feedback_events
    WHERE $3::text IS NULL OR user_id = $3::text
    GROUP BY recommendation_id, user_id
) f ON f.recommendation_id = r.recommendation_id AND f.user_id = r.user_id
WHERE ($1::timestamptz IS NULL OR r.created_at >= $1::timestamptz)
  AND ($2::timestamptz IS NULL OR r.created_at < $2::timestamptz)
  AND ($3::text IS NULL OR r.user_id = $3::text)
  AND ($4::boolean OR f.recommendation_id IS NOT NULL)
ORDER BY r.created_at, r.recommendation_id
"""


@dataclass(frozen=True, slots=True)
class StoredImpression:
    """A logged impression ready for the estimator, and how many feedback events it had
    (0: its reward is the missing-reward default)."""

    record: LoggedRecord
    feedback_events: int


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    result: EvaluationResult
    rewarded: int
    unrewarded: int


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


async def iter_impressions(
    conn: asyncpg.Connection,
    *,
    missing_reward: MissingReward = "zero",
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> AsyncGenerator[StoredImpression, None]:
    """The impressions created in ``[since, until)`` (of ``user_id``, when given), oldest
    first, with their rewards (module docstring), fetched ``batch_size`` rows at a time
    from a server-side cursor in one read-only repeatable-read transaction (one consistent
    snapshot, however long the scan takes)."""
    if missing_reward not in MISSING_REWARD_CHOICES:
        raise ValueError(
            f"missing_reward must be one of {', '.join(MISSING_REWARD_CHOICES)}, "
            f"got {missing_reward!r}"
        )
    _require_aware("since", since)
    _require_aware("until", until)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = conn.cursor(
            _IMPRESSIONS,
            since,
            until,
            user_id,
            missing_reward == "zero",
            prefetch=batch_size,
        )
        async for row in cursor:
            recommendation_id = row["recommendation_id"]
            try:
                probabilities = orjson.loads(row["probabilities"])
            except orjson.JSONDecodeError as exc:  # jsonb is valid JSON; this guards edits
                raise LogValidationError(
                    f"record {recommendation_id!r}: arm_probabilities is not JSON: {exc}"
                ) from exc
            reward = row["reward"]
            yield StoredImpression(
                LoggedRecord(
                    arm=row["arm"],
                    propensity=row["propensity"],
                    probabilities=probabilities,
                    comfort=row["comfort"],
                    reward=0.0 if reward is None else reward,
                    record_id=recommendation_id,
                ),
                row["events"],
            )


async def evaluate_stored(
    dsn: str,
    policy: TargetPolicy,
    *,
    missing_reward: MissingReward = "zero",
    since: datetime | None = None,
    until: datetime | None = None,
    user_id: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> StoredEvaluation:
    """Evaluate ``policy`` on the stored log, on a connection of its own.

    Like the catalog commands, the connection has no statement cache (only unnamed
    prepared statements), so this also runs through a transaction pooler. Raises the
    estimator's errors (``EmptyLogError`` when nothing matches).
    """
    evaluator = OffPolicyEvaluator(policy, confidence=confidence)
    rewarded = unrewarded = 0
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        impressions = iter_impressions(
            conn,
            missing_reward=missing_reward,
            since=since,
            until=until,
            user_id=user_id,
            batch_size=batch_size,
        )
        # aclosing: a record the estimator refuses ends the transaction right away, before
        # the connection closes, not whenever the generator is collected.
        async with aclosing(impressions):
            async for impression in impressions:
                evaluator.add(impression.record)
                if impression.feedback_events:
                    rewarded += 1
                else:
                    unrewarded += 1
    finally:
        await conn.close()
    return StoredEvaluation(evaluator.result(), rewarded, unrewarded)
