"""A throwaway PgBouncer (Debian's /usr/sbin/pgbouncer) in transaction pooling mode, in front of
a test cluster's PostgreSQL, for the tests that run the services through a transaction pooler.

It listens on a free loopback port, authenticates clients by md5 against an auth_file of its
own (the cluster's PostgreSQL trusts loopback, so PgBouncer needs no server password), keeps at
most `pool_size` server connections per database and user (small, so that server connections
really are shared between client connections), and runs nothing between transactions
(`server_reset_query` empty, as transaction pooling wants). Besides a pool per database name
(the `*` fallback), `<database>_one` is the same database through a single server connection:
every client then shares one server session, which makes session state leaking between
clients deterministic to observe.
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

PGBOUNCER_BIN = "/usr/sbin/pgbouncer"
USER = "postgres"
PASSWORD = "pgbouncer-test-password"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def render_config(
    *,
    folder: Path,
    listen_port: int,
    server_port: int,
    database: str,
    pool_size: int,
    ignore_startup_parameters: str = "",
) -> str:
    """pgbouncer.ini: what the services need from a transaction pooler, nothing more."""
    return f"""\
[databases]
{database}_one = host=127.0.0.1 port={server_port} dbname={database} pool_size=1
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
auth_type = md5
auth_file = {folder / "userlist.txt"}
admin_users = {USER}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
server_reset_query =
server_check_delay = 0
ignore_startup_parameters = {ignore_startup_parameters}
query_wait_timeout = 30
"""


class PgBouncer:
    """Start with `with PgBouncer(...) as bouncer:`; stopped (and its folder removed) on exit,
    also when the block fails."""

    def __init__(
        self,
        server_port: int,
        *,
        database: str = "v5",
        pool_size: int = 4,
        ignore_startup_parameters: str = "",
    ) -> None:
        if not Path(PGBOUNCER_BIN).exists():
            raise RuntimeError(f"{PGBOUNCER_BIN} not found (apt-get install pgbouncer)")
        self.server_port = server_port
        self.database = database
        self.pool_size = pool_size
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="v5-pgbouncer-"))
        self._ignore = ignore_startup_parameters
        self._process: subprocess.Popen[bytes] | None = None

    # addresses -----------------------------------------------------------------------------
    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def single_dsn(self) -> str:
        """The database through PgBouncer's single server connection."""
        return self.dsn(f"{self.database}_one")

    # lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            render_config(
                folder=self.folder,
                listen_port=self.port,
                server_port=self.server_port,
                database=self.database,
                pool_size=self.pool_size,
                ignore_startup_parameters=self._ignore,
            )
        )
        # A plain-text password in the auth_file; clients authenticate by md5 against it.
        (self.folder / "userlist.txt").write_text(f'"{USER}" "{PASSWORD}"\n')
        command = [PGBOUNCER_BIN]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root: it drops to the postgres user, who must be able
            # to read its configuration and write its log.
            entry = pwd.getpwnam(USER)
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            command += ["-u", USER]
        command.append(str(config))
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not _port_is_open(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                self.stop()
                raise RuntimeError(f"pgbouncer did not start: {error}\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGTERM: immediate shutdown (SIGINT would wait for clients to finish).
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        deadline = time.monotonic() + timeout
        while _port_is_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "pgbouncer.log"
        if not path.exists():
            return "(no pgbouncer log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # the admin console -----------------------------------------------------------------------
    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (simple query protocol only, hence psql)."""
        psql = shutil.which("psql") or "/usr/bin/psql"
        result = subprocess.run(
            [psql, "-X", "-A", "-F", "\t", "-P", "footer=off", "-c", f"SHOW {what}"],
            env={
                **os.environ,
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self.port),
                "PGUSER": USER,
                "PGPASSWORD": PASSWORD,
                "PGDATABASE": "pgbouncer",
            },
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return list(csv.DictReader(io.StringIO(result.stdout), delimiter="\t"))
