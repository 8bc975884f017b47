"""The listener simulator's live mode: a handful of simulated listeners talk to the cluster
through the gateway, every event they answer reaches the learning service, and the
in-process session mirror that the default (in-process) run relies on agrees with the
conversation service turn by turn."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from loadtests.simulation import runner
from loadtests.simulation.__main__ import main
from loadtests.simulation.episode import Record, run_listener
from loadtests.simulation.listeners import make_population
from loadtests.simulation.live import LiveProduct
from v5_shared.domain.weights import DEFAULT_WEIGHTS

pytestmark = pytest.mark.e2e

LISTENERS, INTERACTIONS, LIST_SIZE = 3, 8, 3


def test_simulated_listeners_drive_the_cluster(gateway_url: str) -> None:
    world = runner.world()
    population = make_population(
        world.catalog, world.arrays, count=LISTENERS, seed=7, interactions=INTERACTIONS
    )
    record = Record(LISTENERS, INTERACTIONS)
    with httpx.Client(base_url=gateway_url, timeout=15.0) as client:
        product = LiveProduct(client, world.catalog, world.matcher)
        for row, listener in enumerate(population):
            run_listener(
                world,
                listener,
                product,
                record,
                row,
                seed=7,
                interactions=INTERACTIONS,
                list_size=LIST_SIZE,
            )
        assert record.messages > 0
        assert (record.heard == LIST_SIZE).all()
        # The session mirror saw every turn exactly as the conversation service applied it.
        assert product.mirror_mismatches == []
        for row, listener in enumerate(population):
            user_id, headers = product.users[listener.listener_id]
            status = client.get(f"/api/v1/v5/session/{user_id}/status", headers=headers)
            assert status.status_code == 200, status.text
            body = status.json()
            events = int(record.heard[row].sum())
            # Every answer became a reward and a weight adjustment.
            assert body["rewards"]["count"] == events
            assert body["adjustment_count"] == events
            assert body["rewards"]["total"] == pytest.approx(record.reward[row].sum(), abs=1e-4)
            assert set(body["weights"]) == set(DEFAULT_WEIGHTS)
            assert body["weights"] != dict(DEFAULT_WEIGHTS)  # the feedback moved them


def test_the_live_command_writes_its_report(gateway_url: str, tmp_path: Path) -> None:
    code = main(
        [
            "--live", gateway_url, "--listeners", "2", "--interactions", "4",
            "--list-size", "2", "--seed", "3", "--out-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    parsed = json.loads((tmp_path / "simulation-live.json").read_text())
    assert parsed["mode"] == "live"
    assert set(parsed["policies"]) == {"adaptive"}
    row = parsed["policies"]["adaptive"]
    assert set(row) == {"like_rate", "mean_reward", "skip_rate", "regret"}
    assert 0 <= row["like_rate"] <= 1 and row["regret"] >= 0
    assert parsed["live"]["mirror_mismatches"] == 0
    assert (tmp_path / "simulation-live-curves.png").stat().st_size > 10_000
