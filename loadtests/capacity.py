"""`make capacity`: where throughput and latency give way, and whether the cluster holds the
sustained target, on a throwaway cluster.

Step run. A fixed number of simulated listeners (default 1,000) offers a load that rises in
steps by shortening their mean think time: offered requests/s = users / mean think. A machine
with 2 cores could not also run the tens of thousands of users that the same loads would
need at a person's 10 s pace, so the pace changes instead of the head count. The first
seconds of each step (the warm-up, while queues and pools settle at the new pace) are left
out of its statistics. Then the same steps again with users asking only for GET /hello
(a constant from a conversation replica, through the same gateway): the framework's floor,
to which the API's throughput is compared.

Sustained run. 10,000 listeners at a mean think of 10 s (about 1,000 requests/s) for 5
minutes after their ramp-up; target p99 <= 100 ms and no failures.

Both write reports/capacity.md (tables, the comparison with the floor, the plots
capacity-{throughput,latency,errors}.png) and reports/capacity.json. Every request's time
comes from locust's own record (loadtests/samples.py); the CPU used by the load generator
and by each part of the cluster is sampled alongside, because on one small machine the
generator competes with the cluster for the same cores and the tables must show when it,
not the cluster, was the limit.

    make capacity                                   # steps, then sustained
    make capacity CAPACITY_ARGS="--sustained-only"  # or --steps-only, and any option below
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from loadtests.capacity_report import (
    CPU_GROUPS,
    CPU_LABELS,
    MACHINE_BUSY_SHARE,
    OK_P99_MS,
    SUSTAINED_P99_MS,
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
    window_stats,
)
from loadtests.samples import Sample, read_samples
from loadtests.think import ThinkSchedule, ThinkStep
from loadtests.throwaway import (
    HELLO,
    LISTENERS,
    SPAWN_RATE,
    locust_command,
    locust_environment,
    provision_listeners,
    raise_open_file_limit,
    run_locust,
    throwaway_cluster,
)
from v5_cluster.cluster import LocalCluster
from v5_cluster.config import REPO_ROOT

REPORTS = REPO_ROOT / "reports"
DEFAULT_OFFERED_RPS = (100, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200)
# Time locust needs before its users run: imports, forking its processes, workers
# connecting. The schedule starts after it, so no step is cut short.
LOCUST_START_SECONDS = 10.0
# How long, beyond its planned length, a locust run may take before it is stopped.
LOCUST_GRACE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class StepPlan:
    users: int
    offered_rps: tuple[float, ...]
    step_seconds: float
    warmup_seconds: float

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_seconds < self.step_seconds:
            raise ValueError("the warm-up must be shorter than a step")

    def schedule(self, start: float) -> ThinkSchedule:
        return ThinkSchedule(
            start=start,
            steps=tuple(
                ThinkStep(self.users / rate, self.step_seconds) for rate in self.offered_rps
            ),
        )

    def measured_windows(self, start: float) -> list[tuple[float, float]]:
        """[begin, end) of each step's measured part: the step without its warm-up."""
        return [
            (
                start + i * self.step_seconds + self.warmup_seconds,
                start + (i + 1) * self.step_seconds,
            )
            for i in range(len(self.offered_rps))
        ]

    @property
    def seconds(self) -> float:
        return self.step_seconds * len(self.offered_rps)


@dataclass(frozen=True, slots=True)
class SustainedPlan:
    users: int
    think_seconds: float
    seconds: float
    ramp_seconds: float
    settle_seconds: float

    @property
    def offered_rps(self) -> float:
        return self.users / self.think_seconds

    def measured_window(self, start: float) -> tuple[float, float]:
        begin = start + self.ramp_seconds + self.settle_seconds
        return begin, begin + self.seconds


SERVICE_NAMES = ("identity", "conversation", "recommendation", "learning")


def _process_groups(process: psutil.Process) -> tuple[str, ...]:
    """The CPU groups a cluster process counts toward: a service replica toward "services"
    and its own service."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return ()
    if "nginx" in command:
        return ("gateway",)
    if "postgres" in command or "redis" in command:
        return ("datastores",)
    for service in SERVICE_NAMES:
        if f"{service}_service" in command:
            return ("services", service)
    return ()


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class CpuSampler:
    """CPU used every second by the load generator's processes, by the cluster's (by part and
    by service) and by the whole machine (other work on it included), as % of one core."""

    def __init__(self, cluster_root: int, interval: float = 1.0) -> None:
        self.cluster_root = cluster_root
        self.generator_root: int | None = None
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    @staticmethod
    def _tree(root: int) -> list[psutil.Process]:
        try:
            top = psutil.Process(root)
            return [top, *top.children(recursive=True)]
        except psutil.Error:
            return []

    def _read(self) -> dict[int, tuple[tuple[str, ...], float]]:
        """CPU seconds so far of every process watched, with its groups."""
        watched = [(p, _process_groups(p)) for p in self._tree(self.cluster_root)]
        if self.generator_root is not None:
            watched += [(p, ("generator",)) for p in self._tree(self.generator_root)]
        seconds: dict[int, tuple[tuple[str, ...], float]] = {}
        for process, groups in watched:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds[process.pid] = (groups, times.user + times.system)
        return seconds

    def _run(self) -> None:
        last, last_machine, last_at = self._read(), _machine_busy_seconds(), time.time()
        while not self._stop.wait(self.interval):
            current, machine, at = self._read(), _machine_busy_seconds(), time.time()
            elapsed = at - last_at
            used = {"machine": max(0.0, machine - last_machine)}
            for pid, (groups, seconds) in current.items():
                # A process first seen now started within the interval: all its time is new.
                spent = max(0.0, seconds - last.get(pid, (groups, 0.0))[1])
                for group in groups:
                    used[group] = used.get(group, 0.0) + spent
            self.samples.append((at, {g: 100 * s / elapsed for g, s in used.items()}))
            last, last_machine, last_at = current, machine, at

    def mean_over(self, begin: float, end: float) -> dict[str, float]:
        inside = [usage for at, usage in self.samples if begin < at <= end]
        if not inside:
            return {}
        groups = {g for usage in inside for g in usage}
        return {g: round(sum(u.get(g, 0.0) for u in inside) / len(inside), 1) for g in groups}

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _supervisor_pid(cluster: LocalCluster) -> int:
    return int(cluster.config.supervisor_pidfile.read_text().strip())


@contextmanager
def _samples_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="v5-capacity-samples-") as folder:
        yield Path(folder)


def _run_timed(
    cluster: LocalCluster,
    sampler: CpuSampler,
    locustfile: Path,
    *,
    users: int,
    spawn_rate: float,
    planned_seconds: float,
    schedule: Callable[[float], ThinkSchedule],
    accounts: Path | None,
    processes: int,
) -> tuple[float, list[Sample]]:
    """One locust run whose schedule starts LOCUST_START_SECONDS after launch; returns that
    start and every request it made."""
    with _samples_folder() as samples_dir:
        start = time.time() + LOCUST_START_SECONDS
        env = locust_environment(
            accounts,
            schedule_json=schedule(start).to_json(),
            samples_dir=samples_dir,
            processes=processes,
        )
        command = locust_command(
            locustfile,
            cluster.config.gateway_url,
            users=users,
            spawn_rate=spawn_rate,
            run_seconds=LOCUST_START_SECONDS + planned_seconds + 2,
            processes=processes,
        )

        def watch(pid: int) -> None:
            sampler.generator_root = pid

        # Its exit code says whether any request failed, which overloaded steps are expected
        # to do; the samples tell more.
        run_locust(
            command,
            env,
            timeout=LOCUST_START_SECONDS + planned_seconds + LOCUST_GRACE_SECONDS,
            on_started=watch,
        )
        sampler.generator_root = None
        samples = list(read_samples(samples_dir))
    if not samples:
        raise SystemExit(f"locust made no requests with {locustfile.name}: see its output above")
    return start, samples


def run_steps(
    cluster: LocalCluster,
    sampler: CpuSampler,
    plan: StepPlan,
    locustfile: Path,
    label: str,
    *,
    accounts: Path | None,
    processes: int,
) -> Series:
    print(f"== step run: {label}, {plan.users} users, offered {plan.offered_rps} req/s", flush=True)
    start, samples = _run_timed(
        cluster,
        sampler,
        locustfile,
        users=plan.users,
        # Started during locust's start-up time and the first step's warm-up.
        spawn_rate=SPAWN_RATE,
        planned_seconds=plan.seconds,
        schedule=plan.schedule,
        accounts=accounts,
        processes=processes,
    )
    steps = []
    for rate, (begin, end) in zip(plan.offered_rps, plan.measured_windows(start), strict=True):
        steps.append(
            StepResult(
                offered_rps=rate,
                users=plan.users,
                think_seconds=round(plan.users / rate, 4),
                stats=window_stats(samples, begin, end),
                cpu=sampler.mean_over(begin, end),
            )
        )
    series = Series(label, tuple(steps))
    print(degradation_table(series, os.cpu_count() or 1), flush=True)
    return series


@dataclass(frozen=True, slots=True)
class SustainedResult:
    plan: SustainedPlan
    stats: WindowStats
    by_endpoint: dict[str, WindowStats]
    cpu: dict[str, float]

    @property
    def verdict(self) -> str:
        return sustained_verdict(self.stats)


def run_sustained(
    cluster: LocalCluster,
    sampler: CpuSampler,
    plan: SustainedPlan,
    *,
    accounts: Path,
    processes: int,
) -> SustainedResult:
    print(
        f"== sustained run: {plan.users} listeners, think {plan.think_seconds:g} s, "
        f"{plan.seconds:g} s measured after {plan.ramp_seconds + plan.settle_seconds:g} s",
        flush=True,
    )
    start, samples = _run_timed(
        cluster,
        sampler,
        LISTENERS,
        users=plan.users,
        spawn_rate=max(1.0, plan.users / plan.ramp_seconds),
        planned_seconds=plan.ramp_seconds + plan.settle_seconds + plan.seconds,
        schedule=lambda _start: ThinkSchedule.constant(plan.think_seconds),
        accounts=accounts,
        processes=processes,
    )
    begin, end = plan.measured_window(start)
    result = SustainedResult(
        plan=plan,
        stats=window_stats(samples, begin, end),
        by_endpoint=stats_by_endpoint(samples, begin, end),
        cpu=sampler.mean_over(begin, end),
    )
    print(sustained_section(result), flush=True)
    return result


def sustained_section(result: SustainedResult) -> str:
    plan, s = result.plan, result.stats
    cores = os.cpu_count() or 1
    busy = (
        f" The whole machine was at least {MACHINE_BUSY_SHARE:.0%} busy: the latencies are "
        "partly the machine's."
        if result.cpu.get("machine", 0.0) >= MACHINE_BUSY_SHARE * 100 * cores
        else ""
    )
    cpu = ", ".join(
        f"{CPU_LABELS[group]} {result.cpu[group]:.0f}"
        for group in CPU_GROUPS
        if group in result.cpu
    )
    return (
        f"{plan.users} listeners, mean think {plan.think_seconds:g} s (offered "
        f"{plan.offered_rps:.0f} req/s), measured for {plan.seconds:g} s after a "
        f"{plan.ramp_seconds:g} s ramp-up and {plan.settle_seconds:g} s to settle.\n\n"
        "| users | req/s | p50 ms | p95 ms | p99 ms | requests | failures | target | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"| {plan.users} | {s.throughput_rps:.1f} | {s.p50_ms:g} | {s.p95_ms:g} | {s.p99_ms:g} "
        f"| {s.requests} | {s.failures} | p99 <= {SUSTAINED_P99_MS:g} ms, no failures "
        f"| **{result.verdict}** |\n\n"
        f"By endpoint:\n\n{endpoint_table(result.by_endpoint)}\n"
        f"CPU over the window, % of one core: {cpu}.{busy}\n"
    )


def write_report(
    out_dir: Path,
    steps: tuple[Series, Series] | None,
    sustained: SustainedResult | None,
    settings: dict[str, Any],
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    cores = os.cpu_count() or 1
    parts = [
        "# Capacity\n",
        f"`make capacity` on {now}: {cores} cores ({_cpu_model()}), load generator on the "
        f"same machine with {settings['processes']} locust process(es); a throwaway cluster "
        f"with {settings['replicas']} replica(s) of each service"
        + (
            f" on core(s) {settings['service_cpus']} only (everything else on the others)"
            if settings.get("service_cpus")
            else ""
        )
        + ", no access logs. CPU columns are % of one core over "
        f'each measured window (the machine has {100 * cores} %); "whole machine" includes '
        'any other work running at the same time, and a step marked "machine busy" had '
        f"at least {MACHINE_BUSY_SHARE:.0%} of it in use, so its latencies are partly the "
        "machine's.\n",
    ]
    data: dict[str, Any] = {"at": now, "settings": settings}
    if steps is not None:
        api, floor = steps
        plots = plot_series([api, floor], out_dir)
        parts += [
            "## Step run\n",
            f"{settings['step_users']} users, each step {settings['step_seconds']:g} s of "
            f"which the first {settings['warmup_seconds']:g} s are dropped. Verdict: ok = "
            f"p99 <= {OK_P99_MS:g} ms and no errors; overloaded = 1 % errors or more, less "
            "than 80 % of the offered load served, or p99 over 1 s; degraded in between.\n",
            f"### {api.label}\n",
            degradation_table(api, cores),
            f"### {floor.label}\n",
            degradation_table(floor, cores),
            "### The API against the floor\n",
            floor_comparison(api, floor),
            "### CPU per request\n",
            "Milliseconds of CPU per served request, by part (the machine has "
            f"{1000 * cores / max(api.best_throughput_rps(), 1):.1f} ms of CPU for each "
            "request at the API's best throughput):\n",
            f"#### {api.label}\n",
            cpu_per_request(api),
            f"#### {floor.label}\n",
            cpu_per_request(floor),
            *[f"![{p.stem}]({p.name})\n" for p in plots],
        ]
        data["steps"] = {
            series.label: [step.as_dict() for step in series.steps] for series in (api, floor)
        }
    if sustained is not None:
        parts += ["## Sustained run\n", sustained_section(sustained)]
        data["sustained"] = {
            "users": sustained.plan.users,
            "think_seconds": sustained.plan.think_seconds,
            "seconds": sustained.plan.seconds,
            "stats": {**asdict(sustained.stats), "throughput_rps": sustained.stats.throughput_rps},
            "by_endpoint": {n: asdict(s) for n, s in sustained.by_endpoint.items()},
            "cpu": sustained.cpu,
            "verdict": sustained.verdict,
        }
    path = out_dir / "capacity.md"
    path.write_text("\n".join(parts))
    (out_dir / "capacity.json").write_text(json.dumps(data, indent=2) + "\n")
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


def _rates(text: str) -> tuple[float, ...]:
    rates = tuple(float(part) for part in text.split(",") if part.strip())
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("a comma-separated list of positive request rates")
    return rates


def _cpu_list(text: str) -> set[int]:
    """taskset's list form: "1", "0,2", "2-3"."""
    cores: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cores.update(range(int(low), int(high or low) + 1))
    return cores


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out-dir", type=Path, default=REPORTS, help="where the report goes (default reports/)"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--steps-only", action="store_true", help="only the step runs")
    only.add_argument("--sustained-only", action="store_true", help="only the sustained run")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="locust processes generating the load (default: one per core)",
    )
    parser.add_argument(
        "--replicas", type=int, default=2, help="replicas of each service (default 2)"
    )
    parser.add_argument(
        "--service-cpus",
        help="run every service replica on these cores only (taskset list, e.g. 1), and the "
        "gateway, data stores and load generator on the others: what one service core serves",
    )
    steps = parser.add_argument_group("step run")
    steps.add_argument(
        "--step-users",
        type=int,
        default=int(_env_float("V5_STEP_USERS", 1000)),
        help="users in every step (default 1000, V5_STEP_USERS)",
    )
    steps.add_argument(
        "--offered",
        type=_rates,
        default=DEFAULT_OFFERED_RPS,
        help="offered requests/s of the steps, comma-separated",
    )
    steps.add_argument(
        "--step-seconds",
        type=float,
        default=_env_float("V5_STEP_SECONDS", 30),
        help="length of a step (default 30, V5_STEP_SECONDS)",
    )
    steps.add_argument(
        "--warmup-seconds",
        type=float,
        default=_env_float("V5_WARMUP_SECONDS", 10),
        help="first seconds of each step left out (default 10, V5_WARMUP_SECONDS)",
    )
    sustained = parser.add_argument_group("sustained run")
    sustained.add_argument(
        "--sustained-users",
        type=int,
        default=int(_env_float("V5_SUSTAINED_USERS", 10_000)),
        help="listeners (default 10000, V5_SUSTAINED_USERS)",
    )
    sustained.add_argument(
        "--think-seconds",
        type=float,
        default=_env_float("V5_THINK_SECONDS", 10),
        help="mean think time (default 10, V5_THINK_SECONDS)",
    )
    sustained.add_argument(
        "--sustained-seconds",
        type=float,
        default=_env_float("V5_SUSTAINED_SECONDS", 300),
        help="measured length (default 300, V5_SUSTAINED_SECONDS)",
    )
    sustained.add_argument(
        "--ramp-seconds",
        type=float,
        default=_env_float("V5_RAMP_SECONDS", 30),
        help="time to start every listener (default 30, V5_RAMP_SECONDS)",
    )
    sustained.add_argument(
        "--settle-seconds",
        type=float,
        default=_env_float("V5_SETTLE_SECONDS", 20),
        help="after the ramp-up, left out too (default 20, V5_SETTLE_SECONDS)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    step_plan = (
        None
        if args.sustained_only
        else StepPlan(
            users=args.step_users,
            offered_rps=tuple(args.offered),
            step_seconds=args.step_seconds,
            warmup_seconds=args.warmup_seconds,
        )
    )
    sustained_plan = (
        None
        if args.steps_only
        else SustainedPlan(
            users=args.sustained_users,
            think_seconds=args.think_seconds,
            seconds=args.sustained_seconds,
            ramp_seconds=args.ramp_seconds,
            settle_seconds=args.settle_seconds,
        )
    )
    files = raise_open_file_limit()
    print(f"open files allowed: {files}", flush=True)
    accounts_needed = max(
        step_plan.users if step_plan else 0, sustained_plan.users if sustained_plan else 0
    )
    if args.service_cpus:
        # This process's children (supervisord, hence nginx, Redis and PostgreSQL, and
        # locust) inherit its cores; the replicas are started on theirs (taskset).
        service_cpus = _cpu_list(args.service_cpus)
        others = set(range(os.cpu_count() or 1)) - service_cpus
        if not others:
            raise SystemExit("--service-cpus must leave a core for everything else")
        os.sched_setaffinity(0, others)
    settings = {
        "replicas": args.replicas,
        "service_cpus": args.service_cpus,
        "processes": args.processes,
        "step_users": args.step_users,
        "offered_rps": list(args.offered),
        "step_seconds": args.step_seconds,
        "warmup_seconds": args.warmup_seconds,
        "sustained_users": args.sustained_users,
        "think_seconds": args.think_seconds,
        "sustained_seconds": args.sustained_seconds,
    }
    steps: tuple[Series, Series] | None = None
    sustained = None
    with tempfile.TemporaryDirectory(prefix="v5-capacity-") as work:
        accounts = Path(work) / "listeners.jsonl"
        with throwaway_cluster(
            "capacity", replicas=args.replicas, service_cpus=args.service_cpus
        ) as cluster:
            provision_listeners(cluster, accounts_needed, accounts)
            with CpuSampler(_supervisor_pid(cluster)) as sampler:
                if step_plan is not None:
                    api = run_steps(
                        cluster,
                        sampler,
                        step_plan,
                        LISTENERS,
                        "API (simulated listeners)",
                        accounts=accounts,
                        processes=args.processes,
                    )
                    floor = run_steps(
                        cluster,
                        sampler,
                        step_plan,
                        HELLO,
                        "floor (GET /hello)",
                        accounts=None,
                        processes=args.processes,
                    )
                    steps = (api, floor)
                if sustained_plan is not None:
                    sustained = run_sustained(
                        cluster,
                        sampler,
                        sustained_plan,
                        accounts=accounts,
                        processes=args.processes,
                    )
    path = write_report(args.out_dir, steps, sustained, settings)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
