"""Metrics end to end: requests through the gateway move the bandit and reward metrics on
the replicas that served them, and a real Prometheus, configured as in compose but with the
cluster's replica ports as fixed targets, scrapes every replica and answers every query of
the Grafana dashboard."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.test_observability import (
    dashboard_queries,
    evaluable,
    static_prometheus_config,
)
from v5_cluster.cluster import LocalCluster
from v5_shared.domain.bandit import ARMS
from v5_shared.domain.rewards import EVENTS
from v5_shared.domain.weights import FEEDBACK_TYPES

from .accounts import Listener

SERVICES = ("identity", "conversation", "recommendation", "learning")
PROMETHEUS = "/usr/bin/prometheus"
# Which service's replicas expose which of the new metrics (the others expose none).
OWNED = {
    "recommendation": ("v5_recommendations_total",),
    "learning": (
        "v5_rewards_total",
        "v5_reward_success_share_count",
        "v5_reward_success_share_sum",
        "v5_weight_feedback_total",
    ),
}
NEW_METRICS = tuple(name for names in OWNED.values() for name in names)
LOW_MOOD = "I'm feeling a bit low today, maybe some jazz"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def service_totals(cluster: LocalCluster, service: str) -> Samples:
    """Each sample summed over the service's replicas."""
    totals: Samples = {}
    for port in cluster.config.replica_ports(service):
        for key, value in scrape(port).items():
            totals[key] = totals.get(key, 0.0) + value
    return totals


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


def label_sets(samples: Samples, name: str) -> set[frozenset[tuple[str, str]]]:
    return {labels for sample, labels in samples if sample == name}


def listen_and_react(listener: Listener) -> dict[str, Any]:
    """A conversation turn, a recommendation, a liked reward for its first track and a like
    as weight feedback; what the API answered."""
    turn = listener.say(LOW_MOOD)
    assert turn.status_code == 200, turn.text
    recommended = listener.recommend(limit=5)
    assert recommended.status_code == 200, recommended.text
    body = recommended.json()
    track_id = body["tracks"][0]["track_id"]
    rewarded = listener.reward(
        recommendation_id=body["recommendation_id"],
        track_id=track_id,
        event="like",
        listen_ratio=0.9,
    )
    assert rewarded.status_code == 200, rewarded.text
    assert rewarded.json()["strategy"] == body["strategy"]
    adjusted = listener.adjust({"action": "feedback", "track_id": track_id, "feedback": "like"})
    assert adjusted.status_code == 200, adjusted.text
    return {
        "arm": body["strategy"],
        "comfort": "true" if body["comfort_boost"] else "false",
        "reward": rewarded.json()["reward"],
    }


def test_requests_move_the_new_metrics_on_the_replicas(
    cluster: LocalCluster, listener: Listener
) -> None:
    before = {service: service_totals(cluster, service) for service in SERVICES}
    served = listen_and_react(listener)
    after = {service: service_totals(cluster, service) for service in SERVICES}
    arm, comfort, reward = served["arm"], served["comfort"], served["reward"]

    def moved(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    def moved_in_all(service: str, name: str) -> float:
        return total(after[service], name) - total(before[service], name)

    recommendations = "v5_recommendations_total"
    assert moved("recommendation", recommendations, arm=arm, comfort=comfort) == 1
    assert moved_in_all("recommendation", recommendations) == 1, "one recommendation, once"

    assert moved("learning", "v5_rewards_total", arm=arm, event="like") == 1
    assert moved_in_all("learning", "v5_rewards_total") == 1
    assert moved("learning", "v5_reward_success_share_count", arm=arm) == 1
    assert moved("learning", "v5_reward_success_share_sum", arm=arm) == pytest.approx(
        (1 + reward) / 2, abs=1e-5
    )
    assert moved("learning", "v5_weight_feedback_total", feedback="like") == 1
    assert moved_in_all("learning", "v5_weight_feedback_total") == 1

    # Every replica of the owning service has the whole fixed set of series (created at
    # zero when it started), and no other label values; the other services expose none.
    expected = {
        "v5_recommendations_total": {
            frozenset({("arm", a), ("comfort", c)})
            for a in ARMS
            for c in ("true", "false")
            if (a, c) != ("comfort", "false")
        },
        "v5_rewards_total": {frozenset({("arm", a), ("event", e)}) for a in ARMS for e in EVENTS},
        "v5_reward_success_share_count": {frozenset({("arm", a)}) for a in ARMS},
        "v5_reward_success_share_sum": {frozenset({("arm", a)}) for a in ARMS},
        "v5_weight_feedback_total": {frozenset({("feedback", f)}) for f in FEEDBACK_TYPES},
    }
    for service in SERVICES:
        owned = OWNED.get(service, ())
        for port in cluster.config.replica_ports(service):
            samples = scrape(port)
            for name in NEW_METRICS:
                found = label_sets(samples, name)
                if name in owned:
                    assert found == expected[name], (service, port, name)
                else:
                    assert not found, f"{service} on {port} exposes {name}"


# --------------------------------------------------------------------------- Prometheus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call check until it returns something truthy; its last error or result on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout} s; last: {last!r}")


class Prometheus:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result = data["result"]
        return result if data["resultType"] in ("vector", "matrix") else [{"value": result}]


@pytest.fixture(scope="module")
def prometheus(cluster: LocalCluster) -> Iterator[Prometheus]:
    if not Path(PROMETHEUS).is_file():
        pytest.fail(f"{PROMETHEUS} missing (Debian package prometheus; make bootstrap)")
    targets = {
        service: [f"127.0.0.1:{port}" for port in cluster.config.replica_ports(service)]
        for service in SERVICES
    }
    work = Path(tempfile.mkdtemp(prefix="v5-test-prometheus-"))
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump(static_prometheus_config(targets)))
    log = work / "prometheus.log"
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_for(
            lambda: (
                process.poll() is None
                and httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
            ),
            30,
            "Prometheus ready",
        )
        expected = {(job, target) for job, hosts in targets.items() for target in hosts}

        def all_up() -> bool:
            active = server.api("targets", state="active")["activeTargets"]
            up = {
                (t["labels"]["job"], t["labels"]["instance"]) for t in active if t["health"] == "up"
            }
            return up == expected and len(active) == len(expected)

        _wait_for(all_up, 30, "every replica scraped and up")
        yield server
    except BaseException:
        print(log.read_text()[-3000:])
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    assert process.returncode is not None


def _by(results: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in results}


def _query_of(title: str, ref: int = 0) -> str:
    exprs = [expr for _, panel, expr in dashboard_queries() if panel == title]
    assert len(exprs) > ref, f"no query {ref} in the panel {title!r}"
    return evaluable(exprs[ref])


def test_prometheus_scrapes_every_replica_and_answers_the_dashboard(
    prometheus: Prometheus, api: httpx.Client
) -> None:
    request_rate = _query_of("Request rate by service")
    latency = {
        name: _query_of("Latency p50 / p95 / p99 by service", i)
        for i, name in enumerate(("p50", "p95", "p99"))
    }
    arms = _query_of("Arm choices")
    events = _query_of("Reward events by kind")
    feedback = _query_of("Weight feedback by kind")
    rounds: list[dict[str, Any]] = []

    def missing() -> list[str]:
        """What the dashboard does not show yet of the requests sent so far."""
        gaps = []
        rates = _by(prometheus.query(request_rate), "service")
        gaps += [f"request rate of {s}" for s in SERVICES if not rates.get(s, 0) > 0]
        for name, expr in latency.items():
            per_service = _by(prometheus.query(expr), "service")
            gaps += [
                f"{name} of {s}"
                for s in SERVICES
                if not (math.isfinite(per_service.get(s, math.nan)) and per_service[s] > 0)
            ]
        chosen = _by(prometheus.query(arms), "arm")
        gaps += [f"arm {r['arm']}" for r in rounds if not chosen.get(r["arm"], 0) > 0]
        if not _by(prometheus.query(events), "event").get("like", 0) > 0:
            gaps.append("like rewards")
        if not _by(prometheus.query(feedback), "feedback").get("like", 0) > 0:
            gaps.append("like feedback")
        return gaps

    # A series that a request creates shows no rate until it increases again (its first
    # sample is already 1): HTTP series are made per route and status on each replica as
    # requests come, so keep sending rounds (each from a new listener, so that identity
    # registers and logs in too) until every panel shows them; the bandit and reward
    # series exist from the start and move at once.
    gaps: list[str] = []
    for _ in range(6):
        rounds.append(listen_and_react(Listener(api)))
        deadline = time.monotonic() + 12  # over two scrape intervals
        while (gaps := missing()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not gaps:
            break
    assert not gaps, f"after {len(rounds)} rounds the dashboard still lacks {gaps}"

    # Every query of the dashboard parses and runs.
    for _, _, expr in dashboard_queries():
        prometheus.query(evaluable(expr))  # asserts status success

    means = _by(prometheus.query(_query_of("Mean reward by arm")), "arm")
    # Every round's reward is the same (a like at the same listen ratio); earlier tests'
    # rewards came before Prometheus started. Not exact: increase() extrapolates the sum
    # and the count a little differently when they started from different values.
    for served in rounds:
        assert means.get(served["arm"]) == pytest.approx(served["reward"], abs=0.15), means
    assert all(-1 <= mean <= 1 for mean in means.values() if math.isfinite(mean)), means
    assert set(_by(prometheus.query(arms), "arm")) <= set(ARMS)
