"""Where the local cluster runs: ports, replica counts and the state folder, from the
environment (the same variable names as everywhere else)."""

from __future__ import annotations

import os
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

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

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
