"""Replicas that die or restart under steady load through the gateway.

- SIGKILL of one replica of every service at once (twice: replica 0 of each, then replica 1):
  no GET fails as the client sees it (nginx retries a GET on the other replica by itself);
  every POST, retried by the client with its Idempotency-Key, succeeds with exactly one
  effect; supervisor restarts every killed replica and it becomes ready again.
- A rolling restart (supervisorctl restart of each replica in turn, SIGTERM then start,
  waiting for it to be ready and back in nginx's rotation before the next): no request of the
  load sees an error at all, not even one that a retry would have hidden.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from v5_cluster.config import SERVICES

from .conftest import BACK_IN_ROTATION_SECONDS, FaultCluster
from .load import BackgroundLoad, LoadUser, describe, verify_effects

pytestmark = pytest.mark.faults

WARM_UP_SECONDS = 3.0


def test_sigkill_one_replica_of_every_service(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    restarts: list[str] = []
    with BackgroundLoad(fault_cluster.gateway_url, load_users) as load:
        time.sleep(WARM_UP_SECONDS)
        for index in (0, 1):
            killed = {
                fault_cluster.program(service, index): fault_cluster.kill(
                    fault_cluster.program(service, index), signal.SIGKILL
                )
                for service in SERVICES
            }
            killed_at = time.monotonic()
            for program, old_pid in killed.items():
                fault_cluster.wait_restarted(program, old_pid)
                ready_at = fault_cluster.wait_ready(program)
                restarts.append(f"{program} {ready_at - killed_at:.1f} s")
            # nginx sends a replica that refused a connection nothing for fail_timeout: kill
            # the other replicas only once these take requests again.
            time.sleep(BACK_IN_ROTATION_SECONDS)
        time.sleep(1.0)

    origin = load.started_at
    report(load.summary())
    report("killed replica back and ready after: " + ", ".join(restarts))
    failed_posts = load.failed(lambda a: a.method == "POST")
    report(
        f"{len(failed_posts)} failed POST attempts, all retried: "
        + (describe(failed_posts, origin, limit=0).replace("\n", "; ") or "none")
    )
    failed_gets = load.failed(lambda a: a.method == "GET")
    assert failed_gets == [], "GETs failed as the client saw them:\n" + describe(
        failed_gets, origin
    )
    assert load.problems() == []
    assert verify_effects(fault_cluster.gateway_url, load_users) == []
    for program in fault_cluster.replica_programs():
        assert fault_cluster.process(program)["statename"] == "RUNNING"
        assert fault_cluster.replica_ready(program), program


def test_rolling_restart_has_no_client_visible_error(
    fault_cluster: FaultCluster, load_users: list[LoadUser], report: Callable[[str], None]
) -> None:
    durations: list[str] = []
    with BackgroundLoad(fault_cluster.gateway_url, load_users) as load:
        time.sleep(WARM_UP_SECONDS)
        for program in fault_cluster.replica_programs():
            old_pid = fault_cluster.pid(program)
            started = time.monotonic()
            # supervisorctl restart: SIGTERM (readiness 503, uvicorn drains), wait for the
            # exit, start again and wait out startsecs.
            fault_cluster.local.supervisorctl("restart", program)
            assert fault_cluster.pid(program) != old_pid
            ready_at = fault_cluster.wait_ready(program)
            durations.append(f"{program} {ready_at - started:.1f} s")
            # Ready is not yet in rotation: nginx retries a replica that refused a connection
            # only after fail_timeout (counted in whole seconds). Restarting the other replica
            # before then would leave nginx no replica it is willing to try.
            time.sleep(BACK_IN_ROTATION_SECONDS)
        time.sleep(1.0)

    report(load.summary())
    report("restart to ready: " + ", ".join(durations))
    failed = load.failed()
    assert failed == [], "requests saw errors during the rolling restart:\n" + describe(
        failed, load.started_at
    )
    assert load.problems() == []
    assert verify_effects(fault_cluster.gateway_url, load_users) == []
