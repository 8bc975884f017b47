"""`down` then `up` of the same cluster (same configuration, same state folder) keeps
everything: accounts (their passwords log in, their tokens still verify), weights and
adjustment counts, bandit posteriors, rewards, and live sessions (window, context,
trajectory, turn count and expiry time), and stored Idempotency-Key answers (a retry after
the restart is a replay with no effect). The state is written by the background load
beforehand; after `up` the load runs again on the same listeners and every acknowledged write,
before and after the restart, still had exactly one effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from v5_cluster.cluster import port_is_open
from v5_cluster.config import SERVICES

from .conftest import FaultCluster, wait_for
from .load import API, BackgroundLoad, LoadUser, verify_effects

pytestmark = pytest.mark.faults

LOAD_SECONDS = 10.0
# Everything of a listener's status that must come back unchanged; `expires_at` is compared
# apart, as a time.
KEPT = (
    "session_id",
    "active",
    "turns",
    "window",
    "context",
    "trajectory",
    "weights",
    "adjustment_count",
    "bandit",
    "rewards",
    "created_at",
    "last_active_at",
)


def _statuses(api: httpx.Client, users: list[LoadUser]) -> dict[str, dict[str, Any]]:
    out = {}
    for user in users:
        response = api.get(f"{API}/session/{user.user_id}/status", headers=user.headers)
        assert response.status_code == 200, response.text
        out[user.user_id] = response.json()
    return out


def test_down_then_up_keeps_every_state(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    url = fault_cluster.gateway_url
    with BackgroundLoad(url, load_users) as load:
        time.sleep(LOAD_SECONDS)
    report(load.summary())
    assert load.problems() == [] and load.failed() == []
    assert verify_effects(url, load_users) == []
    # There is something of every kind to lose.
    assert all(u.turns for u in load_users)
    assert any(u.feedback for u in load_users) and any(u.rewards for u in load_users)

    # Impressions still on their way to PostgreSQL would change the arms' pull counts after
    # the snapshot: let the stream drain first.
    redis = fault_cluster.redis()
    wait_for(lambda: redis.xlen("v5:impressions") == 0, 30, "impression stream drained", 0.2)
    redis.close()
    with httpx.Client(base_url=url, timeout=10) as api:
        before = _statuses(api, load_users)

    stopped = time.monotonic()
    fault_cluster.local.down()
    down_seconds = time.monotonic() - stopped
    config = fault_cluster.config
    ports = [config.gateway_port, config.redis_port, config.postgres_port]
    for service in SERVICES:
        ports += config.replica_ports(service)
    assert not fault_cluster.local.supervisor_running()
    assert [p for p in ports if port_is_open(p)] == []

    started = time.monotonic()
    fault_cluster.local.up(timeout=240)
    report(f"down {down_seconds:.1f} s, up {time.monotonic() - started:.1f} s")

    with httpx.Client(base_url=url, timeout=10) as api:
        after = _statuses(api, load_users)
        for user in load_users:
            was, now = before[user.user_id], after[user.user_id]
            assert {k: now[k] for k in KEPT} == {k: was[k] for k in KEPT}, user.user_id
            assert now["active"] is True
            # The session's expiry is an absolute time in Redis's append-only file: neither
            # lost nor pushed back by the restart.
            drift = datetime.fromisoformat(now["expires_at"]) - datetime.fromisoformat(
                was["expires_at"]
            )
            assert abs(drift.total_seconds()) < 5, (was["expires_at"], now["expires_at"])

            login = api.post(
                f"{API}/auth/token", json={"user_id": user.user_id, "password": user.password}
            )
            assert login.status_code == 200, login.text

        # Retries of writes acknowledged before the restart are replays with no effect.
        user = next(u for u in load_users if u.feedback)
        key, message, turn = user.turns[-1]
        again = api.post(
            f"{API}/conversation/continue",
            json={"user_id": user.user_id, "message": message},
            headers={**user.headers, "Idempotency-Key": key},
        )
        assert again.status_code == 200, again.text
        # The same turn of the same session: the stored record, not a new turn.
        assert again.json()["turn"] == turn
        assert again.json()["session_id"] == before[user.user_id]["session_id"]
        key, count, body = user.feedback[-1]
        again = api.post(
            f"{API}/learning/weights/{user.user_id}",
            json=body,
            headers={**user.headers, "Idempotency-Key": key},
        )
        assert again.status_code == 200, again.text
        assert again.headers.get("idempotent-replay") == "true"
        assert again.json()["adjustment_count"] == count
        assert _statuses(api, [user])[user.user_id]["turns"] == before[user.user_id]["turns"]

    # The restarted cluster carries on where it stopped, on the same listeners.
    with BackgroundLoad(url, load_users, seed=6) as load:
        time.sleep(LOAD_SECONDS / 2)
    report("after up: " + load.summary())
    assert load.problems() == [] and load.failed() == []
    assert verify_effects(url, load_users) == []
