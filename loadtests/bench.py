"""Service-time benchmark (`make bench`): how long one request takes, without load.

1. In-process handler time: the conversation and recommendation apps driven directly over
   ASGI (no network, no gateway), against real Redis and PostgreSQL; the recommendation over
   a 100,000-track catalog.
2. Through the gateway on one keep-alive connection, with the default catalog.
   (1 and 2 are taken in interleaved blocks: see time_interleaved.)
3. Redis memory held by a typical 10-turn session, and a 50-turn conversation's turn times.

It starts its own throwaway cluster (real Redis, PostgreSQL, nginx, 2 replicas each) on free
ports and writes reports/bench.md and reports/bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import uvloop

from v5_cluster.cluster import LocalCluster
from v5_cluster.config import REPO_ROOT, ephemeral_config
from v5_shared.catalog.generator import generate_catalog

MESSAGES = [
    "I'm feeling a bit low today, maybe some jazz",
    "something calm for studying please",
    "I love Velvet Harbor, more like that",
    "not happy at all, put on some soul",
    "that's better, I feel good now",
    "let's do hip hop for my workout",
    "really stressed about work",
    "play some lo-fi while I focus",
    "I'm happy, something upbeat and pop",
    "winding down, ambient for sleep",
]


def _cpu_ticks() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields)


def settle(max_seconds: float = 30.0, idle_share: float = 0.9) -> None:
    """Wait until the machine is idle (the cluster has finished starting: catalog loads,
    PostgreSQL's analyze after the seed), so that service time is not measured against
    start-up work. Gives up after max_seconds."""
    if not Path("/proc/stat").exists():
        return
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        idle_before, total_before = _cpu_ticks()
        time.sleep(1.0)
        idle_after, total_after = _cpu_ticks()
        if (idle_after - idle_before) >= idle_share * max(total_after - total_before, 1):
            return


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "p50": round(at(0.50), 3),
        "p95": round(at(0.95), 3),
        "p99": round(at(0.99), 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


class AsgiDriver:
    """Calls an ASGI app directly: the handler's own time, with no HTTP client in the way."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, path: str, body: Any | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else orjson.dumps(body)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-type", b"application/json"))
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": raw_headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


Call = Callable[[int], Awaitable[tuple[int, bytes]]]


async def time_interleaved(
    calls: dict[str, Call], *, warmup: int, runs: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Time each call ``runs`` times, in ``rounds`` blocks taken in turn (A, B, C, A, B,
    C, ...) rather than one measurement after another: this host's speed drifts over tens of
    seconds, and interleaving lets the drift fall on every figure alike instead of on
    whichever happened to run during a slow spell."""
    for name, call in calls.items():
        for i in range(warmup):
            status, body = await call(i)
            assert status == 200, (name, body[:300])
    samples: dict[str, list[float]] = {name: [] for name in calls}
    block = max(1, runs // rounds)
    for round_ in range(rounds):
        for name, call in calls.items():
            for i in range(round_ * block, (round_ + 1) * block):
                started = time.perf_counter()
                status, body = await call(i)
                samples[name].append((time.perf_counter() - started) * 1000)
                assert status == 200, (name, body[:300])
    return {name: percentiles(values) for name, values in samples.items()}


class GatewayClient:
    """One keep-alive connection with the standard library's lean HTTP client, so that the
    client's own overhead (httpx costs about 1 ms a request here) does not hide the server's.
    Blocking on purpose: nothing else runs on the bench's event loop while it waits."""

    def __init__(self, gateway: str, token: str) -> None:
        host, port = gateway.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.connection.request("POST", path, body=orjson.dumps(body), headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def service_time(
    cluster: LocalCluster, token: str, user_id: str, runs: int, rounds: int
) -> dict[str, Any]:
    """In-process handler time (the conversation and recommendation apps in this process,
    over ASGI, against the cluster's Redis and PostgreSQL; the recommendation over a
    100,000-track catalog) and time through the gateway on one connection (the cluster's
    replicas, default catalog), interleaved."""
    import os

    cfg = cluster.config
    os.environ.update(
        DATABASE_URL=cfg.database_url,
        REDIS_URL=cfg.redis_url,
        JWT_PUBLIC_KEY_FILE=str(cfg.keys_dir / "jwt_public.pem"),
        ACCESS_LOG="false",
        LOG_LEVEL="warning",
    )
    from conversation_service.app import create_app as conversation_app
    from recommendation_service.app import create_app as recommendation_app
    from recommendation_service.catalog import CatalogIndex

    headers = {"authorization": f"Bearer {token}"}
    converse = "/api/v1/v5/conversation/continue"
    recommend = "/api/v1/v5/recommendation/adaptive"
    results: dict[str, Any] = {}

    def turn(i: int) -> dict[str, Any]:
        return {"user_id": user_id, "message": MESSAGES[i % len(MESSAGES)]}

    async def run() -> None:
        conversation = conversation_app()
        recommendation = recommendation_app()
        gateway = GatewayClient(cfg.gateway_url, token)
        async with (
            conversation.router.lifespan_context(conversation),
            recommendation.router.lifespan_context(recommendation),
        ):
            tracks = generate_catalog(seed=7, n_tracks=100_000, n_artists=8_000)
            watcher = recommendation.state.catalog
            # Stopped, or its next poll would put the stored (default) catalog back.
            await watcher.stop()
            watcher.view = CatalogIndex(version=10_000, tracks=tracks)
            watcher.version = 10_000
            in_conversation, in_recommendation = (
                AsgiDriver(conversation),
                AsgiDriver(recommendation),
            )
            settle()
            timed = await time_interleaved(
                {
                    "in_process/conversation_turn": lambda i: in_conversation.request(
                        "POST", converse, turn(i), headers
                    ),
                    "in_process/recommendation_100k": lambda i: in_recommendation.request(
                        "POST", recommend, {"user_id": user_id, "limit": 10}, headers
                    ),
                    "gateway/conversation_turn": lambda i: gateway.post(converse, turn(i)),
                    "gateway/recommendation_24k": lambda i: gateway.post(
                        recommend, {"user_id": user_id, "limit": 10}
                    ),
                },
                warmup=50,
                runs=runs,
                rounds=rounds,
            )
        gateway.close()
        for key, figures in timed.items():
            group, name = key.split("/")
            results.setdefault(group, {})[name] = figures

    # The event loop the services run on.
    uvloop.run(run())
    return results


def long_conversation(gateway: str, token: str, user_id: str, sessions: int = 10) -> dict[str, Any]:
    """Turn-by-turn latency over 50-turn conversations: the window and the context stay
    bounded, so turn 50 should cost what turn 5 does."""
    host, port = gateway.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    by_turn: dict[int, list[float]] = {}
    try:
        for _ in range(sessions):
            connection.request("DELETE", f"/api/v1/v5/session/{user_id}", headers=headers)
            connection.getresponse().read()
            for turn in range(1, 51):
                body = orjson.dumps({"user_id": user_id, "message": MESSAGES[turn % len(MESSAGES)]})
                started = time.perf_counter()
                connection.request(
                    "POST", "/api/v1/v5/conversation/continue", body=body, headers=headers
                )
                response = connection.getresponse()
                response.read()
                by_turn.setdefault(turn, []).append((time.perf_counter() - started) * 1000)
                assert response.status == 200
    finally:
        connection.close()
    early = [v for t in range(1, 6) for v in by_turn[t]]
    late = [v for t in range(46, 51) for v in by_turn[t]]
    return {"turns_1_5": percentiles(early), "turns_46_50": percentiles(late)}


def session_memory(cluster: LocalCluster, gateway: str, token: str, user_id: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as client:
        client.delete(f"/api/v1/v5/session/{user_id}")
        for message in MESSAGES:
            assert (
                client.post(
                    "/api/v1/v5/conversation/continue",
                    json={"user_id": user_id, "message": message},
                ).status_code
                == 200
            )
    r = redis.Redis(port=cluster.config.redis_port)
    return sum(int(r.memory_usage(key) or 0) for key in r.keys(f"v5:s:{{{user_id}}}:*"))


def account(gateway: str) -> tuple[str, str]:
    user_id = f"bench_{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=gateway, timeout=10) as client:
        body = {"user_id": user_id, "password": "benchmark password"}
        assert client.post("/api/v1/v5/auth/register", json=body).status_code == 201
        token = client.post("/api/v1/v5/auth/token", json=body).json()["access_token"]
    return user_id, token


def report(results: dict[str, Any]) -> str:
    rows = [
        "| measurement | n | p50 ms | p95 ms | p99 ms | target |",
        "|---|---|---|---|---|---|",
    ]
    targets = {
        ("in_process", "conversation_turn"): "p50 <= 1 ms",
        ("in_process", "recommendation_100k"): "p50 <= 3 ms",
        ("gateway", "conversation_turn"): "p50 <= 2 ms",
        ("gateway", "recommendation_24k"): "p50 <= 4 ms",
    }
    labels = {
        ("in_process", "conversation_turn"): "in-process conversation turn",
        ("in_process", "recommendation_100k"): "in-process recommendation of 10, 100k tracks",
        ("gateway", "conversation_turn"): "gateway, one connection: conversation turn",
        ("gateway", "recommendation_24k"): "gateway, one connection: recommendation of 10, 24k",
    }
    for (group, name), label in labels.items():
        s = results[group][name]
        rows.append(
            f"| {label} | {s['n']} | {s['p50']} | {s['p95']} | {s['p99']} | "
            f"{targets[(group, name)]} |"
        )
    rows.append(
        f"| Redis memory of a 10-turn session | 1 | {results['session_bytes']} bytes | | | "
        "<= 4096 bytes |"
    )
    long = results["long_conversation"]
    rows.append(
        f"| 50-turn conversations (10): turns 1-5 / turns 46-50, gateway | "
        f"{long['turns_1_5']['n']} | {long['turns_1_5']['p50']} / {long['turns_46_50']['p50']} | "
        f"{long['turns_1_5']['p95']} / {long['turns_46_50']['p95']} | "
        f"{long['turns_1_5']['p99']} / {long['turns_46_50']['p99']} | no slowdown |"
    )
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--rounds", type=int, default=10, help="blocks each measurement is split into"
    )
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="v5-bench-"))
    state.chmod(0o755)
    config = ephemeral_config(state, service_env={"ACCESS_LOG": "false", "LOG_LEVEL": "warning"})
    config.rate_limit_api_rps = 100_000
    config.rate_limit_api_burst = 100_000
    cluster = LocalCluster(config)
    try:
        cluster.up(timeout=180)
        gateway = config.gateway_url
        user_id, token = account(gateway)
        results: dict[str, Any] = service_time(cluster, token, user_id, args.runs, args.rounds)
        results["session_bytes"] = session_memory(cluster, gateway, token, user_id)
        settle()
        results["long_conversation"] = long_conversation(gateway, token, user_id)
    finally:
        cluster.down()
        shutil.rmtree(state, ignore_errors=True)
    out = REPO_ROOT / "reports"
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    table = report(results)
    (out / "bench.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
