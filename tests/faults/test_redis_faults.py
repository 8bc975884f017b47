"""Redis freezes and crashes under steady load through the gateway.

- SIGSTOP of Redis for 3 s, then SIGCONT: no request hangs (every answer within 3 s of the
  request), a failure is a 503 of a request that overlapped the pause, every request sent
  after it succeeds, and every acknowledged write had exactly one effect.
- SIGKILL of Redis, twice: once restarted by supervisor at once, once kept away for a few
  seconds (supervisor's new process is stopped again and the test starts it later). No
  acknowledged session write is lost (every turn that got 200 is in the session's turn count
  and window afterwards, and every other acknowledged write had exactly one effect); while
  Redis is away requests are answered fast (each under 2 s, with 503 when they need Redis,
  never 500); from 5 s after Redis answers again every request succeeds, also in a traffic
  peak that takes every pooled connection the replicas had opened before the crash, and no
  service process was restarted to get there.

The pause runs first: a crash must not leave the pause test anything to inherit.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from .conftest import FaultCluster, wait_for
from .load import (
    FAST_503_SECONDS,
    BackgroundLoad,
    LoadUser,
    describe,
    outage_violations,
    provision_users,
    spike,
    verify_effects,
)

pytestmark = pytest.mark.faults

WARM_UP_SECONDS = 3.0
RECOVERY_SECONDS = 5.0
HOLD_DOWN_SECONDS = 3.0
PAUSE_SECONDS = 3.0
PAUSE_DEADLINE_SECONDS = 3.0
PEAK_CLIENTS = 24


def test_redis_pause_never_hangs_a_request(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    services = fault_cluster.service_processes()
    with BackgroundLoad(fault_cluster.gateway_url, load_users) as load:
        time.sleep(WARM_UP_SECONDS)
        pid = fault_cluster.kill("redis", signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            time.sleep(PAUSE_SECONDS)
        finally:
            os.kill(pid, signal.SIGCONT)
        continued_at = time.monotonic()
        time.sleep(RECOVERY_SECONDS)

    origin = load.started_at
    attempts = load.attempts
    during = [a for a in attempts if a.overlaps(stopped_at, continued_at)]
    report(load.summary())
    report(
        f"paused {continued_at - stopped_at:.2f} s: {len(during)} requests overlapped it, "
        f"{sum(a.status == 503 for a in during)} x 503, slowest answer "
        f"{max((a.elapsed for a in during), default=0) * 1000:.0f} ms"
    )
    slow = [a for a in attempts if a.elapsed >= PAUSE_DEADLINE_SECONDS]
    assert slow == [], "requests hung past the deadline:\n" + describe(slow, origin)
    unexcused = load.failed(
        lambda a: not (a.status == 503 and a.overlaps(stopped_at, continued_at))
    )
    assert unexcused == [], "failures that the pause does not explain:\n" + describe(
        unexcused, origin
    )
    assert fault_cluster.service_processes() == services
    assert load.problems() == []
    assert verify_effects(fault_cluster.gateway_url, load_users) == []


def _crash(cluster: FaultCluster, *, hold_down: float) -> tuple[float, float]:
    """SIGKILL Redis; keep it away for `hold_down` seconds (0: supervisor restarts it at
    once). The times it was killed and answered again."""
    old_pid = cluster.kill("redis", signal.SIGKILL)
    killed_at = time.monotonic()
    if hold_down > 0:
        rpc = cluster.local.rpc()
        wait_for(lambda: cluster.pid("redis") not in (0, old_pid), 30, "redis respawned")
        rpc.stopProcess("redis", True)
        time.sleep(hold_down)
        rpc.startProcess("redis", True)
    else:
        cluster.wait_restarted("redis", old_pid, timeout=30)
    back_at = wait_for(cluster.redis_answers, 30, "redis answering")
    return killed_at, back_at


def test_redis_sigkill_loses_no_acknowledged_write(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    url = fault_cluster.gateway_url
    client = fault_cluster.redis()
    persistence = client.config_get("append*")
    client.close()
    peak_users = provision_users(url, PEAK_CLIENTS, prefix="peak")
    services = fault_cluster.service_processes()
    outages: list[tuple[float, float]] = []
    peaks: list[BackgroundLoad] = []
    with BackgroundLoad(url, load_users) as load:
        time.sleep(WARM_UP_SECONDS)
        # A peak before the crash leaves every replica with a deep pool of connections.
        peaks.append(spike(url, peak_users))
        for hold_down in (0.0, HOLD_DOWN_SECONDS):
            outages.append(_crash(fault_cluster, hold_down=hold_down))
            time.sleep(RECOVERY_SECONDS + 1)
            peaks.append(spike(url, peak_users))

    origin = load.started_at
    attempts = load.attempts
    report(load.summary())
    report(f"redis persistence {persistence}")
    ends = [killed_at for killed_at, _ in outages[1:]] + [float("inf")]
    whats = ("restarted by supervisor", "held down")
    # Every figure is reported before anything is asserted.
    violations: list[str] = []
    for (killed_at, back_at), until, what in zip(outages, ends, whats, strict=True):
        during = [a for a in attempts if a.overlaps(killed_at, back_at)]
        failures = [a for a in attempts if not a.ok and killed_at <= a.answered < until]
        recovered = max((a.answered for a in failures), default=back_at) - back_at
        report(
            f"kill ({what}): away {back_at - killed_at:.2f} s, {len(during)} requests "
            f"during it, {sum(a.status == 503 for a in during)} x 503, slowest answer "
            f"{max((a.elapsed for a in during), default=0) * 1000:.0f} ms; last failure "
            f"{max(recovered, 0):.2f} s after Redis answered"
        )
        slow = [a for a in during if a.elapsed >= FAST_503_SECONDS]
        if slow:
            violations.append(
                f"slow answers while Redis was away ({what}):\n{describe(slow, origin)}"
            )
        late = [a for a in failures if a.sent > back_at + RECOVERY_SECONDS]
        if late:
            violations.append(f"failures after Redis was back ({what}):\n{describe(late, origin)}")
    violations += outage_violations(
        load=load,
        origin=origin,
        peaks=list(zip(("before", "after kill 1", "after kill 2"), peaks, strict=True)),
        services_before=services,
        services_after=fault_cluster.service_processes(),
        gateway_url=url,
        users=[*load_users, *peak_users],
        report=report,
    )
    assert violations == [], "\n\n".join(violations)
