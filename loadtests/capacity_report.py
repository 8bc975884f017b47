"""The numbers of a capacity run and how they are judged and shown: statistics of a time
window of requests, the verdict of a step, the markdown tables and the plots of
reports/capacity.md. No I/O beyond writing the plots, so it can be tested on made-up samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadtests.samples import Sample

# A step is "ok" when its p99 is within this and nothing failed.
OK_P99_MS = 50.0
# It is "overloaded" when it failed this share of requests or more, served less than this
# share of the load offered (the users spent their time waiting instead of thinking), or its
# p99 went past this.
OVERLOADED_ERROR_RATE = 0.01
OVERLOADED_SERVED_SHARE = 0.8
OVERLOADED_P99_MS = 1000.0
# The sustained run's target.
SUSTAINED_P99_MS = 100.0


@dataclass(frozen=True, slots=True)
class WindowStats:
    seconds: float
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def window_stats(samples: Iterable[Sample], begin: float, end: float) -> WindowStats:
    """The requests sent in [begin, end): how many, how many failed, and the percentiles of
    their response times (failures included: a timeout is a slow answer too)."""
    times = []
    failures = 0
    for sample in samples:
        if begin <= sample.started < end:
            times.append(sample.response_ms)
            failures += not sample.ok
    if not times:
        return WindowStats(end - begin, 0, 0, 0.0, 0.0, 0.0)
    p50, p95, p99 = np.percentile(np.asarray(times), [50, 95, 99])
    return WindowStats(
        end - begin, len(times), failures, round(float(p50), 2), round(float(p95), 2),
        round(float(p99), 2),
    )  # fmt: skip


def stats_by_endpoint(
    samples: Iterable[Sample], begin: float, end: float
) -> dict[str, WindowStats]:
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    stats = {name: window_stats(group, begin, end) for name, group in sorted(by_name.items())}
    return {name: one for name, one in stats.items() if one.requests}


def verdict(stats: WindowStats, offered_rps: float) -> str:
    if stats.requests == 0:
        return "no data"
    served_share = stats.throughput_rps / offered_rps if offered_rps > 0 else 1.0
    if (
        stats.error_rate >= OVERLOADED_ERROR_RATE
        or served_share < OVERLOADED_SERVED_SHARE
        or stats.p99_ms > OVERLOADED_P99_MS
    ):
        return "overloaded"
    if stats.failures == 0 and stats.p99_ms <= OK_P99_MS:
        return "ok"
    return "degraded"


@dataclass(frozen=True, slots=True)
class StepResult:
    offered_rps: float
    users: int
    think_seconds: float
    stats: WindowStats
    # Mean CPU over the measured window, in % of one core, by group of processes.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return verdict(self.stats, self.offered_rps)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "throughput_rps": round(self.stats.throughput_rps, 1),
            "error_rate": self.stats.error_rate,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Series:
    """One target (the API's listeners, or the hello floor) through every step."""

    label: str
    steps: tuple[StepResult, ...]

    def best_throughput_rps(self) -> float:
        return max((s.stats.throughput_rps for s in self.steps), default=0.0)

    def best_ok(self) -> StepResult | None:
        """The highest offered load that was "ok" with no overloaded step at or below it: a
        "degraded" step in between (a moment of noise on a shared machine) does not end the
        search, an overload does."""
        best = None
        for step in self.steps:
            if step.verdict == "overloaded":
                break
            if step.verdict == "ok":
                best = step
        return best

    def saturated(self) -> bool:
        """Whether the steps went past the knee: the last one was not "ok"."""
        return bool(self.steps) and self.steps[-1].verdict != "ok"


# A step during which the whole machine was at least this busy (share of all its cores) is
# marked: the load generator and the cluster competed for CPU, maybe with other work too.
MACHINE_BUSY_SHARE = 0.9


# CPU groups shown, in this order: the load generator, the cluster's parts, the machine.
CPU_GROUPS = ("generator", "services", "recommendation", "gateway", "datastores", "machine")
CPU_LABELS = {
    "generator": "locust",
    "services": "services",
    "recommendation": "of which recommendation",
    "gateway": "nginx",
    "datastores": "Redis+PG",
    "machine": "whole machine",
}


def machine_was_busy(step: StepResult, cores: int) -> bool:
    return step.cpu.get("machine", 0.0) >= MACHINE_BUSY_SHARE * 100 * cores


def degradation_table(series: Series, cores: int) -> str:
    cpu_header = " / ".join(CPU_LABELS[group] for group in CPU_GROUPS)
    rows = [
        "| offered req/s | users | think s | req/s | p50 ms | p95 ms | p99 ms | errors "
        f"| CPU %: {cpu_header} | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in series.steps:
        s = step.stats
        cpu = " / ".join(
            f"{step.cpu[group]:.0f}" if group in step.cpu else "-" for group in CPU_GROUPS
        )
        mark = " (machine busy)" if machine_was_busy(step, cores) else ""
        rows.append(
            f"| {step.offered_rps:g} | {step.users} | {step.think_seconds:.3g} "
            f"| {s.throughput_rps:.1f} | {s.p50_ms:g} | {s.p95_ms:g} | {s.p99_ms:g} "
            f"| {s.error_rate:.2%} | {cpu} | {step.verdict}{mark} |"
        )
    return "\n".join(rows) + "\n"


def floor_comparison(api: Series, floor: Series) -> str:
    """How the API compares with the framework's floor, in sentences for the report."""
    lines = []
    for series in (api, floor):
        ok = series.best_ok()
        held = (
            f"held p99 <= {OK_P99_MS:g} ms with no errors up to {ok.offered_rps:g} req/s "
            f"offered ({ok.stats.throughput_rps:.0f} req/s served)"
            if ok
            else f"had no step within p99 <= {OK_P99_MS:g} ms and no errors"
        )
        lines.append(
            f"- {series.label}: {held}; at most {series.best_throughput_rps():.0f} req/s served."
        )
    floor_best = floor.best_throughput_rps()
    if floor_best > 0:
        ratio = api.best_throughput_rps() / floor_best
        lines.append(
            f"- Ratio of the API's best throughput to the floor's: **{ratio:.2f}** "
            f"({api.best_throughput_rps():.0f} / {floor_best:.0f} req/s)."
        )
    api_ok, floor_ok = api.best_ok(), floor.best_ok()
    if api_ok and floor_ok:
        lines.append(
            f"- Ratio of the loads served within p99 <= {OK_P99_MS:g} ms: "
            f"**{api_ok.stats.throughput_rps / floor_ok.stats.throughput_rps:.2f}**."
        )
    if not floor.saturated():
        lines.append(
            "- The floor was still ok at the highest step, so its limit lies further up: "
            "the ratios are upper bounds. Offer more (`--offered`) to find it."
        )
    return "\n".join(lines) + "\n"


def cpu_per_request(series: Series) -> str:
    """CPU milliseconds per served request, by part, at each step: what the knee costs and
    who spends it. Where these sum to the machine's cores at the knee, CPU is what stops the
    throughput; a part whose share grows faster than the load is where it goes."""
    groups = [g for g in CPU_GROUPS if any(g in step.cpu for step in series.steps)]
    rows = [
        "| offered req/s | req/s | " + " | ".join(CPU_LABELS[g] for g in groups) + " |",
        "|---|---|" + "---|" * len(groups),
    ]
    for step in series.steps:
        served = step.stats.throughput_rps
        if served <= 0:
            continue
        cells = [
            f"{step.cpu[g] * 10 / served:.2f}" if g in step.cpu else "-"  # % of a core -> ms
            for g in groups
        ]
        rows.append(f"| {step.offered_rps:g} | {served:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def endpoint_table(by_endpoint: dict[str, WindowStats]) -> str:
    rows = [
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in by_endpoint.items():
        rows.append(
            f"| {name} | {s.requests} | {s.failures} | {s.throughput_rps:.1f} | {s.p50_ms:g} "
            f"| {s.p95_ms:g} | {s.p99_ms:g} |"
        )
    return "\n".join(rows) + "\n"


def sustained_verdict(stats: WindowStats) -> str:
    if stats.requests == 0:
        return "no data"
    met = stats.failures == 0 and stats.p99_ms <= SUSTAINED_P99_MS
    return "met" if met else "not met"


def plot_series(series: Sequence[Series], out_dir: Path, stem: str = "capacity") -> list[Path]:
    """Throughput, latency percentiles and error rate against offered load, one PNG each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = ("-", "--", ":")
    paths = []

    def finish(fig: Any, ax: Any, name: str, ylabel: str) -> None:
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        path = out_dir / f"{stem}-{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    offered_all = [s.offered_rps for one in series for s in one.steps] or [1.0]
    reach = [min(offered_all), max(offered_all)]
    ax.plot(reach, reach, color="grey", linewidth=0.8, label="served = offered")
    for one, style in zip(series, styles, strict=False):
        offered = [s.offered_rps for s in one.steps]
        ax.plot(offered, [s.stats.throughput_rps for s in one.steps], style, marker="o",
                label=one.label)  # fmt: skip
    ax.set_title("Throughput")
    finish(fig, ax, "throughput", "served (requests/s)")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for one, style in zip(series, styles, strict=False):
        offered = [s.offered_rps for s in one.steps]
        for key, marker in (("p50_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^")):
            values = [max(getattr(s.stats, key), 0.01) for s in one.steps]
            ax.plot(offered, values, style, marker=marker, label=f"{one.label} {key[:3]}")
    ax.axhline(OK_P99_MS, color="red", linewidth=0.8, label=f"{OK_P99_MS:g} ms")
    ax.set_yscale("log")
    ax.set_title("Latency percentiles")
    finish(fig, ax, "latency", "response time (ms, log scale)")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for one, style in zip(series, styles, strict=False):
        offered = [s.offered_rps for s in one.steps]
        ax.plot(offered, [100 * s.stats.error_rate for s in one.steps], style, marker="o",
                label=one.label)  # fmt: skip
    ax.set_title("Error rate")
    finish(fig, ax, "errors", "failed requests (%)")
    return paths
