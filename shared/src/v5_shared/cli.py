"""`v5ctl`: the operational commands (migrate, seed and import the catalog, make dev keys,
provision load-test listeners)."""

from __future__ import annotations

import argparse
import asyncio
import sys
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.database_url is None:
        args.database_url = get_settings().database_url
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
