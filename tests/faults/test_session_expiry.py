"""Sessions idle past SESSION_TTL_SECONDS (2 s for this module's cluster) leave Redis by
themselves, under steady background load, and nothing in Redis grows without bound.

- While a session is live, every one of its keys (`v5:s:{<user_id>}:*`) carries a TTL of at
  most SESSION_TTL_SECONDS; activity renews it, so a listener who keeps talking keeps the
  session well past the TTL.
- Once idle past the TTL, every key of the session is gone; the status says no active
  session, and the next message starts a new session at turn 1.
- No unbounded growth: every key in Redis expires by itself, except the impression stream,
  which the learning service empties as it stores the entries; the only sessions left are
  those of listeners active within the last TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from .conftest import FaultCluster, wait_for
from .load import API, BackgroundLoad, LoadUser, provision_users, verify_effects

pytestmark = pytest.mark.faults

SESSION_TTL_SECONDS = 2
SERVICE_ENV = {"SESSION_TTL_SECONDS": str(SESSION_TTL_SECONDS)}
IDLE_LISTENERS = 20
# Global keys that have no TTL by design and are bounded otherwise.
WITHOUT_TTL = {b"v5:impressions"}


def _session_keys(store: redis.Redis, user_id: str) -> list[bytes]:
    return sorted(store.scan_iter(match=f"v5:s:{{{user_id}}}:*", count=1000))


def _say(api: httpx.Client, user: LoadUser, message: str) -> dict[str, Any]:
    response = api.post(
        f"{API}/conversation/continue",
        json={"user_id": user.user_id, "message": message},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_idle_sessions_expire_and_nothing_grows_without_bound(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    url = fault_cluster.gateway_url
    store = fault_cluster.redis()
    idle = provision_users(url, IDLE_LISTENERS, prefix="idle")
    keeper = provision_users(url, 1, prefix="keeper")[0]
    keeper_turns: list[dict[str, Any]] = []

    def keep_talking() -> None:
        # A turn every 0.4 s for three TTLs: each renews the TTL, so the session lasts.
        with httpx.Client(base_url=url, timeout=10) as client:
            for i in range(15):
                keeper_turns.append(_say(client, keeper, f"more soul please ({i})"))
                time.sleep(0.4)

    with BackgroundLoad(url, load_users) as load, httpx.Client(base_url=url, timeout=10) as api:
        first_sessions = {}
        ttls = []
        for user in idle:
            for i in range(3):
                body = _say(api, user, f"I'm feeling sad, play some jazz ({i})")
            first_sessions[user.user_id] = body["session_id"]
            keys = _session_keys(store, user.user_id)
            assert len(keys) == 4, keys  # meta, window, context, trajectory
            ttls += [store.pttl(key) for key in keys]
        last_word_at = time.monotonic()
        assert all(0 < ttl <= SESSION_TTL_SECONDS * 1000 for ttl in ttls), ttls
        keeper_thread = threading.Thread(target=keep_talking)
        keeper_thread.start()

        # The idle listeners say nothing more: their sessions must go by themselves.
        gone_at = wait_for(
            lambda: all(_session_keys(store, u.user_id) == [] for u in idle),
            SESSION_TTL_SECONDS + 5,
            "idle sessions gone from Redis",
            0.1,
        )
        report(f"idle sessions gone {gone_at - last_word_at:.2f} s after the last turn")
        keeper_thread.join()
        assert len({t["session_id"] for t in keeper_turns}) == 1
        assert [t["turn"] for t in keeper_turns] == list(range(1, 16))

        sample = idle[0]
        status = api.get(f"{API}/session/{sample.user_id}/status", headers=sample.headers).json()
        assert status["active"] is False and status["turns"] == 0 and status["window"] == []
        fresh = _say(api, sample, "hello again")
        assert fresh["turn"] == 1 and fresh["session_id"] != first_sessions[sample.user_id]

    report(load.summary())
    assert load.problems() == [] and load.failed() == []
    # Sessions of the load's listeners may expire between their turns: only the learning
    # side is predictable for them.
    assert verify_effects(url, load_users, sessions_last=False) == []

    # Every key expires by itself except the bounded impression stream, which drains.
    wait_for(lambda: store.xlen("v5:impressions") == 0, 30, "impression stream drained", 0.2)
    forever = sorted(k for k in store.scan_iter(count=1000) if store.pttl(k) == -1)
    assert set(forever) <= WITHOUT_TTL, forever
    time.sleep(SESSION_TTL_SECONDS + 1)
    left = sorted(store.scan_iter(match="v5:s:*", count=1000))
    report(f"{store.dbsize()} keys in Redis at the end, {len(left)} of them session keys")
    assert left == [], left
    store.close()
