"""`v5ctl`: the operational commands (migrate, seed and import the catalog, make dev keys,
provision load-test listeners, evaluate policies offline)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from .settings import get_settings


def _migrate(args: argparse.Namespace) -> int:
    from .migrate import apply_migrations

    applied = asyncio.run(apply_migrations(args.database_url))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def _seed_catalog(args: argparse.Namespace) -> int:
    from .catalog.commands import seed_default_catalog

    written = asyncio.run(seed_default_catalog(args.database_url, if_empty=args.if_empty))
    if written:
        print(f"catalog seeded: {written} tracks")
    else:
        print("catalog already present: not seeded")
    return 0


def _import_catalog(args: argparse.Namespace) -> int:
    from .catalog.commands import import_catalog_csv
    from .catalog.csv_import import CatalogValidationError

    try:
        result = asyncio.run(
            import_catalog_csv(
                args.database_url,
                args.csv,
                progress=not args.no_progress,
                skip_invalid=args.skip_invalid,
            )
        )
    except CatalogValidationError as exc:
        print(f"import refused, nothing was written: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError:
        print(f"no such file: {args.csv}", file=sys.stderr)
        return 1
    if result.skipped:
        shown = CatalogValidationError.MAX_LISTED
        rows = ", ".join(str(row) for row, _ in result.skipped[:shown])
        more = f" and {len(result.skipped) - shown} more" if len(result.skipped) > shown else ""
        noun = "row" if len(result.skipped) == 1 else "rows"
        print(f"skipped {len(result.skipped)} invalid {noun}: {rows}{more}", file=sys.stderr)
        for row, message in result.skipped[:shown]:
            print(f"  row {row}: {message}", file=sys.stderr)
    print(f"catalog imported: {result.tracks} tracks from {args.csv}")
    return 0


def _generate_keys(args: argparse.Namespace) -> int:
    from .keys import generate_development_keys

    private_path, public_path, created = generate_development_keys(Path(args.dir))
    state = "created" if created else "kept existing"
    print(f"{state}: {private_path} {public_path}")
    return 0


def _provision_listeners(args: argparse.Namespace) -> int:
    try:
        from .provision import provision_listeners
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "identity_service":
            raise
        print(
            "provision-listeners uses the identity service's hashing and token claims: run it "
            "where identity_service is installed (the development environment, the identity "
            "image)",
            file=sys.stderr,
        )
        return 1
    from .settings import ConfigurationError

    prefix = {} if args.prefix is None else {"prefix": args.prefix}
    try:
        result = asyncio.run(
            provision_listeners(args.database_url, count=args.count, out=Path(args.out), **prefix)
        )
    except (ValueError, ConfigurationError) as exc:
        print(f"nothing provisioned: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.count} listeners in {result.path} "
        f"({result.created} created, {result.existing} already there and left as they were)"
    )
    return 0


def _policy_spec(text: str) -> object:
    from .domain.evaluation import PolicySpecError, parse_policy

    try:
        return parse_policy(text)
    except PolicySpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _aware_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 timestamp: {text!r} (e.g. 2026-01-31T00:00:00+00:00)"
        ) from None
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no timezone: add one, e.g. {text}+00:00 or {text}Z"
        )
    return value


def _fmt(value: float | None, digits: int = 4) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def _evaluate(args: argparse.Namespace) -> int:
    import asyncpg
    import orjson

    from .domain.evaluation import EvaluationError
    from .evaluation_store import evaluate_stored

    if args.since is not None and args.until is not None and args.since >= args.until:
        print("nothing to evaluate: --since must be before --until", file=sys.stderr)
        return 2
    try:
        stored = asyncio.run(
            evaluate_stored(
                args.database_url,
                args.policy,
                missing_reward=args.missing_reward,
                since=args.since,
                until=args.until,
                user_id=args.user,
            )
        )
    except EvaluationError as exc:
        print(f"cannot evaluate: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"cannot read the impressions: {exc}", file=sys.stderr)
        return 1
    result = stored.result
    report = {
        "policy": args.policy.spec,
        "policy_description": args.policy.description,
        "missing_reward": args.missing_reward,
        "since": None if args.since is None else args.since.isoformat(),
        "until": None if args.until is None else args.until.isoformat(),
        "user": args.user,
        "rewarded": stored.rewarded,
        "unrewarded": stored.unrewarded,
        **result.to_dict(),
    }
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    missing = (
        f"{stored.unrewarded:,} without, counted as reward 0"
        if args.missing_reward == "zero"
        else "impressions without feedback left out"
    )
    level = f"{result.confidence:.0%} CI"
    print(f"policy {args.policy.spec}: {args.policy.description}")
    print(f"impressions: {result.count:,} ({stored.rewarded:,} with feedback; {missing})")
    print(f"{'':18}{'value':>10}{'std err':>10}   {level}")
    for label, estimate in (
        ("IPS", report["ips"]),
        ("SNIPS", report["snips"]),
        ("logging (mean)", report["logging"]),
    ):
        interval = f"[{_fmt(estimate['ci_low'])}, {_fmt(estimate['ci_high'])}]"
        print(
            f"{label:18}{_fmt(estimate['value']):>10}"
            f"{_fmt(estimate['standard_error']):>10}   {interval}"
        )
    ess = result.effective_sample_size
    print(
        f"effective sample size {ess:,.1f} ({ess / result.count:.1%} of {result.count:,}); "
        f"max weight {result.max_weight:.3f}; mean weight {result.mean_weight:.3f}"
    )
    if ess < 100:
        print("few effective samples: the confidence intervals are optimistic")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v5ctl", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL DSN (default: DATABASE_URL)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply pending schema migrations").set_defaults(
        handler=_migrate
    )

    seed = commands.add_parser("seed-catalog", help="write the generated default catalog")
    seed.add_argument("--if-empty", action="store_true", help="only when there is no catalog yet")
    seed.set_defaults(handler=_seed_catalog)

    imp = commands.add_parser("import-catalog", help="replace the catalog with a CSV file")
    imp.add_argument("csv", help="CSV in the public tracks dataset's columns")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out invalid rows (listed on stderr) instead of refusing the whole file",
    )
    imp.set_defaults(handler=_import_catalog)

    keys = commands.add_parser("generate-keys", help="make a development Ed25519 key pair")
    keys.add_argument("--dir", required=True, help="folder for jwt_private.pem/jwt_public.pem")
    keys.set_defaults(handler=_generate_keys)

    listeners = commands.add_parser(
        "provision-listeners",
        help="create load-test accounts in one batch and write their access tokens",
        description=(
            "Insert COUNT accounts straight into PostgreSQL (ids already taken are skipped), "
            "all with one argon2 hash of a generated password, and write OUT as JSON lines "
            "with each user_id, an access token signed with JWT_PRIVATE_KEY(_FILE), and the "
            "password of the accounts created. Hashing and token settings are identity's "
            "(ARGON2_*, JWT_ISSUER, JWT_AUDIENCE, ACCESS_TOKEN_TTL_SECONDS)."
        ),
    )
    listeners.add_argument("--count", type=_positive_int, required=True, help="accounts")
    listeners.add_argument("--out", required=True, help="the JSON-lines file to write")
    listeners.add_argument(
        "--prefix", help="user ids are PREFIX000001, PREFIX000002, ... (default: listener_)"
    )
    listeners.set_defaults(handler=_provision_listeners)

    evaluation = commands.add_parser(
        "evaluate",
        help="estimate another arm-choosing policy's value from the logged impressions",
        description=(
            "Off-policy evaluation of a target policy on the logged impressions and their "
            "arm propensities: inverse propensity scoring (IPS) and self-normalised IPS "
            "(SNIPS), each with a standard error and a 95 % confidence interval, the "
            "effective sample size and the logging policy's own mean reward. An "
            "impression's reward is the mean of the rewards recorded for it."
        ),
    )
    evaluation.add_argument(
        "--policy",
        type=_policy_spec,
        required=True,
        help=(
            "uniform | greedy | logging | arm:<name> (always that arm, uniform where it is "
            "not eligible) | epsilon-greedy:<eps>"
        ),
    )
    evaluation.add_argument(
        "--missing-reward",
        choices=("zero", "exclude"),
        default="zero",
        help="an impression without feedback counts as reward 0 (default) or is left out",
    )
    evaluation.add_argument(
        "--since",
        type=_aware_timestamp,
        help="only impressions created at or after this timezone-aware ISO timestamp",
    )
    evaluation.add_argument(
        "--until",
        type=_aware_timestamp,
        help="only impressions created before this timezone-aware ISO timestamp",
    )
    evaluation.add_argument("--user", help="only this user's impressions")
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluation.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.database_url is None:
        args.database_url = get_settings().database_url
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
