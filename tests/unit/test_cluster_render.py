from pathlib import Path
from typing import Any

from v5_cluster.config import SERVICES, ClusterConfig, Node
from v5_cluster.openapi import merge_openapi
from v5_cluster.render import (
    WEB_DIR,
    render_gateway,
    render_redis,
    render_supervisor,
    service_environment,
)


def _config(tmp_path: Path) -> ClusterConfig:
    config = ClusterConfig(
        state_dir=tmp_path, gateway_port=18080, redis_port=16379, postgres_port=15432
    )
    config.replicas["recommendation"] = 3
    return config


def test_gateway_lists_every_replica_and_keeps_nginx_variables(tmp_path: Path) -> None:
    text = render_gateway(_config(tmp_path))
    assert "server 127.0.0.1:8300" in text and "server 127.0.0.1:8302" in text
    assert "server 127.0.0.1:8303" not in text
    assert "listen 127.0.0.1:18080" in text
    # nginx's own variables are left for nginx.
    assert "$request_id" in text and "$upstream_addr" in text
    assert "${" not in text


def test_gateway_serves_the_demo_page_from_the_state_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    text = render_gateway(config)
    web = config.nginx_dir / "web"
    # A copy that nginx's workers can read, not the checkout.
    assert f"root {web};" in text
    assert f"alias {web}/;" in text
    assert str(WEB_DIR) not in text
    assert (WEB_DIR / "index.html").is_file()
    # The page's locations have their own policy: this origin only, no inline code.
    page_policies = [line for line in text.splitlines() if "script-src 'self'" in line]
    assert len(page_policies) == 2
    for line in page_policies:
        assert "default-src 'none'" in line and "frame-ancestors 'none'" in line
        assert "unsafe-inline" not in line and "http" not in line


def test_redis_persists_with_aof(tmp_path: Path) -> None:
    text = render_redis(_config(tmp_path))
    assert "appendonly yes" in text and "appendfsync everysec" in text
    assert "port 16379" in text
    assert "bind 127.0.0.1\n" in text and "protected-mode yes" in text


def test_supervisor_runs_one_program_per_replica(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.service_env = {"SESSION_TTL_SECONDS": "5", "ODD": "100%"}
    text = render_supervisor(
        config,
        postgres_bin=Path("/pg/postgres"),
        redis_bin="redis-server",
        nginx_bin="nginx",
        postgres_user="postgres",
    )
    for service in SERVICES:
        for index in range(config.replicas[service]):
            assert f"[program:{service}-{index}]" in text
    assert "[program:recommendation-3]" not in text
    assert "user=postgres" in text
    assert 'SESSION_TTL_SECONDS="5"' in text
    assert 'ODD="100%%"' in text  # supervisor's own % expansion is escaped


def test_replicas_are_spread_over_nodes_and_reach_the_data_stores_from_there(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    config.nodes = [
        Node("a", address="10.9.1.2", data_address="10.9.1.1", netns="v5-a"),
        Node("b", address="10.9.2.2", data_address="10.9.2.1", netns="v5-b"),
    ]
    gateway = render_gateway(config)
    # recommendation has three replicas: a, b, a.
    for server in ("10.9.1.2:8300", "10.9.2.2:8301", "10.9.1.2:8302"):
        assert f"server {server} " in gateway
    assert "127.0.0.1:830" not in gateway

    env = service_environment(config, "recommendation", 8301)
    assert env["HOST"] == "10.9.2.2"
    assert env["REDIS_URL"] == "redis://10.9.2.1:16379/0"
    assert env["DATABASE_URL"] == "postgresql://postgres@10.9.2.1:15432/v5"

    redis_conf = render_redis(config)
    assert "bind 127.0.0.1 10.9.1.1 10.9.2.1\n" in redis_conf and "protected-mode no" in redis_conf
    supervisor = render_supervisor(
        config,
        postgres_bin=Path("/pg/postgres"),
        redis_bin="redis-server",
        nginx_bin="nginx",
        postgres_user=None,
    )
    assert "listen_addresses=127.0.0.1,10.9.1.1,10.9.2.1" in supervisor
    assert "idle_in_transaction_session_timeout=10s" in supervisor
    program = supervisor.split("[program:recommendation-1]")[1].split("[program:")[0]
    assert "command=ip netns exec v5-b " in program
    config.nodes = [Node("pinned", cpus="1")]
    pinned = render_supervisor(
        config,
        postgres_bin=Path("/pg/postgres"),
        redis_bin="redis-server",
        nginx_bin="nginx",
        postgres_user=None,
    )
    assert f"command=taskset -c 1 {config.python} -m recommendation_service" in pinned
    # Host tools (migrations, tests) still use loopback.
    assert config.database_url == "postgresql://postgres@127.0.0.1:15432/v5"


def test_only_identity_gets_the_private_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert "JWT_PRIVATE_KEY_FILE" in service_environment(config, "identity", 8100)
    for service in ("conversation", "recommendation", "learning"):
        env = service_environment(config, service, config.replica_ports(service)[0])
        assert "JWT_PRIVATE_KEY_FILE" not in env
        assert env["JWT_PUBLIC_KEY_FILE"].endswith("jwt_public.pem")


def test_openapi_merge_combines_paths_and_refuses_conflicts() -> None:
    a = {
        "openapi": "3.1.0",
        "paths": {"/a": {"get": {}}},
        "components": {"schemas": {"Shared": {"type": "object"}, "A": {"type": "string"}}},
    }
    b = {
        "openapi": "3.1.0",
        "paths": {"/b": {"post": {}}},
        "components": {"schemas": {"Shared": {"type": "object"}}},
    }
    merged = merge_openapi([a, b])
    assert {"/a", "/b", "/healthz"} <= set(merged["paths"])
    assert set(merged["components"]["schemas"]) == {"A", "Shared"}
    clash = {
        "openapi": "3.1.0",
        "paths": {},
        "components": {"schemas": {"Shared": {"type": "integer"}}},
    }
    try:
        merge_openapi([a, clash])
    except ValueError as exc:
        assert "Shared" in str(exc)
    else:
        raise AssertionError("conflicting schemas must not merge silently")


def test_openapi_merge_documents_the_gateways_own_answers_on_the_api() -> None:
    service: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {
            "/api/v1/v5/things": {
                "get": {"responses": {"200": {"description": "ok"}}},
                "post": {"requestBody": {}, "responses": {"201": {"description": "made"}}},
            },
            "/internal": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {}},
    }
    merged = merge_openapi([service])
    things = merged["paths"]["/api/v1/v5/things"]
    assert set(things["get"]["responses"]) == {"200", "429"}
    assert set(things["post"]["responses"]) == {"201", "413", "429"}
    assert set(merged["paths"]["/internal"]["get"]["responses"]) == {"200"}
    assert set(merged["paths"]["/healthz"]["get"]["responses"]) == {"200"}
    assert merged["components"]["schemas"]["GatewayError"]["required"] == ["detail"]
    # The services' own documents are left as they were.
    assert set(service["paths"]["/api/v1/v5/things"]["get"]["responses"]) == {"200"}
