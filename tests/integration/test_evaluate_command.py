"""`v5ctl evaluate` run for real, as a subprocess, against a synthetic log in PostgreSQL.

The log is the unit tests' synthetic world (tests/unit/test_evaluation.py: four kinds of
context, fixed Thompson-like logging tables, known reward distributions), written into the
real tables with the SQL the learning service uses (`learning_store.insert_impressions`,
`learning_store.insert_feedback_event`). An impression that got a reaction has one or two
feedback events, each a real event (save, like, skip, dislike) with its reward from
`reward_for`; the impression's reward is their mean, so its expected value per context and
arm is the unit world's, and so are the policies' true values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest

from tests.unit.test_evaluation import REACTION, WORLD, true_value
from v5_shared import learning_store
from v5_shared.domain.bandit import ARMS, UNIFORM
from v5_shared.domain.evaluation import LoggedRecord, evaluate, parse_policy
from v5_shared.domain.rewards import reward_for

V5CTL = Path(sys.executable).parent / "v5ctl"

N = 4000
USERS = [f"eval_listener_{i:02d}" for i in range(20)]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
SEED = 7
# A reaction's events: positive ones are saves (30 %) or likes, negative ones dislikes
# (30 %) or skips, as in the unit world's reward distribution.
POSITIVE = ("save", "like")
NEGATIVE = ("dislike", "skip")


@dataclass(frozen=True)
class Impression:
    recommendation_id: str
    user_id: str
    created_at: datetime
    arm: str
    probabilities: dict[str, float]
    comfort: bool
    events: list[str]

    @property
    def reward(self) -> float | None:
        if not self.events:
            return None
        return sum(reward_for(event) for event in self.events) / len(self.events)

    def record(self, missing: float = 0.0) -> LoggedRecord:
        reward = self.reward
        return LoggedRecord(
            arm=self.arm,
            propensity=self.probabilities[self.arm],
            probabilities=self.probabilities,
            comfort=self.comfort,
            reward=missing if reward is None else reward,
            record_id=self.recommendation_id,
        )


def synthetic_impressions(n: int, seed: int) -> list[Impression]:
    rng = np.random.default_rng(seed)
    impressions = []
    for i in range(n):
        kind = WORLD[int(rng.choice(len(WORLD), p=[k.share for k in WORLD]))]
        arms = list(kind.logging)
        arm = arms[int(rng.choice(len(arms), p=[kind.logging[a] for a in arms]))]
        events: list[str] = []
        if rng.random() < REACTION[arm]:
            success = kind.success[arm]
            for _ in range(int(rng.integers(1, 3))):  # one or two events
                if rng.random() < success:
                    events.append(POSITIVE[0] if rng.random() < 0.3 else POSITIVE[1])
                else:
                    events.append(NEGATIVE[0] if rng.random() < 0.3 else NEGATIVE[1])
        impressions.append(
            Impression(
                recommendation_id=f"rec{i:06d}",
                user_id=USERS[i % len(USERS)],
                created_at=BASE + timedelta(minutes=i),
                arm=arm,
                probabilities=dict(kind.logging),
                comfort=kind.comfort,
                events=events,
            )
        )
    return impressions


async def store(conn: asyncpg.Connection, impressions: list[Impression]) -> None:
    # The learning service's connections encode jsonb with orjson (datastores.py).
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )
    await conn.execute(
        "INSERT INTO users (user_id, password_hash) SELECT u, 'x' FROM unnest($1::text[]) u",
        USERS,
    )
    priors = dict.fromkeys(ARMS, UNIFORM)
    for start in range(0, len(impressions), 1000):
        batch = [
            {
                "recommendation_id": imp.recommendation_id,
                "user_id": imp.user_id,
                "arm": imp.arm,
                "propensity": imp.probabilities[imp.arm],
                "arm_probabilities": imp.probabilities,
                "track_ids": ["t1", "t2", "t3"],
                "scores": [0.9, 0.8, 0.7],
                "comfort": imp.comfort,
                "cold_start": False,
                "created_at": imp.created_at.isoformat(),
            }
            for imp in impressions[start : start + 1000]
        ]
        async with conn.transaction():
            stored, _ = await learning_store.insert_impressions(conn, batch, priors)
        assert stored == len(batch)
    async with conn.transaction():
        for imp in impressions:
            for position, event in enumerate(imp.events):
                await learning_store.insert_feedback_event(
                    conn,
                    user_id=imp.user_id,
                    recommendation_id=imp.recommendation_id,
                    track_id=f"t{position + 1}",
                    event=event,
                    listen_ratio=None,
                    reward=reward_for(event),
                    arm=imp.arm,
                )


@pytest.fixture
async def logged(db_dsn: str) -> AsyncIterator[list[Impression]]:
    impressions = synthetic_impressions(N, SEED)
    conn = await asyncpg.connect(db_dsn)
    try:
        await store(conn, impressions)
    finally:
        await conn.close()
    yield impressions


def v5ctl(db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_dsn, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [str(V5CTL), "evaluate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def evaluate_json(db_dsn: str, *args: str) -> dict[str, Any]:
    done = v5ctl(db_dsn, *args, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def within(interval: dict[str, Any], truth: float) -> bool:
    return bool(interval["ci_low"] <= truth <= interval["ci_high"])


async def test_the_true_value_of_always_popular_is_within_the_confidence_intervals(
    db_dsn: str, logged: list[Impression]
) -> None:
    policy = parse_policy("arm:popular")
    truth = true_value(policy)

    report = evaluate_json(db_dsn, "--policy", "arm:popular")

    unrewarded = sum(1 for imp in logged if not imp.events)
    assert report["policy"] == "arm:popular"
    assert report["missing_reward"] == "zero"
    assert report["count"] == N
    assert (report["rewarded"], report["unrewarded"]) == (N - unrewarded, unrewarded)
    assert 0.2 * N < unrewarded < 0.5 * N  # the reward definition is exercised both ways
    assert within(report["ips"], truth), (truth, report["ips"])
    assert within(report["snips"], truth), (truth, report["snips"])
    assert report["ips"]["ci_high"] - report["ips"]["ci_low"] < 0.15
    assert report["confidence"] == 0.95

    # The figures are the estimator's on exactly the impressions and rewards written, each
    # impression's reward the mean of its events' (0 without any): the SQL loses nothing.
    expected = evaluate([imp.record() for imp in logged], policy).to_dict()
    for name in ("ips", "snips", "logging"):
        for field in ("value", "standard_error", "ci_low", "ci_high"):
            assert report[name][field] == pytest.approx(expected[name][field], rel=1e-9)
    assert report["effective_sample_size"] == pytest.approx(expected["effective_sample_size"])
    assert report["max_weight"] == pytest.approx(10.0)  # popular chosen where p = 0.10
    assert report["mean_weight"] == pytest.approx(expected["mean_weight"])
    # ... and the log does tell the policies apart: its own mean is elsewhere.
    assert not within(report["logging"], truth)


async def test_the_logging_policy_filters_and_missing_rewards(
    db_dsn: str, logged: list[Impression]
) -> None:
    # Every weight is 1 when the logged probabilities are the target: IPS is the plain mean
    # reward, to the last digit (the probabilities survive the jsonb round trip exactly).
    on_policy = evaluate_json(db_dsn, "--policy", "logging")
    assert on_policy["ips"]["value"] == on_policy["logging"]["value"]
    assert on_policy["effective_sample_size"] == N
    assert on_policy["max_weight"] == 1.0
    assert on_policy["logging"]["value"] == pytest.approx(
        sum(imp.record().reward for imp in logged) / N, rel=1e-12
    )

    # Leaving out the impressions without feedback.
    excluded = evaluate_json(db_dsn, "--policy", "uniform", "--missing-reward", "exclude")
    rewarded = [imp for imp in logged if imp.events]
    assert excluded["count"] == excluded["rewarded"] == len(rewarded)
    assert excluded["unrewarded"] == 0
    assert excluded["ips"]["value"] == pytest.approx(
        evaluate([imp.record() for imp in rewarded], parse_policy("uniform")).ips.value
    )

    # One listener's impressions in a time window [since, until).
    user = USERS[3]
    since = BASE + timedelta(minutes=1000)
    until = BASE + timedelta(minutes=3000)
    window = evaluate_json(
        db_dsn,
        "--policy",
        "greedy",
        "--user",
        user,
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat().replace("+00:00", "Z"),
    )
    chosen = [imp for imp in logged if imp.user_id == user and since <= imp.created_at < until]
    assert window["count"] == len(chosen) == 100
    assert window["user"] == user
    assert window["since"] == since.isoformat()
    assert window["ips"]["value"] == pytest.approx(
        evaluate([imp.record() for imp in chosen], parse_policy("greedy")).ips.value
    )

    # The readable summary.
    done = v5ctl(db_dsn, "--policy", "epsilon-greedy:0.1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("policy epsilon-greedy:0.1: greedy, uniform over")
    assert f"impressions: {N:,}" in lines[1]
    assert "counted as reward 0" in lines[1]
    assert [line.split()[0] for line in lines[3:6]] == ["IPS", "SNIPS", "logging"]
    assert "95% CI" in lines[2]
    assert "effective sample size" in lines[6]

    # A window with nothing in it.
    empty = v5ctl(db_dsn, "--policy", "uniform", "--since", "2030-01-01T00:00:00+00:00")
    assert empty.returncode == 1
    assert "no logged records" in empty.stderr
    assert empty.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "arm:jazz"], "unknown arm 'jazz'"),
        (["--policy", "best"], "unknown policy 'best'"),
        (["--policy", "epsilon-greedy:1.5"], "bad epsilon"),
        (["--policy", "greedy:1"], "takes no argument"),
        (["--policy", "uniform", "--since", "2026-01-01T00:00:00"], "has no timezone"),
        (["--policy", "uniform", "--until", "yesterday"], "not an ISO 8601 timestamp"),
        (["--policy", "uniform", "--missing-reward", "one"], "invalid choice: 'one'"),
        ([], "the following arguments are required: --policy"),
    ],
)
async def test_bad_arguments_exit_2_with_a_message(
    db_dsn: str, args: list[str], message: str
) -> None:
    done = v5ctl(db_dsn, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
