"""Explicit SQL for the per-listener learning state (weights, posteriors, rewards,
impressions). Learning writes it; conversation (status) and recommendation read it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .domain.bandit import Posterior
from .domain.weights import default_weights


@dataclass(frozen=True, slots=True)
class WeightsState:
    weights: dict[str, float]
    adjustment_count: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ArmState:
    alpha: float
    beta: float
    pulls: int


@dataclass(frozen=True, slots=True)
class RewardSummary:
    count: int
    total: float

    @property
    def mean(self) -> float | None:
        return None if self.count == 0 else self.total / self.count


def _merge_defaults(stored: dict[str, float] | None) -> dict[str, float]:
    # A weight added to the model later gets its default for users stored before.
    weights = default_weights()
    if stored:
        weights.update({k: float(v) for k, v in stored.items() if k in weights})
    return weights


# reads ------------------------------------------------------------------------------------


async def weights_of(conn: asyncpg.Connection, user_id: str) -> WeightsState:
    row = await conn.fetchrow(
        "SELECT weights, adjustment_count, updated_at FROM user_weights WHERE user_id = $1",
        user_id,
    )
    if row is None:
        return WeightsState(default_weights(), 0, None)
    return WeightsState(_merge_defaults(row["weights"]), row["adjustment_count"], row["updated_at"])


async def aggregate_posteriors(conn: asyncpg.Connection) -> dict[str, Posterior]:
    rows = await conn.fetch("SELECT arm, alpha, beta FROM bandit_aggregate")
    return {r["arm"]: Posterior(r["alpha"], r["beta"]) for r in rows}


async def recommendation_of(
    conn: asyncpg.Connection, recommendation_id: str
) -> dict[str, Any] | None:
    if "\x00" in recommendation_id:
        # PostgreSQL's text cannot hold NUL, so no stored id has one (and the query would
        # fail): an unknown id, like any other.
        return None
    row = await conn.fetchrow(
        "SELECT recommendation_id, user_id, arm, propensity, track_ids FROM recommendations"
        " WHERE recommendation_id = $1",
        recommendation_id,
    )
    return None if row is None else dict(row)


@dataclass(frozen=True, slots=True)
class ListenerLearning:
    """Everything learned about a listener, read in one round trip."""

    weights: WeightsState
    arms: dict[str, ArmState]
    aggregate: dict[str, Posterior]
    liked_track_ids: list[str]
    rewards: RewardSummary


async def listener_learning(
    conn: asyncpg.Connection, user_id: str, *, liked_limit: int = 50
) -> ListenerLearning:
    row = await conn.fetchrow(
        """
        SELECT
            (SELECT json_build_object('weights', weights, 'count', adjustment_count,
                                      'updated_at', updated_at)
             FROM user_weights WHERE user_id = $1) AS weights,
            (SELECT coalesce(json_agg(json_build_object(
                 'arm', arm, 'alpha', alpha, 'beta', beta, 'pulls', pulls)), '[]')
             FROM bandit_arms WHERE user_id = $1) AS arms,
            (SELECT coalesce(json_agg(json_build_object(
                 'arm', arm, 'alpha', alpha, 'beta', beta)), '[]')
             FROM bandit_aggregate) AS aggregate,
            (SELECT coalesce(array_agg(track_id ORDER BY at DESC), '{}') FROM (
                 SELECT track_id, max(at) AS at FROM (
                     SELECT track_id, created_at AS at FROM feedback_events
                     WHERE user_id = $1 AND event IN ('like', 'save')
                     UNION ALL
                     SELECT track_id, changed_at FROM weight_changes
                     WHERE user_id = $1 AND feedback IN ('like', 'save')
                       AND track_id IS NOT NULL
                 ) liked GROUP BY track_id ORDER BY max(at) DESC LIMIT $2
             ) recent) AS liked,
            (SELECT json_build_object('count', count(*), 'total', coalesce(sum(reward), 0))
             FROM feedback_events WHERE user_id = $1) AS rewards
        """,
        user_id,
        liked_limit,
    )
    assert row is not None
    stored = row["weights"]
    weights = (
        WeightsState(default_weights(), 0, None)
        if stored is None
        else WeightsState(
            _merge_defaults(stored["weights"]),
            int(stored["count"]),
            None if stored["updated_at"] is None else datetime.fromisoformat(stored["updated_at"]),
        )
    )
    return ListenerLearning(
        weights=weights,
        arms={a["arm"]: ArmState(a["alpha"], a["beta"], a["pulls"]) for a in row["arms"]},
        aggregate={a["arm"]: Posterior(a["alpha"], a["beta"]) for a in row["aggregate"]},
        liked_track_ids=list(row["liked"]),
        rewards=RewardSummary(int(row["rewards"]["count"]), float(row["rewards"]["total"])),
    )


# writes (learning) --------------------------------------------------------------------------


async def lock_weights(conn: asyncpg.Connection, user_id: str) -> WeightsState:
    """The user's weights row, created with the defaults if missing, locked FOR UPDATE until
    the transaction ends: concurrent adjustments on any replica queue here, none is lost."""
    await conn.execute(
        "INSERT INTO user_weights (user_id, weights) VALUES ($1, $2)"
        " ON CONFLICT (user_id) DO NOTHING",
        user_id,
        default_weights(),
    )
    row = await conn.fetchrow(
        "SELECT weights, adjustment_count, updated_at FROM user_weights"
        " WHERE user_id = $1 FOR UPDATE",
        user_id,
    )
    assert row is not None
    return WeightsState(_merge_defaults(row["weights"]), row["adjustment_count"], row["updated_at"])


async def save_weights(
    conn: asyncpg.Connection,
    user_id: str,
    *,
    action: str,
    before: dict[str, float],
    after: dict[str, float],
    track_id: str | None = None,
    feedback: str | None = None,
) -> WeightsState:
    row = await conn.fetchrow(
        """
        UPDATE user_weights
        SET weights = $2, adjustment_count = adjustment_count + 1, updated_at = now()
        WHERE user_id = $1
        RETURNING weights, adjustment_count, updated_at
        """,
        user_id,
        after,
    )
    assert row is not None
    await conn.execute(
        "INSERT INTO weight_changes (user_id, action, track_id, feedback, before, after)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        user_id,
        action,
        track_id,
        feedback,
        before,
        after,
    )
    return WeightsState(_merge_defaults(row["weights"]), row["adjustment_count"], row["updated_at"])


async def apply_reward(
    conn: asyncpg.Connection,
    user_id: str,
    arm: str,
    *,
    prior: Posterior,
    alpha_increment: float,
    beta_increment: float,
) -> Posterior:
    """Add the reward to the user's posterior of `arm` in one statement (created from the
    prior the first time) and to all users' aggregate; return the user's new posterior."""
    row = await conn.fetchrow(
        """
        INSERT INTO bandit_arms AS b (user_id, arm, alpha, beta)
        VALUES ($1, $2, $3::float8 + $5::float8, $4::float8 + $6::float8)
        ON CONFLICT (user_id, arm) DO UPDATE
        SET alpha = b.alpha + $5::float8, beta = b.beta + $6::float8, updated_at = now()
        RETURNING alpha, beta
        """,
        user_id,
        arm,
        prior.alpha,
        prior.beta,
        alpha_increment,
        beta_increment,
    )
    assert row is not None
    await conn.execute(
        """
        INSERT INTO bandit_aggregate AS g (arm, alpha, beta, rewards)
        VALUES ($1, 1 + $2::float8, 1 + $3::float8, 1)
        ON CONFLICT (arm) DO UPDATE
        SET alpha = g.alpha + $2::float8, beta = g.beta + $3::float8, rewards = g.rewards + 1,
            updated_at = now()
        """,
        arm,
        alpha_increment,
        beta_increment,
    )
    return Posterior(row["alpha"], row["beta"])


async def insert_feedback_event(
    conn: asyncpg.Connection,
    *,
    user_id: str,
    recommendation_id: str,
    track_id: str,
    event: str,
    listen_ratio: float | None,
    reward: float,
    arm: str,
) -> None:
    await conn.execute(
        "INSERT INTO feedback_events"
        " (user_id, recommendation_id, track_id, event, listen_ratio, reward, arm)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        user_id,
        recommendation_id,
        track_id,
        event,
        listen_ratio,
        reward,
        arm,
    )


async def insert_impressions(
    conn: asyncpg.Connection,
    impressions: Sequence[dict[str, Any]],
    priors: Mapping[str, Posterior],
) -> tuple[int, list[str]]:
    """Store a batch of served recommendations (idempotent: a redelivered one is skipped) and
    count each as a pull of its arm for its user (an arm seen for the first time starts
    from its prior). Returns how many were stored and the users who got a new posterior
    row, the only change here that recommendations read."""
    if not impressions:
        return 0, []
    rows = await conn.fetch(
        """
        INSERT INTO recommendations (recommendation_id, user_id, arm, propensity,
            arm_probabilities, track_ids, scores, comfort, cold_start, created_at)
        SELECT i.recommendation_id, i.user_id, i.arm, i.propensity, i.arm_probabilities,
               i.track_ids, i.scores, i.comfort, i.cold_start, i.created_at
        FROM jsonb_to_recordset($1::jsonb) AS i(
            recommendation_id text, user_id text, arm text, propensity double precision,
            arm_probabilities jsonb, track_ids text[], scores real[], comfort boolean,
            cold_start boolean, created_at timestamptz)
        WHERE EXISTS (SELECT 1 FROM users u WHERE u.user_id = i.user_id)
        ON CONFLICT (recommendation_id) DO NOTHING
        RETURNING user_id, arm
        """,
        list(impressions),
    )
    pulls: dict[tuple[str, str], int] = {}
    for r in rows:
        pulls[(r["user_id"], r["arm"])] = pulls.get((r["user_id"], r["arm"]), 0) + 1
    if not pulls:
        return 0, []
    keys = sorted(pulls)  # one lock order for every batch: concurrent batches cannot deadlock
    created = await conn.fetch(
        """
        INSERT INTO bandit_arms AS b (user_id, arm, alpha, beta, pulls)
        SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::int[])
        ON CONFLICT (user_id, arm) DO UPDATE SET pulls = b.pulls + excluded.pulls
        RETURNING user_id, xmax = 0 AS created
        """,
        [user for user, _ in keys],
        [arm for _, arm in keys],
        [priors[arm].alpha for _, arm in keys],
        [priors[arm].beta for _, arm in keys],
        [pulls[key] for key in keys],
    )
    return len(rows), [r["user_id"] for r in created if r["created"]]
