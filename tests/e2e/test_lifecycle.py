"""`make down` stops every process and leaves nothing listening; `make up` brings the same
state back (accounts survive); `up` while up is harmless."""

import httpx

from v5_cluster.cluster import LocalCluster, port_is_open
from v5_cluster.config import SERVICES

from .accounts import new_user_id


def _ports(cluster: LocalCluster) -> list[int]:
    cfg = cluster.config
    ports = [cfg.gateway_port, cfg.redis_port, cfg.postgres_port]
    for service in SERVICES:
        ports += cfg.replica_ports(service)
    return ports


def test_down_then_up_keeps_state_and_up_twice_is_harmless(
    cluster: LocalCluster, gateway_url: str
) -> None:
    user_id = new_user_id("keep")
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        body = {"user_id": user_id, "password": "survives restarts"}
        assert client.post("/api/v1/v5/auth/register", json=body).status_code == 201

    cluster.up(timeout=60)  # already up: nothing changes, nothing fails
    assert httpx.get(f"{gateway_url}/healthz").status_code == 200

    cluster.down()
    assert not cluster.supervisor_running()
    still_open = [p for p in _ports(cluster) if port_is_open(p)]
    assert still_open == []

    cluster.up(timeout=120)
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        token = client.post("/api/v1/v5/auth/token", json=body)
        assert token.status_code == 200
