"""Throwaway clusters for the fault-injection suite (`make faults`).

Each test module starts its own cluster (real Redis, PostgreSQL, two replicas of each service
and nginx under supervisord, on free ports, in a temporary folder), because a fault can leave
a cluster in a state that another module should not inherit; it is torn down at the end of
the module and no process of it may survive. Before each test the cluster must be whole:
every process RUNNING and every replica ready.

The figures that the tests measure (outage lengths, 503 latencies, recovery times) are
printed in a section of their own at the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from tests.conftest import make_test_config
from v5_cluster.cluster import LocalCluster, port_is_open
from v5_cluster.config import REPO_ROOT, SERVICES, Node

from .load import LoadUser, provision_users

# nginx leaves a replica that refused a connection alone this long (max_fails=1
# fail_timeout=2s, v5_cluster.render.upstream_servers).
FAIL_TIMEOUT_SECONDS = 2.0
# nginx keeps that time in whole seconds (its cached clock): a replica whose last refused
# connection came at 10.9 s is skipped until 13.0 s, up to a second longer than
# fail_timeout. A replica is back in every worker's rotation this long after it is ready.
BACK_IN_ROTATION_SECONDS = FAIL_TIMEOUT_SECONDS + 1.5

_FIGURES: list[str] = []


class FaultCluster:
    """A running throwaway cluster and the levers the tests pull on it."""

    def __init__(self, local: LocalCluster) -> None:
        self.local = local
        self.config = local.config

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url

    # supervisor's programs ------------------------------------------------------------------
    @staticmethod
    def program(service: str, index: int) -> str:
        return f"{service}:{service}-{index}"

    def replica_programs(self) -> list[str]:
        return [
            self.program(service, index)
            for service in SERVICES
            for index in range(len(self.config.replica_ports(service)))
        ]

    def replica_port(self, program: str) -> int:
        service, _, index = program.partition(":")[2].rpartition("-")
        return self.config.replica_ports(service)[int(index)]

    def process(self, program: str) -> dict[str, Any]:
        info: dict[str, Any] = self.local.rpc().getProcessInfo(program)
        return info

    def pid(self, program: str) -> int:
        return int(self.process(program)["pid"])

    def kill(self, program: str, sig: signal.Signals) -> int:
        """Send `sig` to the program's process itself (not through supervisor); its pid."""
        pid = self.pid(program)
        assert pid > 0, f"{program} is not running"
        os.kill(pid, sig)
        return pid

    def processes(self) -> dict[str, tuple[int, int]]:
        """(pid, start time) of every program: a restart changes both."""
        return {
            f"{p['group']}:{p['name']}" if p["group"] != p["name"] else p["name"]: (
                p["pid"],
                p["start"],
            )
            for p in self.local.rpc().getAllProcessInfo()
        }

    def service_processes(self) -> dict[str, tuple[int, int]]:
        """(pid, start time) of every service replica."""
        replicas = set(self.replica_programs())
        return {name: state for name, state in self.processes().items() if name in replicas}

    def wait_restarted(self, program: str, old_pid: int, timeout: float = 90) -> float:
        """Until supervisor runs the program again in a new process; when that was seen."""

        def restarted() -> bool:
            info = self.process(program)
            return info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid)

        return wait_for(restarted, timeout, f"{program} restarted by supervisor")

    def replica_address(self, program: str) -> str:
        service, _, index = program.partition(":")[2].rpartition("-")
        return self.config.replica_node(service, int(index)).address

    def replica_ready(self, program: str) -> bool:
        try:
            url = f"http://{self.replica_address(program)}:{self.replica_port(program)}/readyz"
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, program: str, timeout: float = 90) -> float:
        return wait_for(lambda: self.replica_ready(program), timeout, f"{program} ready")

    def wait_whole(self, timeout: float = 90) -> None:
        """Every program RUNNING, every replica ready, the gateway answering."""

        def whole() -> bool:
            states = {p["name"]: p["statename"] for p in self.local.rpc().getAllProcessInfo()}
            return all(s == "RUNNING" for s in states.values()) and all(
                self.replica_ready(p) for p in self.replica_programs()
            )

        wait_for(whole, timeout, "every process running and every replica ready")
        wait_for(lambda: _http_ok(f"{self.gateway_url}/healthz"), timeout, "the gateway answering")

    # data stores ----------------------------------------------------------------------------
    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.config.redis_port, socket_timeout=2, socket_connect_timeout=1)

    def redis_answers(self) -> bool:
        client = self.redis()
        try:
            # PING answers while Redis is still loading its append-only file; a read does not.
            client.exists("v5:probe")
            return True
        except redis.RedisError:
            return False
        finally:
            client.close()

    def postgres_answers(self) -> bool:
        async def probe() -> bool:
            try:
                conn = await asyncpg.connect(self.config.database_url, timeout=1)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return False
            try:
                return await conn.fetchval("SELECT 1", timeout=1) == 1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return False
            finally:
                await conn.close()

        return asyncio.run(probe())

    def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.config.database_url, timeout=5)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


def wait_for(probe: Callable[[], bool], timeout: float, what: str, pause: float = 0.05) -> float:
    """Poll until `probe()` holds; the monotonic time at which it first did."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(pause)
    return time.monotonic()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _cluster_pids(local: LocalCluster) -> list[int]:
    if not local.supervisor_running():
        return []
    pids = [int(p["pid"]) for p in local.rpc().getAllProcessInfo() if p["pid"]]
    if local.config.supervisor_pidfile.exists():
        pids.append(int(local.config.supervisor_pidfile.read_text().strip()))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unhandled_errors(name: str, logs_dir: Path, limit: int = 3) -> list[str]:
    """The exceptions behind the 500s that the services logged, with the innermost frame
    of the project's code: a 500 seen by a test is only useful with its cause."""
    found: list[str] = []
    for path in sorted(logs_dir.glob("*-[0-9].log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"unhandled_error"' not in line or len(found) >= limit:
                continue
            try:
                trace = str(json.loads(line).get("exception", ""))
            except ValueError:
                trace = line
            ours = [
                f
                for f in trace.splitlines()
                if f.strip().startswith(f'File "{REPO_ROOT}/') and "/.venv/" not in f
            ]
            where = ours[-1].strip() if ours else "?"
            found.append(f"{name}: 500 in {path.name}: {trace.splitlines()[-1:]} at {where}")
    return found


@contextmanager
def throwaway_cluster(
    name: str, service_env: dict[str, str], nodes: list[Node] | None = None
) -> Iterator[FaultCluster]:
    """A cluster made for one test module, stopped and deleted afterwards; its replicas
    spread over `nodes` (default: all on this machine's loopback)."""
    # Not pytest's tmp_path_factory: another pytest session on this machine prunes old
    # basetemp folders, which would delete a running cluster's data under it.
    state = Path(tempfile.mkdtemp(prefix=f"v5-faults-{name}-"))
    # PostgreSQL runs as the postgres user and nginx's workers as nobody: both must be able
    # to reach their folders.
    state.chmod(0o755)
    config = make_test_config(state)
    config.service_env.update(service_env)
    if nodes:
        config.nodes = list(nodes)
    # The per-token limit would answer the concurrency bursts (hundreds of requests of one
    # listener at once) with 429: these tests are about faults, not about the limiter.
    config.rate_limit_api_rps = 5000
    config.rate_limit_api_burst = 5000
    local = LocalCluster(config)
    pids: list[int] = []
    try:
        try:
            local.up(timeout=240)
        except Exception:
            print(local.tail(sorted(p.name for p in config.logs_dir.glob("*.log"))))
            raise
        yield FaultCluster(local)
    finally:
        try:
            pids = _cluster_pids(local)
            # A test that failed half-way may have left Redis stopped: it could not shut down.
            redis_pid = next(
                (int(p["pid"]) for p in local.rpc().getAllProcessInfo() if p["name"] == "redis"),
                0,
            )
            if redis_pid:
                os.kill(redis_pid, signal.SIGCONT)
        except Exception as exc:
            print(f"could not look at the cluster before stopping it: {exc!r}")
        local.down()
        _FIGURES.extend(_unhandled_errors(name, config.logs_dir))
        left = [pid for pid in pids if _alive(pid)]
        listening = [
            port
            for port in (config.gateway_port, config.redis_port, config.postgres_port)
            if port_is_open(port)
        ]
        for service in SERVICES:
            listening += [
                port
                for node, port in config.replica_placements(service)
                if port_is_open(port, node.address)
            ]
        shutil.rmtree(state, ignore_errors=True)
        assert left == [] and listening == [], (
            f"processes {left} or ports {listening} outlived the cluster"
        )


@pytest.fixture(scope="module")
def module_cluster(request: pytest.FixtureRequest) -> Iterator[FaultCluster]:
    """The module's own cluster, with the module's SERVICE_ENV (if any) for every service."""
    env: dict[str, str] = getattr(request.module, "SERVICE_ENV", {})
    name = request.module.__name__.rpartition(".")[2]
    with throwaway_cluster(name, env) as cluster:
        yield cluster


@pytest.fixture
def fault_cluster(module_cluster: FaultCluster) -> FaultCluster:
    """The module's cluster, whole (every process running, every replica ready) before the
    test: a test that left it broken makes the next one fail here, not half-way."""
    module_cluster.wait_whole(timeout=90)
    # A replica restarted by an earlier test may still be in nginx's fail_timeout.
    time.sleep(BACK_IN_ROTATION_SECONDS)
    return module_cluster


@pytest.fixture
def load_users(fault_cluster: FaultCluster) -> list[LoadUser]:
    """Fresh listeners for the background load: no turns, no feedback, one recommendation."""
    return provision_users(fault_cluster.gateway_url, 12)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure for the summary at the end of the run."""

    def add(text: str) -> None:
        _FIGURES.append(f"{request.node.name}: {text}")

    return add


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
