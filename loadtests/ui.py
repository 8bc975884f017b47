"""`make loadtest-ui`: locust's web UI against a throwaway cluster, until Ctrl-C.

Starts the cluster, provisions listener accounts (default 2,000: users beyond that share
accounts), then runs locust with the web UI on http://127.0.0.1:8089, its host set to the
cluster's gateway; choose the number of users there. Ctrl-C stops locust and the cluster.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from loadtests.throwaway import (
    LISTENERS,
    locust_command,
    locust_environment,
    provision_listeners,
    raise_open_file_limit,
    run_locust,
    throwaway_cluster,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", type=int, default=2000, help="accounts to provision")
    parser.add_argument("--users", type=int, default=100, help="users proposed in the UI")
    parser.add_argument("--think-seconds", type=float, default=10.0, help="mean think time")
    parser.add_argument("--web-host", default="127.0.0.1", help="interface of the web UI")
    parser.add_argument("--web-port", type=int, default=8089, help="port of the web UI")
    args = parser.parse_args(argv)
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="v5-loadtest-ui-") as work:
        accounts = Path(work) / "listeners.jsonl"
        with throwaway_cluster("loadtest-ui") as cluster:
            provision_listeners(cluster, args.listeners, accounts)
            command = locust_command(
                LISTENERS,
                cluster.config.gateway_url,
                users=args.users,
                spawn_rate=max(1, args.users // 10),
                extra=["--web-host", args.web_host, "--web-port", str(args.web_port)],
            )
            print(f"locust web UI: http://{args.web_host}:{args.web_port} (Ctrl-C to stop)")
            try:
                run_locust(command, locust_environment(accounts, think_seconds=args.think_seconds))
            except KeyboardInterrupt:
                print("stopping the cluster ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
