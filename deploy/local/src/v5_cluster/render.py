"""Configuration files for the local cluster, rendered from ClusterConfig. Pure functions:
they return text, the caller writes it."""

from __future__ import annotations

import resource
import shlex
from pathlib import Path
from string import Template

from .config import REPO_ROOT, SERVICES, ClusterConfig, Node

NGINX_TEMPLATE = REPO_ROOT / "nginx" / "templates" / "gateway.conf.template"
OPENAPI_FILE = REPO_ROOT / "nginx" / "openapi.json"
# The demo page's static files (served at the gateway's root).
WEB_DIR = REPO_ROOT / "web"


def file_limit(wanted: int = 65535) -> int:
    """As many open files as wanted, within the hard limit this machine allows (a proxied
    connection holds two: client and upstream)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def upstream_servers(replicas: list[tuple[Node, int]]) -> str:
    # max_fails/fail_timeout: a replica that refused a connection is left alone for 2 s.
    return " ".join(
        f"server {node.address}:{port} max_fails=1 fail_timeout=2s;" for node, port in replicas
    )


def gateway_variables(config: ClusterConfig) -> dict[str, str]:
    values = {
        f"{s.upper()}_SERVERS": upstream_servers(config.replica_placements(s)) for s in SERVICES
    }
    values.update(
        GATEWAY_PORT=f"127.0.0.1:{config.gateway_port}",
        RATE_LIMIT_AUTH_RPS=str(config.rate_limit_auth_rps),
        RATE_LIMIT_AUTH_BURST=str(config.rate_limit_auth_burst),
        RATE_LIMIT_API_RPS=str(config.rate_limit_api_rps),
        RATE_LIMIT_API_BURST=str(config.rate_limit_api_burst),
        # A copy in the state folder: nginx's unprivileged workers may not be able to read
        # the checkout itself.
        OPENAPI_FILE=str(config.nginx_dir / "openapi.json"),
        WEB_DIR=str(config.nginx_dir / "web"),
        ACCESS_LOG=str(config.logs_dir / "gateway-access.log"),
    )
    return values


def render_gateway(config: ClusterConfig, template_text: str | None = None) -> str:
    text = template_text if template_text is not None else NGINX_TEMPLATE.read_text()
    # safe_substitute leaves nginx's own $variables alone: only our upper-case names match.
    return Template(text).safe_substitute(gateway_variables(config))


def render_nginx_main(config: ClusterConfig) -> str:
    nginx_dir = config.nginx_dir
    return f"""# Rendered by v5-cluster; edit nginx/templates/gateway.conf.template instead.
worker_processes auto;
worker_rlimit_nofile {file_limit()};
error_log {config.logs_dir / "gateway-error.log"} warn;
pid {nginx_dir / "nginx.pid"};

events {{
    worker_connections 16384;
    multi_accept on;
}}

http {{
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    reset_timedout_connection on;
    server_tokens off;
    client_body_temp_path {nginx_dir / "client_body"};
    proxy_temp_path {nginx_dir / "proxy"};
    fastcgi_temp_path {nginx_dir / "fastcgi"};
    uwsgi_temp_path {nginx_dir / "uwsgi"};
    scgi_temp_path {nginx_dir / "scgi"};
    include {nginx_dir / "gateway.conf"};
}}
"""


def render_redis(config: ClusterConfig) -> str:
    # Protected mode answers only loopback clients while there is no password; replicas on
    # other nodes reach Redis over their links, on addresses that only those links carry.
    protected = "protected-mode " + (
        "yes" if config.data_listen_addresses == ["127.0.0.1"] else "no"
    )
    return f"""# Rendered by v5-cluster.
bind {" ".join(config.data_listen_addresses)}
port {config.redis_port}
{protected}
daemonize no
dir {config.redis_dir}
# Every acknowledged write is in the append-only file within a second; a process kill
# (not a machine crash) loses nothing.
appendonly yes
appendfsync everysec
save ""
maxclients 10000
tcp-backlog 4096
"""


def _supervisor_value(value: str) -> str:
    # supervisor expands %(name)s in its config; a literal percent sign must be doubled.
    return value.replace("%", "%%")


def _environment_line(env: dict[str, str]) -> str:
    parts = []
    for key, value in env.items():
        escaped = _supervisor_value(value).replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return ",".join(parts)


def service_environment(config: ClusterConfig, service: str, port: int) -> dict[str, str]:
    node = config.replica_node(service, config.replica_ports(service).index(port))
    env = {
        "SERVICE_NAME": service,
        "HOST": node.address,
        "PORT": str(port),
        "DATABASE_URL": config.database_url_from(node),
        "REDIS_URL": config.redis_url_from(node),
        "JWT_PUBLIC_KEY_FILE": str(config.keys_dir / "jwt_public.pem"),
    }
    if service == "identity":
        env["JWT_PRIVATE_KEY_FILE"] = str(config.keys_dir / "jwt_private.pem")
    env.update(config.service_env)
    return env


def render_supervisor(
    config: ClusterConfig,
    *,
    postgres_bin: Path,
    redis_bin: str,
    nginx_bin: str,
    postgres_user: str | None,
) -> str:
    logs = config.logs_dir
    lines = [
        "; Rendered by v5-cluster.",
        "[unix_http_server]",
        f"file={config.supervisor_socket}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={config.supervisor_pidfile}",
        "nodaemon=false",
        f"minfds={file_limit()}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{config.supervisor_socket}",
        "",
        "[program:redis]",
        f"command={redis_bin} {config.redis_dir / 'redis.conf'}",
        "autostart=true",
        "autorestart=true",
        "startsecs=1",
        "stopsignal=TERM",
        "stopwaitsecs=30",
        f"stdout_logfile={logs / 'redis.log'}",
        "redirect_stderr=true",
        "",
        "[program:postgres]",
        "command="
        + shlex.join(
            [
                str(postgres_bin),
                "-D",
                str(config.postgres_data),
                "-p",
                str(config.postgres_port),
                "-k",
                str(config.postgres_socket_dir),
                "-c",
                f"listen_addresses={','.join(config.data_listen_addresses)}",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "log_min_duration_statement=250",
                # A slow statement is logged without its bind parameters: they include
                # password hashes (INSERT INTO users), which must never reach a log file.
                "-c",
                "log_parameter_max_length=0",
                # A replica that is cut off mid-transaction (its node lost) leaves its
                # backend waiting with the listener's row lock held; no transaction of ours
                # is idle for more than milliseconds, so end such a session after 10 s.
                "-c",
                "idle_in_transaction_session_timeout=10s",
            ]
        ),
        *([f"user={postgres_user}"] if postgres_user else []),
        "autostart=true",
        "autorestart=true",
        "startsecs=1",
        # SIGINT is PostgreSQL's fast shutdown: roll back open transactions, then stop cleanly.
        "stopsignal=INT",
        "stopwaitsecs=60",
        f"stdout_logfile={logs / 'postgres.log'}",
        "redirect_stderr=true",
        "",
    ]
    for service in SERVICES:
        names = []
        for index, (node, port) in enumerate(config.replica_placements(service)):
            name = f"{service}-{index}"
            names.append(name)
            # taskset and `ip netns exec` exec the command (on the node's cores, in its
            # namespace): supervisord's signals reach the service process itself.
            enter = (f"taskset -c {node.cpus} " if node.cpus else "") + (
                f"ip netns exec {node.netns} " if node.netns else ""
            )
            lines += [
                f"[program:{name}]",
                f"command={enter}{config.python} -m {service}_service",
                f"directory={REPO_ROOT}",
                f"environment={_environment_line(service_environment(config, service, port))}",
                "autostart=false",
                "autorestart=true",
                "startsecs=2",
                "startretries=10",
                "stopsignal=TERM",
                "stopwaitsecs=20",
                f"stdout_logfile={logs / (name + '.log')}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=2",
                "redirect_stderr=true",
                "",
            ]
        lines += [f"[group:{service}]", f"programs={','.join(names)}", ""]
    lines += [
        "[program:gateway]",
        f"command={nginx_bin} -c {config.nginx_dir / 'nginx.conf'} -g 'daemon off;'",
        "autostart=false",
        "autorestart=true",
        "startsecs=1",
        "stopsignal=QUIT",
        "stopwaitsecs=20",
        f"stdout_logfile={logs / 'gateway.log'}",
        "redirect_stderr=true",
        "",
    ]
    return "\n".join(lines)
