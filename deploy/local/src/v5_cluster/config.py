"""Where the local cluster runs: ports, replica counts and the state folder, from the
environment (the same variable names as everywhere else)."""

from __future__ import annotations

import os
import random
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("identity", "conversation", "recommendation", "learning")
DEFAULT_BASE_PORTS = {
    "identity": 8100,
    "conversation": 8200,
    "recommendation": 8300,
    "learning": 8400,
}

REPO_ROOT = Path(__file__).resolve().parents[4]


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Node:
    """A machine that runs a share of the replicas. By default there is one, this machine's
    loopback. The node-loss tests give each node a network namespace of its own, joined to
    this one by a veth pair, so that pulling one link takes a whole node's replicas away."""

    name: str
    # Where the node's replicas listen (and the gateway reaches them).
    address: str = "127.0.0.1"
    # Where the node reaches Redis and PostgreSQL: this machine, seen from the node.
    data_address: str = "127.0.0.1"
    # The network namespace the node's processes run in, if any.
    netns: str | None = None
    # The cores its processes may run on (taskset's list, e.g. "1" or "2-3"); None: any.
    # Measurements give the services cores of their own, apart from the load generator.
    cpus: str | None = None


LOCAL_NODE = Node("local")


@dataclass
class ClusterConfig:
    state_dir: Path
    gateway_port: int = 8080
    redis_port: int = 56379
    postgres_port: int = 55432
    database: str = "v5"
    replicas: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SERVICES, 2))
    base_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BASE_PORTS))
    rate_limit_auth_rps: int = 10
    rate_limit_auth_burst: int = 20
    rate_limit_api_rps: int = 50
    rate_limit_api_burst: int = 100
    python: str = sys.executable
    # Extra environment for every service process (e.g. SESSION_TTL_SECONDS from the caller).
    service_env: dict[str, str] = field(default_factory=dict)
    # Replica i of every service runs on nodes[i % len(nodes)].
    nodes: list[Node] = field(default_factory=lambda: [LOCAL_NODE])

    @classmethod
    def from_env(cls) -> ClusterConfig:
        state = Path(os.environ.get("V5_STATE_DIR", REPO_ROOT / ".state")).resolve()
        default_replicas = _int_env("REPLICAS", 2)
        return cls(
            state_dir=state,
            gateway_port=_int_env("GATEWAY_PORT", 8080),
            redis_port=_int_env("REDIS_PORT", 56379),
            postgres_port=_int_env("POSTGRES_PORT", 55432),
            replicas={s: _int_env(f"{s.upper()}_REPLICAS", default_replicas) for s in SERVICES},
            base_ports={
                s: _int_env(f"{s.upper()}_PORT_BASE", DEFAULT_BASE_PORTS[s]) for s in SERVICES
            },
            rate_limit_auth_rps=_int_env("RATE_LIMIT_AUTH_RPS", 10),
            rate_limit_auth_burst=_int_env("RATE_LIMIT_AUTH_BURST", 20),
            rate_limit_api_rps=_int_env("RATE_LIMIT_API_RPS", 50),
            rate_limit_api_burst=_int_env("RATE_LIMIT_API_BURST", 100),
        )

    def replica_ports(self, service: str) -> list[int]:
        base = self.base_ports[service]
        return [base + i for i in range(self.replicas[service])]

    def replica_node(self, service: str, index: int) -> Node:
        del service  # every service is spread the same way
        return self.nodes[index % len(self.nodes)]

    def replica_placements(self, service: str) -> list[tuple[Node, int]]:
        """(node, port) of each replica of a service, in replica order."""
        return [
            (self.replica_node(service, index), port)
            for index, port in enumerate(self.replica_ports(service))
        ]

    @property
    def data_listen_addresses(self) -> list[str]:
        """Where Redis and PostgreSQL listen: loopback, and the address every node sees."""
        return list(dict.fromkeys(["127.0.0.1", *(node.data_address for node in self.nodes)]))

    @property
    def node_client_addresses(self) -> list[str]:
        """The addresses other than loopback that connect to PostgreSQL (its pg_hba)."""
        return [n.address for n in self.nodes if n.address != "127.0.0.1"]

    @property
    def database_url(self) -> str:
        return self.database_url_from(LOCAL_NODE)

    @property
    def redis_url(self) -> str:
        return self.redis_url_from(LOCAL_NODE)

    def database_url_from(self, node: Node) -> str:
        return f"postgresql://postgres@{node.data_address}:{self.postgres_port}/{self.database}"

    def redis_url_from(self, node: Node) -> str:
        return f"redis://{node.data_address}:{self.redis_port}/0"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    # Paths inside the state folder.
    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def postgres_data(self) -> Path:
        return self.state_dir / "postgres" / "data"

    @property
    def postgres_socket_dir(self) -> Path:
        return self.state_dir / "postgres" / "run"

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def nginx_dir(self) -> Path:
        return self.state_dir / "nginx"

    @property
    def supervisor_conf(self) -> Path:
        return self.state_dir / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.state_dir / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.state_dir / "supervisord.pid"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_block(size: int, used: set[int]) -> int:
    for _ in range(500):
        base = random.randrange(20000, 40000, 10)
        block = set(range(base, base + size))
        if not block & used and all(_port_is_free(p) for p in block):
            used.update(block)
            return base
    raise RuntimeError("no free ports")


def ephemeral_config(
    state_dir: Path, *, replicas: int = 2, service_env: dict[str, str] | None = None
) -> ClusterConfig:
    """A throwaway cluster on free ports (tests, benchmarks), beside any `make up` cluster."""
    used: set[int] = set()
    config = ClusterConfig(
        state_dir=state_dir,
        gateway_port=_free_block(1, used),
        redis_port=_free_block(1, used),
        postgres_port=_free_block(1, used),
        replicas=dict.fromkeys(SERVICES, replicas),
        service_env=dict(service_env or {}),
    )
    config.base_ports = {s: _free_block(replicas, used) for s in SERVICES}
    return config
