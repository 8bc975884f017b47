"""What the simulated listeners are made of: their messages, how accounts are shared out
between locust processes, the request record, and how a smoke run reads locust's totals."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loadtests.accounts import AccountPool, account_index
from loadtests.messages import ACTIVITIES, GENRES, MOODS, compose_message
from loadtests.samples import Sample, SampleRecorder, read_samples
from loadtests.smoke import count_requests
from loadtests.throwaway import locust_command

ARTISTS = ["Velvet Harbor", "Mara Quill", "The Paper Moons"]


def test_messages_are_valid_varied_and_name_what_listeners_talk_about() -> None:
    rng = random.Random(11)
    messages = [compose_message(rng, ARTISTS) for _ in range(3000)]
    assert all(0 < len(m.strip()) <= 1000 and "{" not in m for m in messages)
    assert len(set(messages)) > 1000
    lowered = [m.lower() for m in messages]

    def share(words: list[str] | tuple[str, ...]) -> float:
        return sum(any(w.lower() in m for w in words) for m in lowered) / len(lowered)

    assert share(GENRES) > 0.4
    assert share(MOODS) > 0.2
    assert share(ACTIVITIES) > 0.1
    assert 0.1 < share(ARTISTS) < 0.35


def test_without_artists_no_message_has_a_gap_where_an_artist_would_be() -> None:
    rng = random.Random(5)
    messages = [compose_message(rng) for _ in range(2000)]
    assert not any("  " in m or m != m.strip() or m.startswith(",") for m in messages)


def test_processes_take_disjoint_accounts_that_together_are_the_first_ones() -> None:
    processes, users_each = 3, 400
    taken = [account_index(worker, processes, n) for worker in range(processes)
             for n in range(users_each)]  # fmt: skip
    assert sorted(taken) == list(range(processes * users_each))


def test_the_pool_wraps_round_when_there_are_more_users_than_accounts(tmp_path: Path) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_text(
        '{"user_id": "a", "access_token": "t1"}\n{"user_id": "b", "access_token": "t2"}\n'
    )
    pool = AccountPool(str(path), processes=1)
    assert [pool.take(worker=0)["user_id"] for _ in range(3)] == ["a", "b", "a"]


def test_a_missing_accounts_file_stops_the_run_with_a_reason() -> None:
    with pytest.raises(SystemExit, match="provision-listeners"):
        AccountPool(None).take(worker=0)


def test_recorded_requests_read_back_as_samples(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path)
    recorder.record(name="/a", response_time=12.5, exception=None, start_time=100.25)
    recorder.record(name="/b", response_time=3.0, exception=RuntimeError("x"), start_time=101.0)
    recorder.close()
    assert list(read_samples(tmp_path)) == [
        Sample(100.25, "/a", 12.5, ok=True), Sample(101.0, "/b", 3.0, ok=False),
    ]  # fmt: skip


def test_the_smoke_run_counts_every_request_and_failure(tmp_path: Path) -> None:
    recorder = SampleRecorder(tmp_path)
    for n in range(10):
        failed = RuntimeError("HTTP 502") if n in (3, 7) else None
        recorder.record(name="/a", response_time=5.0, exception=failed, start_time=float(n))
    recorder.close()
    assert count_requests(tmp_path) == (10, 2)


def test_locust_runs_headless_only_when_bounded() -> None:
    bounded = locust_command(Path("f.py"), "http://h", users=5, spawn_rate=5, run_seconds=30)
    assert "--headless" in bounded and bounded[bounded.index("--run-time") + 1] == "30s"
    assert "--processes" not in bounded
    ui = locust_command(Path("f.py"), "http://h", users=5, spawn_rate=5, processes=2)
    assert "--headless" not in ui and ui[ui.index("--processes") + 1] == "2"
