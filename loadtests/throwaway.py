"""What every load run needs: a throwaway cluster, listener accounts provisioned before the
measured window, and locust started against the cluster's gateway.

The cluster is the real one (Redis, PostgreSQL, nginx, 2 replicas of each service) on free
ports in a temporary folder, beside any `make up` cluster, and always stopped and removed
afterwards. Services run without per-request access logs (as `make bench` does), and the
gateway keeps its default rate limits: a listener pacing itself like a person stays far
below the per-user limit, and a run that met it would be telling us something.

Accounts are made by `v5ctl provision-listeners` with identity's own environment (database,
private key, argon2 cost), so they are the accounts identity itself would have made, without
a registration or a login through the gateway's limits.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from v5_cluster.cluster import LocalCluster
from v5_cluster.config import REPO_ROOT, Node, ephemeral_config
from v5_cluster.render import service_environment

LOADTESTS = REPO_ROOT / "loadtests"
LISTENERS = LOADTESTS / "locustfile.py"
HELLO = LOADTESTS / "hello_locustfile.py"
BIN = Path(sys.executable).parent
SERVICE_ENV = {"ACCESS_LOG": "false", "LOG_LEVEL": "warning"}
# Users started per second: locust warns above this, and the random start phase spreads the
# first requests anyway.
SPAWN_RATE = 100.0
# How long locust may take to stop its users and print its summary when interrupted.
LOCUST_STOP_SECONDS = 20.0


def raise_open_file_limit() -> int:
    """Soft limit of open files up to the hard limit (every simulated listener holds a
    socket, and locust's processes inherit the limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextmanager
def throwaway_cluster(
    purpose: str, *, replicas: int = 2, service_cpus: str | None = None
) -> Iterator[LocalCluster]:
    """`replicas` of each service; with `service_cpus`, every replica on those cores only."""
    state = Path(tempfile.mkdtemp(prefix=f"v5-{purpose}-"))
    # PostgreSQL runs as postgres and nginx's workers as nobody: both must reach the folder.
    state.chmod(0o755)
    config = ephemeral_config(state, replicas=replicas, service_env=SERVICE_ENV)
    if service_cpus is not None:
        config.nodes = [Node("local", cpus=service_cpus)]
    cluster = LocalCluster(config)
    try:
        print(f"starting a throwaway cluster in {state} ...", flush=True)
        cluster.up(timeout=180)
        print(f"cluster up, gateway {cluster.config.gateway_url}", flush=True)
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(state, ignore_errors=True)


def provision_listeners(cluster: LocalCluster, count: int, out: Path) -> None:
    config = cluster.config
    identity_env = service_environment(config, "identity", config.replica_ports("identity")[0])
    subprocess.run(
        [str(BIN / "v5ctl"), "provision-listeners", "--count", str(count), "--out", str(out)],
        env={**os.environ, **identity_env},
        check=True,
        timeout=600,
    )


def locust_environment(
    accounts: Path | None = None,
    *,
    think_seconds: float | None = None,
    schedule_json: str | None = None,
    samples_dir: Path | None = None,
    processes: int = 1,
) -> dict[str, str]:
    """The environment that loadtests/locustfile.py and hello_locustfile.py read."""
    env = {
        **os.environ,
        # The locustfiles import the loadtests package from the repository root.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "V5_GENERATOR_PROCESSES": str(processes),
    }
    if accounts is not None:
        env["V5_ACCOUNTS_FILE"] = str(accounts)
    if think_seconds is not None:
        env["V5_THINK_SECONDS"] = str(think_seconds)
    if schedule_json is not None:
        env["V5_THINK_SCHEDULE"] = schedule_json
    if samples_dir is not None:
        env["V5_SAMPLES_DIR"] = str(samples_dir)
    return env


def locust_command(
    locustfile: Path,
    host: str,
    *,
    users: int,
    spawn_rate: float,
    run_seconds: float | None = None,
    processes: int = 1,
    extra: Sequence[str] = (),
) -> list[str]:
    """Headless when `run_seconds` is given (and then only the summary is printed), else with
    the web UI."""
    command = [
        str(BIN / "locust"),
        "-f",
        str(locustfile),
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--loglevel",
        "WARNING",
    ]
    if run_seconds is not None:
        command += ["--headless", "--only-summary", "--run-time", f"{round(run_seconds)}s"]
    if processes > 1:
        command += ["--processes", str(processes)]
    return [*command, *extra]


def run_locust(
    command: list[str],
    env: dict[str, str],
    timeout: float | None = None,
    on_started: Callable[[int], None] | None = None,
) -> int:
    """Run locust to its end and return its exit code. On Ctrl-C (which reaches locust too,
    in the same process group) or a timeout, locust gets SIGINT and time to stop its users
    and print its summary before it is killed."""
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
    if on_started is not None:
        on_started(process.pid)
    try:
        return process.wait(timeout)
    except BaseException:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(LOCUST_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
