"""Bring the local cluster up and down: real Redis, PostgreSQL, service replicas and nginx as
processes under supervisord, with all state in one folder that survives down/up."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from supervisor.xmlrpc import SupervisorTransport

from v5_shared.catalog.commands import seed_default_catalog
from v5_shared.keys import generate_development_keys
from v5_shared.migrate import apply_migrations

from . import render
from .config import SERVICES, ClusterConfig


class ClusterError(RuntimeError):
    pass


def find_postgres_bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(os.path.realpath(found)).parent
    raise ClusterError("PostgreSQL server binaries not found (apt-get install postgresql)")


def _require(binary: str, package: str) -> str:
    found = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if not found:
        raise ClusterError(f"{binary} not found (apt-get install {package})")
    return found


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class LocalCluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._as_root = os.geteuid() == 0
        # initdb refuses to run as root, so PostgreSQL runs as the postgres user then.
        self._postgres_user = "postgres" if self._as_root else None

    # supervisor ------------------------------------------------------------------------
    def supervisorctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._bin("supervisorctl"), "-c", str(self.config.supervisor_conf), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def _bin(self, name: str) -> str:
        return str(Path(self.config.python).parent / name)

    def rpc(self) -> Any:
        """supervisord's XML-RPC interface, over its unix socket."""
        transport = SupervisorTransport(None, None, f"unix://{self.config.supervisor_socket}")
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport).supervisor

    def start_in_parallel(self, groups: Sequence[str]) -> None:
        # supervisorctl starts programs one after another, each waiting out its startsecs;
        # without waiting, all replicas import and warm up at the same time.
        supervisor = self.rpc()
        for group in groups:
            supervisor.startProcessGroup(group, False)

    def supervisor_running(self) -> bool:
        if not self.config.supervisor_socket.exists():
            return False
        result = self.supervisorctl("pid", check=False)
        return result.returncode == 0 and result.stdout.strip().isdigit()

    # preparation -----------------------------------------------------------------------
    def _prepare_state(self) -> None:
        cfg = self.config
        for folder in (
            cfg.state_dir,
            cfg.logs_dir,
            cfg.redis_dir,
            cfg.nginx_dir,
            cfg.postgres_data.parent,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            self._let_other_users_reach(cfg.state_dir)
        generate_development_keys(cfg.keys_dir)
        self._init_postgres()
        (cfg.redis_dir / "redis.conf").write_text(render.render_redis(cfg))
        (cfg.nginx_dir / "gateway.conf").write_text(render.render_gateway(cfg))
        shutil.copyfile(render.OPENAPI_FILE, cfg.nginx_dir / "openapi.json")
        self._copy_web_page()
        (cfg.nginx_dir / "nginx.conf").write_text(render.render_nginx_main(cfg))
        self._check_nginx_config()
        cfg.supervisor_conf.write_text(
            render.render_supervisor(
                cfg,
                postgres_bin=find_postgres_bin_dir() / "postgres",
                redis_bin=_require("redis-server", "redis-server"),
                nginx_bin=_require("nginx", "nginx"),
                postgres_user=self._postgres_user,
            )
        )

    def _copy_web_page(self) -> None:
        """The demo page (web/), copied for the same reason as openapi.json: nginx's workers
        (nobody) must be able to read it, whatever the checkout's permissions."""
        web = self.config.nginx_dir / "web"
        shutil.rmtree(web, ignore_errors=True)
        web.mkdir()
        web.chmod(0o755)
        for source in sorted(render.WEB_DIR.iterdir()):
            if source.is_file():
                shutil.copyfile(source, web / source.name)
                (web / source.name).chmod(0o644)

    def _check_nginx_config(self) -> None:
        nginx_conf = self.config.nginx_dir / "nginx.conf"
        result = subprocess.run(
            [_require("nginx", "nginx"), "-t", "-q", "-c", str(nginx_conf)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise ClusterError(f"the gateway configuration is invalid:\n{result.stderr}")

    @staticmethod
    def _let_other_users_reach(folder: Path) -> None:
        """PostgreSQL runs as postgres and nginx's workers as nobody: both must be able to
        pass through every folder above the state folder. Add the search bit (o+x: pass
        through, not list) where it is missing, e.g. on a 0700 temporary folder."""
        for path in [folder, *folder.parents]:
            mode = path.stat().st_mode
            if not mode & stat.S_IXOTH:
                path.chmod(mode | stat.S_IXOTH)
                print(f"note: made {path} passable (o+x) for the postgres and nginx users")
        for path in (folder, folder / "nginx", folder / "postgres"):
            if path.exists():
                path.chmod(path.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)

    def _chown_to_postgres(self, path: Path) -> None:
        if self._postgres_user:
            entry = pwd.getpwnam(self._postgres_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _init_postgres(self) -> None:
        cfg = self.config
        cfg.postgres_socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown_to_postgres(cfg.postgres_socket_dir)
        if not (cfg.postgres_data / "PG_VERSION").exists():
            self._initdb()
        self._allow_node_clients()

    def _allow_node_clients(self) -> None:
        # initdb's pg_hba admits loopback only; replicas on other nodes connect from theirs.
        hba = self.config.postgres_data / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        wanted = [
            f"host all all {address}/32 trust" for address in self.config.node_client_addresses
        ]
        missing = [line for line in wanted if line not in lines]
        if missing:
            hba.write_text("\n".join([*lines, *missing]) + "\n")

    def _initdb(self) -> None:
        cfg = self.config
        cfg.postgres_data.mkdir(parents=True, exist_ok=True)
        self._chown_to_postgres(cfg.postgres_data)
        command = [
            str(find_postgres_bin_dir() / "initdb"),
            "-D",
            str(cfg.postgres_data),
            "-U",
            "postgres",
            # Local development cluster on loopback only; production uses real credentials.
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        if self._postgres_user:
            command = ["runuser", "-u", self._postgres_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise ClusterError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    # lifecycle -------------------------------------------------------------------------
    def up(self, *, with_services: bool = True, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        if not self.supervisor_running():
            self._check_ports_free()
            self._prepare_state()
            subprocess.run(
                [self._bin("supervisord"), "-c", str(self.config.supervisor_conf)],
                check=True,
                timeout=30,
            )
        else:
            self.supervisorctl("start", "redis", "postgres", check=False)
        self._wait_for_datastores(deadline)
        asyncio.run(self._prepare_database())
        if not with_services:
            return
        self.start_in_parallel(SERVICES)
        self._wait_for_replicas(deadline)
        self.supervisorctl("start", "gateway", check=False)
        self._wait_for_gateway(deadline)

    def down(self, timeout: float = 90.0) -> None:
        if not self.supervisor_running():
            return
        pid_text = (
            self.config.supervisor_pidfile.read_text().strip()
            if self.config.supervisor_pidfile.exists()
            else ""
        )
        # Stop the gateway and services first so no request meets a stopped data store.
        self.supervisorctl("stop", "gateway", check=False)
        self.supervisorctl("stop", *(f"{s}:*" for s in SERVICES), check=False)
        self.supervisorctl("shutdown", check=False)
        deadline = time.monotonic() + timeout
        while pid_text.isdigit() and _pid_alive(int(pid_text)):
            if time.monotonic() > deadline:
                raise ClusterError("supervisord did not stop in time")
            time.sleep(0.2)
        # supervisord is gone once its children have exited, but a child's own children
        # (nginx workers, PostgreSQL backends) can hold a listening socket a moment longer:
        # `down` returns when nothing of the cluster listens, so `up` can follow at once.
        while busy := self._busy_ports():
            if time.monotonic() > deadline:
                raise ClusterError(f"ports still in use after stopping: {busy}")
            time.sleep(0.2)

    def status(self) -> str:
        if not self.supervisor_running():
            return "not running"
        return self.supervisorctl("status", check=False).stdout

    def _busy_ports(self) -> list[int]:
        cfg = self.config
        busy = [p for p in (cfg.gateway_port, cfg.redis_port, cfg.postgres_port) if port_is_open(p)]
        for service in SERVICES:
            busy += [
                p for node, p in cfg.replica_placements(service) if port_is_open(p, node.address)
            ]
        return busy

    def _check_ports_free(self) -> None:
        busy = self._busy_ports()
        if busy:
            raise ClusterError(
                f"ports already in use: {busy}; stop what uses them or choose other ports "
                "(GATEWAY_PORT, REDIS_PORT, POSTGRES_PORT, <SERVICE>_PORT_BASE)"
            )

    # waiting ---------------------------------------------------------------------------
    def _wait_for_datastores(self, deadline: float) -> None:
        cfg = self.config
        self._wait(lambda: port_is_open(cfg.redis_port), deadline, "redis", ["redis.log"])
        self._wait(
            lambda: asyncio.run(self._postgres_answers()),
            deadline,
            "postgres",
            ["postgres.log"],
        )

    async def _postgres_answers(self) -> bool:
        try:
            conn = await asyncpg.connect(
                f"postgresql://postgres@127.0.0.1:{self.config.postgres_port}/postgres",
                timeout=1,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    async def _prepare_database(self) -> None:
        cfg = self.config
        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{cfg.postgres_port}/postgres", timeout=5
        )
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", cfg.database
            )
            if not exists:
                await conn.execute(f'CREATE DATABASE "{cfg.database}"')
        finally:
            await conn.close()
        await apply_migrations(cfg.database_url)
        await seed_default_catalog(cfg.database_url, if_empty=True)

    def _wait_for_replicas(self, deadline: float) -> None:
        for service in SERVICES:
            for index, (node, port) in enumerate(self.config.replica_placements(service)):
                self._wait(
                    partial(_http_ok, f"http://{node.address}:{port}/readyz"),
                    deadline,
                    f"{service}-{index}",
                    [f"{service}-{index}.log"],
                )

    def _wait_for_gateway(self, deadline: float) -> None:
        url = f"{self.config.gateway_url}/healthz"
        self._wait(lambda: _http_ok(url), deadline, "gateway", ["gateway.log", "gateway-error.log"])

    def _wait(self, probe: Callable[[], bool], deadline: float, what: str, logs: list[str]) -> None:
        checks = 0
        while not probe():
            checks += 1
            # A program that keeps crashing will not get better by waiting: say why now.
            if checks % 10 == 0 and self._has_given_up(what):
                raise ClusterError(f"{what} keeps failing to start\n" + self.tail(logs))
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} did not become ready in time\n" + self.tail(logs))
            time.sleep(0.2)

    def _has_given_up(self, program: str) -> bool:
        name = program if program in ("redis", "postgres", "gateway") else _group_name(program)
        state = self.supervisorctl("status", name, check=False).stdout
        return "FATAL" in state

    def tail(self, names: list[str], lines: int = 30) -> str:
        chunks = []
        for name in names:
            path = self.config.logs_dir / name
            if path.exists():
                content = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} (last {len(content)} lines)\n" + "\n".join(content))
        return "\n".join(chunks) or "(no log lines yet)"


def _group_name(replica: str) -> str:
    service, _, _index = replica.rpartition("-")
    return f"{service}:{replica}"


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
