"""Capacity-run arithmetic: step plans, window statistics, verdicts, the report's tables and
plots, on made-up samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.capacity import StepPlan, SustainedPlan
from loadtests.capacity_report import (
    Series,
    StepResult,
    WindowStats,
    cpu_per_request,
    degradation_table,
    endpoint_table,
    floor_comparison,
    plot_series,
    stats_by_endpoint,
    sustained_verdict,
    verdict,
    window_stats,
)
from loadtests.samples import Sample


def stats(
    p99: float, *, requests: int = 1000, failures: int = 0, seconds: float = 10.0
) -> WindowStats:
    return WindowStats(seconds, requests, failures, p99 / 4, p99 / 2, p99)


def test_the_step_plan_turns_offered_rates_into_think_times_and_drops_warm_ups() -> None:
    plan = StepPlan(users=1000, offered_rps=(100, 400), step_seconds=30, warmup_seconds=10)
    schedule = plan.schedule(start=500.0)
    assert [s.think_seconds for s in schedule.steps] == [10.0, 2.5]
    assert plan.measured_windows(start=500.0) == [(510.0, 530.0), (540.0, 560.0)]
    assert plan.seconds == 60


def test_a_warm_up_as_long_as_the_step_is_refused() -> None:
    with pytest.raises(ValueError):
        StepPlan(users=10, offered_rps=(1,), step_seconds=10, warmup_seconds=10)


def test_the_sustained_plan_measures_after_ramp_and_settling() -> None:
    plan = SustainedPlan(
        users=10_000, think_seconds=10, seconds=300, ramp_seconds=30, settle_seconds=20
    )
    assert plan.offered_rps == 1000
    assert plan.measured_window(start=100.0) == (150.0, 450.0)


def test_window_stats_count_only_the_requests_sent_inside_the_window() -> None:
    samples = [
        Sample(10.0 + i / 100, "/a", float(i % 100 + 1), ok=i % 50 != 0) for i in range(1000)
    ]
    samples.append(Sample(9.99, "/a", 10_000.0, ok=False))  # before the window
    samples.append(Sample(20.0, "/a", 10_000.0, ok=False))  # at its end: excluded
    result = window_stats(samples, 10.0, 20.0)
    assert result.requests == 1000
    assert result.failures == 20
    assert result.throughput_rps == pytest.approx(100.0)
    assert result.error_rate == pytest.approx(0.02)
    assert result.p50_ms == pytest.approx(50.5)
    assert result.p99_ms == pytest.approx(99.01)


def test_an_empty_window_has_no_requests_and_no_verdict() -> None:
    empty = window_stats([], 0.0, 10.0)
    assert empty.requests == 0 and empty.throughput_rps == 0.0 and empty.error_rate == 0.0
    assert verdict(empty, offered_rps=100) == "no data"
    assert sustained_verdict(empty) == "no data"


def test_stats_by_endpoint_leave_out_endpoints_without_requests_in_the_window() -> None:
    samples = [Sample(1.0, "/early", 5.0, True), Sample(15.0, "/b", 7.0, True)]
    assert list(stats_by_endpoint(samples, 10.0, 20.0)) == ["/b"]


@pytest.mark.parametrize(
    ("window", "offered", "expected"),
    [
        (stats(40.0), 100, "ok"),
        (stats(50.0), 100, "ok"),
        (stats(60.0), 100, "degraded"),
        (stats(20.0, failures=1), 100, "degraded"),  # an error is never ok
        (stats(20.0, failures=10), 100, "overloaded"),  # 1 % failed
        # 100 req/s served: 83 % of 120 offered is fine, 77 % of 130 means the users spent
        # their time waiting instead of thinking.
        (stats(20.0), 120, "ok"),
        (stats(20.0), 130, "overloaded"),
        (stats(1001.0), 100, "overloaded"),
    ],
)
def test_verdicts(window: WindowStats, offered: float, expected: str) -> None:
    assert verdict(window, offered) == expected


def test_the_sustained_target_is_p99_within_100_ms_and_no_failure() -> None:
    assert sustained_verdict(stats(100.0)) == "met"
    assert sustained_verdict(stats(101.0)) == "not met"
    assert sustained_verdict(stats(10.0, failures=1)) == "not met"


def step(offered: float, p99: float, served: float, failures: int = 0) -> StepResult:
    window = WindowStats(10.0, int(served * 10), failures, p99 / 4, p99 / 2, p99)
    return StepResult(offered, 1000, 1000 / offered, window, cpu={"generator": 12.0})


API = Series("API", (step(100, 20, 100), step(200, 45, 199), step(400, 900, 300, failures=50)))
FLOOR = Series("floor", (step(100, 2, 100), step(200, 3, 200), step(400, 30, 400)))


def test_the_degradation_table_has_a_row_per_step_with_its_verdict() -> None:
    table = degradation_table(API, cores=2)
    rows = table.splitlines()[2:]
    assert len(rows) == 3
    assert rows[0].startswith("| 100 | 1000 | 10 | 100.0 | 5 | 10 | 20 | 0.00% | 12 / - /")
    assert rows[0].endswith("| ok |")
    assert rows[2].endswith("| overloaded |") and "1.67%" in rows[2]


def test_the_best_ok_step_is_the_highest_ok_one_below_the_first_overload() -> None:
    blip = Series("x", (step(100, 20, 100), step(200, 80, 200), step(400, 20, 400)))
    overload = Series("y", (step(100, 20, 100), step(200, 2000, 200), step(400, 20, 400)))
    assert [blip.best_ok(), overload.best_ok(), API.best_ok()] == [
        blip.steps[2], overload.steps[0], API.steps[1],
    ]  # fmt: skip
    assert Series("none", (step(100, 80, 100),)).best_ok() is None


def test_a_step_that_had_the_whole_machine_busy_is_marked() -> None:
    window = WindowStats(10.0, 1000, 0, 5.0, 10.0, 20.0)
    busy = StepResult(100, 1000, 10, window, cpu={"machine": 185.0})
    calm = StepResult(100, 1000, 10, window, cpu={"machine": 120.0})
    rows = degradation_table(Series("s", (busy, calm)), cores=2).splitlines()[2:]
    assert rows[0].endswith("| ok (machine busy) |")
    assert rows[1].endswith("| ok |")


def test_the_floor_comparison_gives_the_throughput_ratio() -> None:
    text = floor_comparison(API, FLOOR)
    assert "**0.75** (300 / 400 req/s)" in text
    # Served within the p99 target: 199 req/s of the API against 400 of the floor.
    assert "**0.50**" in text
    # The floor was still ok at its highest step: its limit is further up.
    assert "upper bounds" in text
    saturated_floor = Series("floor", (*FLOOR.steps, step(800, 400, 600)))
    assert "upper bounds" not in floor_comparison(API, saturated_floor)


def test_the_endpoint_table_lists_every_endpoint() -> None:
    table = endpoint_table({"/a": stats(30.0), "/b": stats(70.0, failures=3)})
    assert "| /a | 1000 | 0 | 100.0 | 7.5 | 15 | 30 |" in table
    assert "| /b | 1000 | 3 |" in table


def test_the_plots_are_written_as_png(tmp_path: Path) -> None:
    paths = plot_series([API, FLOOR], tmp_path)
    assert [p.name for p in paths] == [
        "capacity-throughput.png", "capacity-latency.png", "capacity-errors.png",
    ]  # fmt: skip
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_per_request_divides_each_part_by_the_served_rate() -> None:
    window = WindowStats(10.0, 2000, 0, 5.0, 10.0, 20.0)  # 200 req/s
    at_knee = StepResult(200, 1000, 5, window, cpu={"services": 80.0, "machine": 190.0})
    idle = StepResult(50, 1000, 20, WindowStats(10.0, 0, 0, 0, 0, 0), cpu={"machine": 5.0})
    rows = cpu_per_request(Series("s", (at_knee, idle))).splitlines()
    assert rows[0] == "| offered req/s | req/s | services | whole machine |"
    # 80 % of a core over 200 req/s is 4 ms a request; 190 % is 9.5 ms.
    assert rows[2] == "| 200 | 200.0 | 4.00 | 9.50 |"
    assert len(rows) == 3  # a step that served nothing has no per-request cost
