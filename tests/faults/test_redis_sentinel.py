"""Redis behind Sentinel: the master fails over, and the services carry on by themselves.

A Sentinel set on free loopback ports (tests/faults/sentinel.py: a master and two replicas,
append-only like the cluster's Redis, ``min-replicas-to-write 1``; three sentinels, quorum
2, down after 1 s, failover timeout 3 s) and a throwaway cluster whose services use
``REDIS_URL=redis+sentinel://...`` (the cluster's own Redis stays unused).

- Planned failover (``SENTINEL FAILOVER``, in process, the shared package's own client and
  session store): the old master keeps running and is demoted; every error on the way is a
  dependency error (a 503 in a service), every call returns within 2 s, writes go to the
  new master within 10 s, and the Lua scripts run there after NOSCRIPT. The writes that the
  old master took after the promotion are lost (Sentinel does not stop the old master from
  accepting them): counted and reported.
- What ``WAIT 1`` after a session write would cost (in process), for the decision below.
- SIGKILL of the master under the background load through the gateway: while the sentinels
  promote a replica every failure is a fast 503 (never a 500, nothing slower than 2 s), every
  request sent from 10 s after the kill on succeeds, as do traffic peaks before and after;
  no service restarted; every acknowledged weight, reward and feedback (PostgreSQL) has
  exactly one effect; the learning service's consumer group carries on on the new master
  (every served recommendation is stored in PostgreSQL); the old master, started again,
  rejoins as a replica of the new one. Redis replicates asynchronously, so the writes that
  the old master acknowledged in its last moment and had not yet sent to a replica can be
  lost: session turns and impressions are counted against what was acknowledged, and any
  lost one must have been acknowledged in the last second before the kill.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from v5_shared.datastores import create_redis
from v5_shared.errors import DEPENDENCY_ERRORS
from v5_shared.ratelimit import RateLimit, RateLimiter
from v5_shared.redis_sentinel import close_sentinels
from v5_shared.sessions import SessionStore
from v5_shared.settings import Settings

from .conftest import FaultCluster, throwaway_cluster
from .load import (
    API,
    FAST_503_SECONDS,
    Attempt,
    BackgroundLoad,
    LoadUser,
    describe,
    percentile,
    provision_users,
    spike,
    verify_effects,
)
from .sentinel import SentinelSet, sentinel_set, wait_until

pytestmark = pytest.mark.faults

WARM_UP_SECONDS = 3.0
# Every request sent this long after the kill (or the failover command) succeeds.
RECOVERY_BOUND_SECONDS = 10.0
# A write lost by the failover was acknowledged at most this long before the kill.
LOSS_WINDOW_SECONDS = 1.0
PEAK_CLIENTS = 24
PLANNED_WORKERS = 8
PLANNED_SECONDS_AFTER = 12.0
WAIT_SAMPLES = 1000
WAIT_TIMEOUT_MS = 100
# Ops that need Redis to succeed: a success after the kill means the new master is in use.
REDIS_WRITES = ("turn", "recommend")


@pytest.fixture(scope="module")
def redis_set() -> Iterator[SentinelSet]:
    with sentinel_set() as started:
        yield started


@pytest.fixture(scope="module")
def module_cluster(redis_set: SentinelSet) -> Iterator[FaultCluster]:
    """This module's cluster: every service's Redis is the Sentinel set's master."""
    with throwaway_cluster("test_redis_sentinel", {"REDIS_URL": redis_set.url}) as cluster:
        yield cluster


def _settings(redis_set: SentinelSet) -> Settings:
    return Settings(redis_url=redis_set.url, access_log=False)


async def _close(redis: Redis) -> None:
    await redis.aclose()
    await close_sentinels(redis)


# planned failover -------------------------------------------------------------------------
async def _planned_failover(redis_set: SentinelSet) -> dict[str, Any]:
    redis = create_redis(_settings(redis_set))
    sessions = SessionStore(redis, ttl_seconds=600)
    limiter = RateLimiter(redis, f"sentinel-test-{uuid.uuid4().hex[:6]}")
    users = [f"planned-{uuid.uuid4().hex[:8]}" for _ in range(PLANNED_WORKERS)]
    acked: dict[str, list[float]] = {user: [] for user in users}
    calls: list[tuple[float, float, BaseException | None]] = []
    stop = asyncio.Event()

    async def work(user: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            error: BaseException | None = None
            try:
                await sessions.apply_turn(
                    user,
                    candidate_session_id=uuid.uuid4().hex,
                    now_iso="2026-12-03T00:00:00+00:00",
                    turn_fields={"message": "x"},
                    point_fields=None,
                    mentions={},
                    idempotency=None,
                )
                acked[user].append(time.monotonic())
                await limiter.retry_after(user, RateLimit(per_second=1e6, burst=10**6))
            except Exception as exc:
                error = exc
            calls.append((started, time.monotonic() - started, error))
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(work(user)) for user in users]
    try:
        await asyncio.sleep(2.0)
        old = redis_set.planned_failover()
        failover_at = redis_set.failover_at
        await asyncio.sleep(PLANNED_SECONDS_AFTER)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    try:
        turns = {user: (await sessions.read(user)).turns for user in users}
    finally:
        await _close(redis)
    return {
        "old": old,
        "failover_at": failover_at,
        "calls": calls,
        "acked": acked,
        "turns": turns,
    }


def test_planned_failover_moves_every_client_to_the_new_master(
    redis_set: SentinelSet, report: Callable[[str], None]
) -> None:
    redis_set.wait_settled()
    run = asyncio.run(_planned_failover(redis_set))
    failover_at: float = run["failover_at"]
    calls: list[tuple[float, float, BaseException | None]] = run["calls"]
    new = redis_set.master_port()
    failures = [(sent, took, exc) for sent, took, exc in calls if exc is not None]
    kinds = Counter(f"{type(exc).__name__}: {str(exc)[:60]}" for _, _, exc in failures)
    acked, turns = run["acked"], run["turns"]
    lost = sum(len(acked[user]) - turns[user] for user in acked)
    doubled = [user for user in acked if turns[user] > len(acked[user])]
    first_ok = min(
        (sent for sent, _, exc in calls if exc is None and sent > failover_at), default=None
    )
    report(
        f"planned failover :{run['old']} -> :{new}: {len(calls)} calls, {len(failures)} failed "
        f"({dict(kinds)}); failures from +{(failures[0][0] - failover_at) if failures else 0:.2f}"
        f" to +{(failures[-1][0] + failures[-1][1] - failover_at) if failures else 0:.2f} s after"
        f" the command; slowest {max(took for _, took, _ in calls) * 1000:.0f} ms; NOSCRIPT "
        f"on the new master {redis_set.errorstats(new).get('NOSCRIPT', 0)}; acknowledged turns "
        f"lost {lost} of {sum(len(v) for v in acked.values())}"
    )
    assert new != run["old"]
    wrong = [exc for _, _, exc in failures if not isinstance(exc, DEPENDENCY_ERRORS)]
    assert wrong == [], f"errors that would not be a 503: {wrong[:5]}"
    slow = [took for _, took, _ in calls if took >= FAST_503_SECONDS]
    assert slow == [], f"calls slower than {FAST_503_SECONDS} s: {slow}"
    late = [sent for sent, _, exc in failures if sent > failover_at + RECOVERY_BOUND_SECONDS]
    assert late == [], f"{len(late)} failures later than {RECOVERY_BOUND_SECONDS} s after it"
    assert first_ok is not None
    assert redis_set.errorstats(new).get("NOSCRIPT", 0) >= 1, "the scripts were not reloaded"
    assert doubled == [], f"sessions with more turns than acknowledged: {doubled}"
    # The old master is demoted by the sentinels and follows the new one.
    wait_until(lambda: redis_set.replica_of(run["old"], new), 60, "the old master a replica")


# the price of WAIT ------------------------------------------------------------------------
async def _turn_timings(redis_set: SentinelSet) -> dict[str, list[float]]:
    redis = create_redis(_settings(redis_set))
    # One connection, so that WAIT waits for this connection's own last write.
    single = redis.client()
    sessions = SessionStore(single, ttl_seconds=600)
    user = f"wait-{uuid.uuid4().hex[:8]}"
    timings: dict[str, list[float]] = {"turn": [], "turn + WAIT 1": []}
    acked_by: list[int] = []
    try:
        for index in range(2 * WAIT_SAMPLES + 100):
            wait = index % 2 == 1
            started = time.perf_counter()
            await sessions.apply_turn(
                user,
                candidate_session_id="s",
                now_iso="2026-12-03T00:00:00+00:00",
                turn_fields={"message": f"turn {index}"},
                point_fields={"valence": 0.1, "arousal": 0.2},
                mentions={"genres": ["jazz"]},
                idempotency=None,
            )
            if wait:
                acked_by.append(int(await single.wait(1, WAIT_TIMEOUT_MS)))
            took = (time.perf_counter() - started) * 1000
            if index >= 100:  # after a warm-up
                timings["turn + WAIT 1" if wait else "turn"].append(took)
    finally:
        await single.aclose()
        await _close(redis)
    timings["replicas acknowledging"] = [float(n) for n in acked_by]
    return timings


def test_what_waiting_for_a_replica_would_cost(
    redis_set: SentinelSet, report: Callable[[str], None]
) -> None:
    redis_set.wait_settled()
    timings = asyncio.run(_turn_timings(redis_set))
    for name in ("turn", "turn + WAIT 1"):
        values = timings[name]
        report(
            f"{name}: n {len(values)}, p50 {percentile(values, 0.5):.3f} ms, p99 "
            f"{percentile(values, 0.99):.3f} ms"
        )
    replicas = timings["replicas acknowledging"]
    timed_out = sum(n < 1 for n in replicas)
    report(f"WAIT 1 {WAIT_TIMEOUT_MS}: {timed_out} of {len(replicas)} timed out unacknowledged")
    # A replica on the same machine acknowledges within the timeout, but for a rare stall.
    assert timed_out <= len(replicas) // 20


# SIGKILL of the master under load ---------------------------------------------------------
def _acked_times(attempts: list[Attempt], user: LoadUser, op: str) -> list[float]:
    """When each acknowledged write of `op` by `user` was answered, in order: a listener's
    requests are sequential, so the k-th successful attempt is the k-th acknowledged write."""
    return sorted(a.answered for a in attempts if a.user_id == user.user_id and a.op == op and a.ok)


def _session_losses(
    attempts: list[Attempt], url: str, users: list[LoadUser], killed_at: float
) -> tuple[int, list[str]]:
    """Acknowledged turns missing from the sessions, and what no failover explains: more
    turns than acknowledged, a window that is not the acknowledged messages in order, or
    more missing turns than were acknowledged in the last moment before the kill."""
    lost, problems = 0, []
    with httpx.Client(base_url=url, timeout=10) as client:
        for user in users:
            status = client.get(f"{API}/session/{user.user_id}/status", headers=user.headers)
            if status.status_code != 200:
                problems.append(f"{user.user_id}: status {status.status_code}")
                continue
            body = status.json()
            acked = len(user.turns)
            missing = acked - int(body["turns"])
            times = _acked_times(attempts, user, "turn")
            just_before = sum(killed_at - LOSS_WINDOW_SECONDS <= t <= killed_at for t in times)
            if missing < 0:
                problems.append(f"{user.user_id}: {body['turns']} turns, {acked} acknowledged")
            elif missing > just_before:
                problems.append(
                    f"{user.user_id}: {missing} acknowledged turns lost, only {just_before} "
                    f"acknowledged in the {LOSS_WINDOW_SECONDS} s before the kill"
                )
            lost += max(missing, 0)
            messages = [message for _, message, _ in user.turns]
            window = [turn["message"] for turn in body["window"]]
            position = 0
            for message in window:
                try:
                    position = messages.index(message, position) + 1
                except ValueError:
                    problems.append(f"{user.user_id}: window {window} not acknowledged in order")
                    break
    return lost, problems


def _impression_losses(
    cluster: FaultCluster, attempts: list[Attempt], users: list[LoadUser], killed_at: float
) -> tuple[int, int, list[str]]:
    """Acknowledged recommendations that never reached PostgreSQL (through the stream and
    the learning service's consumer group), waited for; (lost, stored after the kill,
    problems)."""
    served = {
        rec_id: answered
        for user in users
        for rec_id, answered in zip(
            user.recommendations, _acked_times(attempts, user, "recommend"), strict=True
        )
    }
    missing: set[str] = set(served)

    def stored() -> bool:
        rows = cluster.fetch(
            "SELECT recommendation_id FROM recommendations WHERE recommendation_id = ANY($1)",
            list(missing),
        )
        missing.difference_update(r["recommendation_id"] for r in rows)
        return not missing

    try:
        wait_until(stored, 15, "every served recommendation stored", pause=0.5)
    except AssertionError:
        pass
    after = sum(t > killed_at for rec_id, t in served.items() if rec_id not in missing)
    problems = [
        f"recommendation {rec_id} acknowledged {served[rec_id] - killed_at:+.2f} s from the kill "
        "never stored"
        for rec_id in sorted(missing)
        if not killed_at - LOSS_WINDOW_SECONDS <= served[rec_id] <= killed_at
    ]
    return len(missing), after, problems


def test_master_sigkill_fails_over_under_load(
    redis_set: SentinelSet,
    fault_cluster: FaultCluster,
    load_users: list[LoadUser],
    report: Callable[[str], None],
) -> None:
    url = fault_cluster.gateway_url
    redis_set.wait_settled()
    peak_users = provision_users(url, PEAK_CLIENTS, prefix="peak")
    services = fault_cluster.service_processes()
    peaks: list[tuple[str, BackgroundLoad]] = []
    nodes = redis_set.redis
    with BackgroundLoad(url, load_users) as load:
        time.sleep(WARM_UP_SECONDS)
        # A peak before the kill leaves every replica with a deep pool of connections.
        peaks.append(("before", spike(url, peak_users)))
        time.sleep(1.0)
        # NOSCRIPT errors each node has answered so far (a script's first use answers one).
        noscript_before = {n.port: redis_set.errorstats(n.port).get("NOSCRIPT", 0) for n in nodes}
        old, killed_at = redis_set.kill_master()
        promoted_at, new = redis_set.wait_promoted(old, timeout=30)
        time.sleep(max(0.0, killed_at + RECOVERY_BOUND_SECONDS - time.monotonic()))
        # The old master comes back (with its append-only file) as a master of its own, and
        # the sentinels make it a replica of the new one; no client goes to it meanwhile.
        redis_set.restart(old)
        restarted_at = time.monotonic()
        rejoined_at = wait_until(lambda: redis_set.replica_of(old, new), 60, "old master rejoined")
        time.sleep(2.0)
        peaks.append(("after", spike(url, peak_users)))
        time.sleep(1.0)

    origin = load.started_at
    attempts = load.attempts
    failures = [a for a in attempts if not a.ok and a.answered >= killed_at]
    first_write_ok = min(
        (a.answered for a in attempts if a.ok and a.op in REDIS_WRITES and a.sent >= killed_at),
        default=float("nan"),
    )
    during = [a for a in attempts if a.overlaps(killed_at, first_write_ok)]
    window = max(a.answered for a in failures) - min(a.sent for a in failures) if failures else 0.0
    last_failure = max((a.answered for a in failures), default=killed_at)
    noscript = redis_set.errorstats(new).get("NOSCRIPT", 0) - noscript_before[new]
    report(load.summary())
    report(
        f"master :{old} SIGKILLed, :{new} promoted (seen by the sentinels) "
        f"{promoted_at - killed_at:.2f} s later; first Redis write through the gateway "
        f"{first_write_ok - killed_at:.2f} s after the kill; failed requests {len(failures)} "
        f"({dict(Counter(str(a.status or a.error) for a in failures))}), from the first failed "
        f"to the last {window:.2f} s, the last answered {last_failure - killed_at:.2f} s after "
        "the kill; slowest answer while away "
        f"{max((a.elapsed for a in during), default=0) * 1000:.0f} ms, slowest of the run "
        f"{max(a.elapsed for a in attempts) * 1000:.0f} ms; NOSCRIPT reloads on the new master "
        f"{noscript}; old master restarted, a replica again {rejoined_at - restarted_at:.2f} s "
        "later"
    )

    # Every figure is reported before anything is asserted.
    violations: list[str] = []
    users = [*load_users, *peak_users]
    wrong = load.failed(lambda a: a.status != 503)
    if wrong:
        violations.append("failures other than 503:\n" + describe(wrong, origin))
    slow = [a for a in attempts if a.elapsed >= FAST_503_SECONDS]
    if slow:
        violations.append(f"answers slower than {FAST_503_SECONDS} s:\n" + describe(slow, origin))
    late = [a for a in failures if a.sent > killed_at + RECOVERY_BOUND_SECONDS]
    if late:
        violations.append(
            f"failures later than {RECOVERY_BOUND_SECONDS} s after the kill:\n"
            + describe(late, origin)
        )
    early = load.failed(lambda a: a.answered < killed_at)
    if early:
        violations.append("failures before the kill:\n" + describe(early, origin))
    for when, peak in peaks:
        report(f"peak {when}: {peak.summary()}")
        if peak.failed() or peak.problems():
            violations.append(
                f"peak {when}:\n{describe(peak.failed(), peak.started_at)}\n{peak.problems()}"
            )
    if fault_cluster.service_processes() != services:
        violations.append("a service restarted")
    violations += load.problems()
    # PostgreSQL's state (weights, feedback, rewards, posteriors) is exact.
    durable = verify_effects(url, users, sessions_last=False)
    report(f"acknowledged PostgreSQL writes with other than exactly one effect: {len(durable)}")
    violations += durable
    every = [*attempts, *(a for _, peak in peaks for a in peak.attempts)]
    lost_turns, session_problems = _session_losses(every, url, users, killed_at)
    lost_impressions, stored_after, impression_problems = _impression_losses(
        fault_cluster, every, users, killed_at
    )
    acked_turns = sum(len(u.turns) for u in users)
    acked_recs = sum(len(u.recommendations) for u in users)
    report(
        f"acknowledged Redis writes lost by the failover: turns {lost_turns} of {acked_turns}, "
        f"impressions {lost_impressions} of {acked_recs} ({stored_after} served after the kill, "
        "all stored through the consumer group on the new master)"
    )
    violations += session_problems + impression_problems
    if stored_after == 0:
        violations.append("no recommendation served after the kill reached PostgreSQL")
    if noscript < 1:
        violations.append("the new master never answered NOSCRIPT: were the scripts not run?")
    assert violations == [], "\n\n".join(violations)
