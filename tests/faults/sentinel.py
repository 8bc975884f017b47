"""A Redis Sentinel set on free loopback ports, for tests: a master, two replicas and three
sentinels, each a real redis-server / redis-sentinel process in a folder of its own with its
own log, all stopped (and checked gone) when the context ends, whatever happened.

    with sentinel_set() as redis_set:
        url = redis_set.url          # redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/v5/0
        port, _ = redis_set.kill_master()
        redis_set.wait_promoted(port)
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

MASTER_NAME = "v5"
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000

_REDIS_CONF = """# Written by tests/faults/sentinel.py.
bind 127.0.0.1
port {port}
protected-mode yes
daemonize no
dir {dir}
logfile {dir}/redis.log
# As the cluster's Redis (v5_cluster.render.render_redis): append-only, fsync every second.
appendonly yes
appendfsync everysec
save ""
maxclients 10000
# A replica that (re)joins syncs at once rather than after the default 5 s delay.
repl-diskless-sync yes
repl-diskless-sync-delay 0
# What the Sentinel documentation advises against a split brain: a master refuses writes
# (NOREPLICAS) while no replica has acknowledged it for 10 s, so an old master that is still
# up after a failover stops taking writes that the new master will never have.
min-replicas-to-write 1
min-replicas-max-lag 10
"""

_SENTINEL_CONF = """# Written by tests/faults/sentinel.py; the sentinel rewrites it as it learns.
bind 127.0.0.1
port {port}
daemonize no
dir {dir}
logfile {dir}/sentinel.log
sentinel resolve-hostnames no
sentinel monitor {name} 127.0.0.1 {master_port} {quorum}
sentinel down-after-milliseconds {name} {down_after}
sentinel failover-timeout {name} {failover_timeout}
sentinel parallel-syncs {name} 1
"""


def free_ports(count: int) -> list[int]:
    """`count` loopback ports that nothing listens on (outside the ephemeral range's
    usual start, and away from the throwaway clusters' 20000-40000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(41000, 49000)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(probe: Callable[[], bool], timeout: float, what: str, pause: float = 0.05) -> float:
    """Poll until `probe()` holds (an exception counts as not yet); when it first did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return time.monotonic()
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(pause)


@dataclass
class Node:
    """One redis-server or redis-sentinel process."""

    kind: str  # "redis" or "sentinel"
    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.dir / f"{self.kind}.conf"

    @property
    def log(self) -> Path:
        return self.dir / f"{self.kind}.log"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self} runs"
        binary = "redis-server" if self.kind == "redis" else "redis-sentinel"
        with open(self.dir / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [binary, str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a test's Ctrl-C does not reach it before the
                # fixture stops it.
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        assert self.process is not None and self.running, f"{self.kind} {self.port} is not running"
        os.kill(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = ["(no log)"]
        return f"--- {self.kind} :{self.port} ---\n" + "\n".join(text)


@dataclass
class SentinelSet:
    root: Path
    redis: list[Node] = field(default_factory=list)
    sentinels: list[Node] = field(default_factory=list)
    name: str = MASTER_NAME
    # When the last failover began: a sentinel does not fail the same master over again
    # within twice the failover timeout, so the next fault waits that long.
    failover_at: float = 0.0

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}/0"

    def nodes(self) -> list[Node]:
        return [*self.redis, *self.sentinels]

    def node(self, port: int) -> Node:
        return next(node for node in self.redis if node.port == port)

    # what the sentinels say ----------------------------------------------------------------
    def _ask(self, sentinel: Node, command: str) -> Any:
        client = sentinel.client()
        try:
            return getattr(client, command)(self.name)
        finally:
            client.close()

    def master_state(self, sentinel: Node) -> dict[str, Any]:
        state: dict[str, Any] = self._ask(sentinel, "sentinel_master")
        return state

    def master_port(self) -> int:
        """The master's port as the running sentinels agree on it (AssertionError if not)."""
        ports = {
            int(self._ask(s, "sentinel_get_master_addr_by_name")[1])
            for s in self.sentinels
            if s.running
        }
        assert len(ports) == 1, f"the sentinels disagree about the master: {ports}"
        return ports.pop()

    def role(self, port: int) -> dict[str, str]:
        client = self.node(port).client()
        try:
            info: dict[str, Any] = client.info("replication")
        finally:
            client.close()
        return {k: str(v) for k, v in info.items()}

    def settled(self) -> bool:
        """Every sentinel sees one healthy master, two healthy replicas and the two other
        sentinels, no failover is in progress, and both replicas are in sync."""
        master = self.master_port()
        for sentinel in self.sentinels:
            state = self.master_state(sentinel)
            if (
                int(state["port"]) != master
                or state["flags"] != "master"
                or int(state["num-slaves"]) != 2
                or int(state["num-other-sentinels"]) != 2
                or "failover-state" in state
            ):
                return False
            replicas: list[dict[str, Any]] = self._ask(sentinel, "sentinel_slaves")
            if any(r["flags"] != "slave" or r["master-link-status"] != "ok" for r in replicas):
                return False
        info = self.role(master)
        return info["role"] == "master" and info["connected_slaves"] == "2"

    def wait_settled(self, timeout: float = 60) -> float:
        settled = wait_until(self.settled, timeout, "the sentinel set settled", pause=0.2)
        rest = self.failover_at + 2 * FAILOVER_TIMEOUT_MS / 1000 + 0.5 - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        return max(settled, time.monotonic())

    # faults --------------------------------------------------------------------------------
    def kill_master(self) -> tuple[int, float]:
        """SIGKILL the current master; its port and when the signal was sent."""
        port = self.master_port()
        self.failover_at = time.monotonic()
        self.node(port).kill(signal.SIGKILL)
        return port, self.failover_at

    def planned_failover(self) -> int:
        """`SENTINEL FAILOVER`: a replica is promoted while the master keeps running (it is
        made a replica of the new one later); the old master's port."""
        port = self.master_port()
        client = self.sentinels[0].client()
        try:
            self.failover_at = time.monotonic()
            assert client.sentinel_failover(self.name)
        finally:
            client.close()
        return port

    def promoted(self, old_port: int) -> int | None:
        """The new master's port once every running sentinel names another node than
        `old_port` and that node says it is a master; else None."""
        try:
            port = self.master_port()
        except (AssertionError, redis.RedisError):
            return None
        if port == old_port or not self.node(port).running:
            return None
        return port if self.role(port)["role"] == "master" else None

    def wait_promoted(self, old_port: int, timeout: float = 30) -> tuple[float, int]:
        """Until a replica is the master; (when that was seen, its port)."""
        found: list[int] = []

        def probe() -> bool:
            port = self.promoted(old_port)
            if port is not None:
                found.append(port)
            return port is not None

        seen = wait_until(probe, timeout, "a replica promoted by the sentinels")
        return seen, found[-1]

    def restart(self, port: int) -> None:
        self.node(port).start()

    def replica_of(self, port: int, master: int) -> bool:
        info = self.role(port)
        return (
            info["role"] == "slave"
            and info.get("master_port") == str(master)
            and info.get("master_link_status") == "up"
        )

    def errorstats(self, port: int) -> dict[str, int]:
        """Error replies the node has sent since it started, by error code."""
        client = self.node(port).client()
        try:
            stats: dict[str, Any] = client.info("errorstats")
        finally:
            client.close()
        return {name.removeprefix("errorstat_"): int(v["count"]) for name, v in stats.items()}

    def tails(self) -> str:
        return "\n".join(node.tail() for node in self.nodes())


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@contextmanager
def sentinel_set(name: str = MASTER_NAME) -> Iterator[SentinelSet]:
    """A master, two replicas and three sentinels, settled; every process stopped and every
    port closed at the end (the check fails the test that leaves one behind)."""
    root = Path(tempfile.mkdtemp(prefix="v5-sentinel-"))
    ports = free_ports(6)
    redis_set = SentinelSet(root=root, name=name)
    try:
        for index, port in enumerate(ports[:3]):
            node = Node("redis", port, root / f"redis-{index}")
            node.dir.mkdir()
            text = _REDIS_CONF.format(port=port, dir=node.dir)
            if index > 0:
                text += f"replicaof 127.0.0.1 {ports[0]}\n"
            _write(node.config, text)
            redis_set.redis.append(node)
        for index, port in enumerate(ports[3:]):
            node = Node("sentinel", port, root / f"sentinel-{index}")
            node.dir.mkdir()
            _write(
                node.config,
                _SENTINEL_CONF.format(
                    port=port,
                    dir=node.dir,
                    name=name,
                    master_port=ports[0],
                    quorum=QUORUM,
                    down_after=DOWN_AFTER_MS,
                    failover_timeout=FAILOVER_TIMEOUT_MS,
                ),
            )
            redis_set.sentinels.append(node)
        for node in redis_set.nodes():
            node.start()
        try:
            for node in redis_set.nodes():
                wait_until(partial(port_is_open, node.port), 15, f"{node.kind} :{node.port}")
            redis_set.wait_settled(timeout=60)
        except AssertionError:
            print(redis_set.tails())
            raise
        yield redis_set
    finally:
        for node in reversed(redis_set.nodes()):
            node.stop()
        alive = [f"{n.kind}:{n.port}" for n in redis_set.nodes() if n.running]
        listening = [port for port in ports if port_is_open(port)]
        shutil.rmtree(root, ignore_errors=True)
        assert alive == [] and listening == [], (
            f"sentinel set processes {alive} or ports {listening} outlived it"
        )
