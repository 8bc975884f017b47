"""PostgreSQL restarts under steady load through the gateway, in both of pg_ctl's hard
shutdown modes: fast (SIGINT: open transactions rolled back, checkpoint, clean exit) and
immediate (SIGQUIT: no checkpoint, crash recovery at the next start).

The postmaster runs under supervisord, so `pg_ctl restart` itself is not used: its own start
would race supervisor's restart for the data folder and leave a postmaster that supervisor
does not know. The test sends the postmaster the very signal that `pg_ctl stop -m fast` or
`-m immediate` sends, and supervisor starts it again, as after a crash.

Every acknowledged weight adjustment, reward and feedback is there afterwards with exactly one
effect; in between, requests that need PostgreSQL get a fast 503 (never a 500); within 5 s of
PostgreSQL accepting connections again every request succeeds, also in a traffic peak that
takes every pooled connection the replicas had opened before, without restarting a service.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from .conftest import FaultCluster, wait_for
from .load import (
    BackgroundLoad,
    LoadUser,
    describe,
    outage_violations,
    provision_users,
    spike,
)

pytestmark = pytest.mark.faults

WARM_UP_SECONDS = 3.0
RECOVERY_SECONDS = 5.0
# pg_ctl's shutdown modes and the signals it sends the postmaster for them, each twice: the
# requests that meet a shutdown are a matter of timing, and a second round doubles the odds of
# catching a connection in the pool at its worst moment.
MODES = (("fast", "INT"), ("immediate", "QUIT")) * 2
# The top of the steady rate: more requests meet each shutdown.
RATE = 100.0
PEAK_CLIENTS = 24


def test_postgres_restarts_lose_no_acknowledged_write(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    url = fault_cluster.gateway_url
    peak_users = provision_users(url, PEAK_CLIENTS, prefix="peak")
    services = fault_cluster.service_processes()
    outages: list[tuple[str, float, float]] = []
    peaks: list[BackgroundLoad] = []
    with BackgroundLoad(url, load_users, rate=RATE) as load:
        time.sleep(WARM_UP_SECONDS)
        # A peak before the restarts leaves every replica with a deep pool of connections.
        peaks.append(spike(url, peak_users))
        for mode, sig in MODES:
            old_pid = fault_cluster.pid("postgres")
            stopped_at = time.monotonic()
            fault_cluster.local.rpc().signalProcess("postgres", sig)
            fault_cluster.wait_restarted("postgres", old_pid, timeout=60)
            back_at = wait_for(fault_cluster.postgres_answers, 60, "postgres answering", 0.1)
            outages.append((mode, stopped_at, back_at))
            time.sleep(RECOVERY_SECONDS + 1)
            # Every pooled connection is taken at once: none may still be a broken one.
            peaks.append(spike(url, peak_users))

    origin = load.started_at
    attempts = load.attempts
    report(load.summary())
    ends = [stopped_at for _, stopped_at, _ in outages[1:]] + [float("inf")]
    # Every figure is reported before anything is asserted.
    violations: list[str] = []
    for (mode, stopped_at, back_at), until in zip(outages, ends, strict=True):
        during = [a for a in attempts if a.overlaps(stopped_at, back_at)]
        failures = [a for a in attempts if not a.ok and stopped_at <= a.answered < until]
        last = max((a.answered for a in failures), default=back_at) - back_at
        report(
            f"-m {mode}: away {back_at - stopped_at:.2f} s, {len(failures)} failed attempts "
            f"({sum(a.status == 503 for a in failures)} x 503), slowest answer during it "
            f"{max((a.elapsed for a in during), default=0) * 1000:.0f} ms, last failure "
            f"{max(last, 0):.2f} s after PostgreSQL answered"
        )
        late = [a for a in failures if a.sent > back_at + RECOVERY_SECONDS]
        if late:
            violations.append(f"-m {mode}: failures after recovery:\n{describe(late, origin)}")
    violations += outage_violations(
        load=load,
        origin=origin,
        peaks=list(zip(["before"] + [f"after -m {mode}" for mode, _ in MODES], peaks, strict=True)),
        services_before=services,
        services_after=fault_cluster.service_processes(),
        gateway_url=url,
        users=[*load_users, *peak_users],
        report=report,
    )
    assert violations == [], "\n\n".join(violations)
