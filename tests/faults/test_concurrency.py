"""Bursts of concurrent writes of one listener, spread by nginx over both replicas of the
service, while the background load runs for other listeners. Each request runs in its own
thread with its own connection, all released at once.

- 200 concurrent weight feedbacks: adjustment_count goes up by exactly 200, and each answer
  saw a count of its own (1..200: the adjustments were serialised, none lost or merged).
- 50 concurrent turns: the session's turn counter goes up by exactly 50, each answer got a
  turn number of its own, and the window holds the last 10 turns in order, each with the
  message of the request that got that turn number.
- 100 concurrent rewards for one arm: that arm's posterior alpha + beta goes up by exactly
  100, and each answer saw a total of its own.

A request answered 503 (a pool wait bounded by its timeout under the burst) is sent again with
its Idempotency-Key, so a retry cannot add an effect; how many needed that is reported.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import FaultCluster
from .load import (
    API,
    RETRY_PAUSE_SECONDS,
    RETRYABLE_STATUSES,
    BackgroundLoad,
    LoadUser,
    provision_users,
    verify_effects,
)

pytestmark = pytest.mark.faults

FEEDBACKS = 200
TURNS = 50
REWARDS = 100


def _post_until_done(
    client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any, int]:
    """(status, body, attempts) of a POST retried with one Idempotency-Key on 502/503/504."""
    key = f"burst-{uuid.uuid4().hex}"
    deadline = time.monotonic() + 30
    attempts = 0
    while True:
        attempts += 1
        try:
            response = client.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        except httpx.TransportError:
            status, answer = 0, None
        else:
            status, answer = response.status_code, response.json()
        if status not in (0, *RETRYABLE_STATUSES) or time.monotonic() > deadline:
            return status, answer, attempts
        time.sleep(RETRY_PAUSE_SECONDS)


def _burst(
    gateway_url: str,
    count: int,
    request: Callable[[int], tuple[str, dict[str, Any]]],
    headers: dict[str, str],
) -> tuple[list[tuple[int, Any, int]], float]:
    """Send `count` POSTs at once, one thread and connection each; the answers in request
    order and the seconds from release to the last answer."""
    barrier = threading.Barrier(count + 1)
    results: list[tuple[int, Any, int]] = [(0, None, 0)] * count

    def run(index: int) -> None:
        path, body = request(index)
        with httpx.Client(base_url=gateway_url, timeout=30) as client:
            # Connect before the release, so the burst is the requests, not the handshakes.
            client.get("/healthz")
            barrier.wait(timeout=60)
            results[index] = _post_until_done(client, path, body, headers)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    released = time.monotonic()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - released


def _check_all_ok(results: list[tuple[int, Any, int]]) -> None:
    failed = [(status, body) for status, body, _ in results if status != 200]
    assert failed == [], failed[:5]


def _retried(results: list[tuple[int, Any, int]]) -> int:
    return sum(attempts > 1 for _, _, attempts in results)


def test_concurrent_writes_of_one_listener_are_each_counted_once(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    url = fault_cluster.gateway_url
    listener = provision_users(url, 1, prefix="burst")[0]
    who, headers = listener.user_id, listener.headers
    with BackgroundLoad(url, load_users) as load, httpx.Client(base_url=url, timeout=30) as api:
        # Weight feedback.
        before = api.get(f"{API}/learning/weights/{who}", headers=headers).json()
        results, seconds = _burst(
            url,
            FEEDBACKS,
            lambda i: (
                f"{API}/learning/weights/{who}",
                {
                    "action": "feedback",
                    "track_id": listener.track_ids[i % len(listener.track_ids)],
                    "feedback": ("like", "skip", "save", "dislike")[i % 4],
                },
            ),
            headers,
        )
        _check_all_ok(results)
        report(f"{FEEDBACKS} feedbacks in {seconds:.2f} s, {_retried(results)} retried on 503")
        counts = sorted(body["adjustment_count"] for _, body, _ in results)
        start = before["adjustment_count"]
        assert counts == list(range(start + 1, start + FEEDBACKS + 1))
        after = api.get(f"{API}/learning/weights/{who}", headers=headers).json()
        assert after["adjustment_count"] == start + FEEDBACKS

        # Conversation turns.
        turns_before = api.get(f"{API}/session/{who}/status", headers=headers).json()["turns"]
        messages = [f"burst turn {i}: some jazz please" for i in range(TURNS)]
        results, seconds = _burst(
            url,
            TURNS,
            lambda i: (f"{API}/conversation/continue", {"user_id": who, "message": messages[i]}),
            headers,
        )
        _check_all_ok(results)
        report(f"{TURNS} turns in {seconds:.2f} s, {_retried(results)} retried on 503")
        message_of_turn = {body["turn"]: messages[i] for i, (_, body, _) in enumerate(results)}
        assert sorted(message_of_turn) == list(range(turns_before + 1, turns_before + TURNS + 1))
        status = api.get(f"{API}/session/{who}/status", headers=headers).json()
        total = turns_before + TURNS
        assert status["turns"] == total
        window = [(t["turn"], t["message"]) for t in status["window"]]
        assert window == [(n, message_of_turn[n]) for n in range(total - 9, total + 1)]

        # Rewards: the first creates the arm's posterior row, so the burst starts from a
        # known total however the all-users prior moved meanwhile.
        reward = {
            "user_id": who,
            "recommendation_id": listener.recommendation_id,
            "track_id": listener.track_ids[0],
        }
        first = api.post(
            f"{API}/feedback/reward", json={**reward, "event": "like"}, headers=headers
        )
        assert first.status_code == 200, first.text
        start_total = first.json()["posterior"]["alpha"] + first.json()["posterior"]["beta"]
        events = ("like", "skip", "play", "save", "complete", "dislike")
        results, seconds = _burst(
            url,
            REWARDS,
            lambda i: (f"{API}/feedback/reward", {**reward, "event": events[i % len(events)]}),
            headers,
        )
        _check_all_ok(results)
        report(f"{REWARDS} rewards in {seconds:.2f} s, {_retried(results)} retried on 503")
        totals = sorted(b["posterior"]["alpha"] + b["posterior"]["beta"] for _, b, _ in results)
        assert totals == pytest.approx([start_total + i for i in range(1, REWARDS + 1)])
        arm = api.get(f"{API}/session/{who}/status", headers=headers).json()["bandit"][listener.arm]
        assert arm["alpha"] + arm["beta"] == pytest.approx(start_total + REWARDS)
        assert {b["strategy"] for _, b, _ in results} == {listener.arm}

    report(load.summary())
    assert load.problems() == []
    assert load.failed() == []
    assert verify_effects(url, load_users) == []
