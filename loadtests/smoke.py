"""`make loadtest`: a short, bounded smoke run of the simulated listeners against a throwaway
cluster, failing (exit 1) on any failed request or any answer other than 2xx.

A few hundred listeners (default 300) with accounts provisioned beforehand, started within
3 s (their random start phase spreads their requests) and thinking 2 s on average instead of
a person's 10 s, so that 30 s make a few thousand requests over every endpoint they use.
Locust prints the per-endpoint table and the percentiles at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from loadtests.samples import read_samples
from loadtests.throwaway import (
    LISTENERS,
    SPAWN_RATE,
    locust_command,
    locust_environment,
    provision_listeners,
    raise_open_file_limit,
    run_locust,
    throwaway_cluster,
)


def count_requests(samples_dir: Path) -> tuple[int, int]:
    """Requests and failed requests, from the record of every request the run made."""
    requests = failures = 0
    for sample in read_samples(samples_dir):
        requests += 1
        failures += not sample.ok
    return requests, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300, help="simulated listeners")
    parser.add_argument("--seconds", type=float, default=30, help="length of the run")
    parser.add_argument("--think-seconds", type=float, default=2.0, help="mean think time")
    args = parser.parse_args(argv)
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="v5-loadtest-") as work:
        accounts = Path(work) / "listeners.jsonl"
        samples_dir = Path(work) / "samples"
        with throwaway_cluster("loadtest") as cluster:
            provision_listeners(cluster, args.users, accounts)
            command = locust_command(
                LISTENERS,
                cluster.config.gateway_url,
                users=args.users,
                spawn_rate=SPAWN_RATE,
                run_seconds=args.seconds,
            )
            env = locust_environment(
                accounts, think_seconds=args.think_seconds, samples_dir=samples_dir
            )
            exit_code = run_locust(command, env, timeout=args.seconds + 120)
        requests, failures = count_requests(samples_dir)
    if exit_code == 0 and requests > 0 and failures == 0:
        print(f"smoke run passed: {requests} requests, no failures")
        return 0
    print(
        f"smoke run FAILED: {requests} requests, {failures} failed, locust exit code {exit_code}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
