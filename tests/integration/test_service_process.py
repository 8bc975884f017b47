"""A real service process: production mode refuses development keys; SIGTERM drains the
request in flight before the process exits; past its concurrency limit it answers a fast 503."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from v5_cluster.cluster import LocalCluster
from v5_shared.keys import generate_development_keys


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_env(cluster: LocalCluster, keys: Path, port: int, **extra: str) -> dict[str, str]:
    private, public, _ = generate_development_keys(keys)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": cluster.config.database_url,
        "REDIS_URL": cluster.config.redis_url,
        "JWT_PUBLIC_KEY_FILE": str(public),
        "JWT_PRIVATE_KEY_FILE": str(private),
    }
    env.update(extra)
    return env


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "identity_service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the service did not become ready")


def test_past_its_concurrency_limit_a_replica_answers_a_fast_503(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    port = _free_port()
    # One request at a time, and a slow password hash to hold that one slot.
    env = _service_env(
        cluster,
        tmp_path,
        port,
        ARGON2_TIME_COST="40",
        MAX_CONCURRENT_REQUESTS="1",
        ADMISSION_WAIT_SECONDS="0.2",
    )
    process = _start(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        result: dict[str, httpx.Response] = {}

        def register(name: str) -> None:
            result[name] = httpx.post(
                f"{base}/api/v1/v5/auth/register",
                json={"user_id": f"{name}_{port}", "password": "holding the slot"},
                timeout=60,
            )

        holder = threading.Thread(target=register, args=("holder",))
        holder.start()
        time.sleep(0.3)  # the registration is now hashing, holding the only slot
        started = time.monotonic()
        refused = httpx.post(
            f"{base}/api/v1/v5/auth/token",
            json={"user_id": f"holder_{port}", "password": "holding the slot"},
            headers={"X-Request-ID": "refused-1"},
            timeout=10,
        )
        waited = time.monotonic() - started
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"detail": "service at capacity, retry shortly"}
        # Still inside the request context: request id and security headers.
        assert refused.headers["x-request-id"] == "refused-1"
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert waited < 2.0  # the admission wait (0.2 s), not the hash in flight
        # Probes are never held back: the replica is busy, not dead.
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'v5_http_requests_shed_total{service="identity"} 1.0' in metrics

        holder.join(timeout=60)
        assert result["holder"].status_code == 201
        # The slot is free again: the same login now succeeds.
        again = httpx.post(
            f"{base}/api/v1/v5/auth/token",
            json={"user_id": f"holder_{port}", "password": "holding the slot"},
            timeout=60,
        )
        assert again.status_code == 200
    finally:
        process.kill()
        process.wait()


def test_production_mode_refuses_a_development_key(cluster: LocalCluster, tmp_path: Path) -> None:
    port = _free_port()
    result = subprocess.run(
        [sys.executable, "-m", "identity_service"],
        env=_service_env(cluster, tmp_path, port, ENVIRONMENT="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "development key" in result.stdout + result.stderr


def test_sigterm_drains_the_request_in_flight(cluster: LocalCluster, tmp_path: Path) -> None:
    port = _free_port()
    # A deliberately slow password hash keeps a registration in flight for a while.
    env = _service_env(
        cluster,
        tmp_path,
        port,
        ARGON2_TIME_COST="40",
        ARGON2_MEMORY_KIB="65536",
        GRACEFUL_SHUTDOWN_SECONDS="30",
    )
    process = _start(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        result: dict[str, httpx.Response] = {}

        def register() -> None:
            result["response"] = httpx.post(
                f"{base}/api/v1/v5/auth/register",
                json={"user_id": f"drain_{port}", "password": "in flight"},
                timeout=60,
            )

        sender = threading.Thread(target=register)
        started = time.monotonic()
        sender.start()
        time.sleep(0.3)  # the request is now hashing
        process.send_signal(signal.SIGTERM)
        sender.join(timeout=60)
        assert result["response"].status_code == 201
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - started > 0.3
        output = process.stdout.read() if process.stdout else ""
        assert '"event":"service_stopped"' in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
