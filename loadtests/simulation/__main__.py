"""``python -m loadtests.simulation``: simulated listeners against the product and the
baselines; see ``loadtests/simulation/__init__.py``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .plotting import plot_curves
from .runner import (
    DEFAULT_INTERACTIONS,
    DEFAULT_LISTENERS,
    DEFAULT_SEED,
    MOOD_INTERACTIONS,
    MOOD_LISTENERS,
    Settings,
    build_report,
    format_table,
    format_targets,
    parse_policies,
    run_all,
    run_live,
    targets_missed,
    write_report,
)

CURVES_PNG = "simulation-curves.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.simulation",
        description="Simulated listeners with hidden tastes against the product's Thompson "
        "sampling and weight learning, and honest baselines. Writes OUT_DIR/simulation.json "
        "and OUT_DIR/simulation-curves.png; exits 1 when a target is missed.",
    )
    parser.add_argument("--listeners", type=int, default=DEFAULT_LISTENERS)
    parser.add_argument("--interactions", type=int, default=DEFAULT_INTERACTIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    parser.add_argument("--list-size", type=int, default=5, help="tracks per recommendation")
    parser.add_argument("--policies", help="comma-separated subset (default: all five)")
    parser.add_argument("--mood-listeners", type=int, default=MOOD_LISTENERS)
    parser.add_argument("--mood-interactions", type=int, default=MOOD_INTERACTIONS)
    parser.add_argument("--no-mood", action="store_true", help="skip the comfort experiment")
    parser.add_argument("--jobs", type=int, default=1, help="processes (policies in parallel)")
    parser.add_argument(
        "--docs-png", type=Path, help="also write the curves here (e.g. docs/learning-curves.png)"
    )
    parser.add_argument(
        "--live",
        metavar="URL",
        help="the same listeners against a running cluster's gateway (the product only)",
    )
    args = parser.parse_args(argv)
    if args.listeners < 1 or args.interactions < 1 or args.jobs < 1:
        parser.error("--listeners, --interactions and --jobs must be at least 1")
    if not 1 <= args.list_size <= 50:
        parser.error("--list-size must be in 1..50")
    try:
        policies = parse_policies(args.policies)
    except ValueError as exc:
        parser.error(str(exc))
    settings = Settings(
        listeners=args.listeners,
        interactions=args.interactions,
        seed=args.seed,
        list_size=args.list_size,
        policies=policies,
        mood_listeners=args.mood_listeners,
        mood_interactions=args.mood_interactions,
        jobs=args.jobs,
    )

    started = time.perf_counter()
    if args.live:
        report = run_live(settings, args.live)
        path = write_report(report, args.out_dir, "simulation-live.json")
        png = plot_curves(report, args.out_dir / "simulation-live-curves.png")
        print(format_table(report))
        live = report["live"]
        print(
            f"\nlive: {live['requests']} requests, {live['retries']} retried, "
            f"{live['mirror_mismatches']} session-mirror differences"
        )
        print(f"wrote {path} and {png} in {time.perf_counter() - started:.0f} s")
        return 0

    records, moods, seconds = run_all(settings, mood=not args.no_mood)
    report = build_report(settings, records, moods, seconds)
    report["seconds"]["total"] = round(time.perf_counter() - started, 1)
    path = write_report(report, args.out_dir)
    png = plot_curves(report, args.out_dir / CURVES_PNG)
    if args.docs_png:
        args.docs_png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.docs_png)
    print(format_table(report))
    print()
    print(format_targets(report["targets"]))
    print(f"\nwrote {path} and {png} in {report['seconds']['total']:.0f} s")
    missed = targets_missed(report["targets"])
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
