"""`v5-cluster`: the local cluster's commands (make up/down/status/logs/clean call these)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from .cluster import ClusterError, LocalCluster
from .config import SERVICES, ClusterConfig
from .k8s import write_or_check_k8s_gateway
from .openapi import write_or_check_openapi


def _config() -> ClusterConfig:
    # The caller's environment reaches the services as it is: supervisord inherits it and
    # passes it on, adding only each replica's own ports, URLs and key paths.
    return ClusterConfig.from_env()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="v5-cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything and wait until the gateway is healthy")
    sub.add_parser("down", help="stop every process (state is kept)")
    sub.add_parser("status", help="the processes and their states")
    logs = sub.add_parser("logs", help="recent log lines of every process")
    logs.add_argument("-n", type=int, default=20)
    sub.add_parser("clean", help="stop everything and delete the state folder")
    oa = sub.add_parser("openapi", help="write (or --check) nginx/openapi.json")
    oa.add_argument("--check", action="store_true")
    k8s = sub.add_parser(
        "k8s-gateway", help="write (or --check) the gateway config in deploy/k8s/base/gateway/"
    )
    k8s.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    config = _config()
    cluster = LocalCluster(config)
    try:
        if args.command == "up":
            cluster.up()
            print(
                f"V5 is up: gateway {config.gateway_url} "
                f"({', '.join(f'{s} x{config.replicas[s]}' for s in SERVICES)}); "
                f"state in {config.state_dir}"
            )
        elif args.command == "down":
            cluster.down()
            print("V5 is down (state kept; `make clean` wipes it)")
        elif args.command == "status":
            print(cluster.status())
        elif args.command == "logs":
            names = (
                sorted(p.name for p in config.logs_dir.glob("*.log"))
                if config.logs_dir.exists()
                else []
            )
            print(cluster.tail(names, args.n))
        elif args.command == "clean":
            cluster.down()
            shutil.rmtree(config.state_dir, ignore_errors=True)
            print(f"removed {config.state_dir}")
        elif args.command == "openapi":
            return write_or_check_openapi(check=args.check)
        elif args.command == "k8s-gateway":
            return write_or_check_k8s_gateway(check=args.check)
    except (ClusterError, subprocess.CalledProcessError) as exc:
        print(f"v5-cluster {args.command} failed: {exc}", file=sys.stderr)
        if args.command == "up":
            cluster.down()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
