"""The music catalog: track model, genres, default generator, CSV import and storage."""

from v5_shared.catalog.commands import ImportResult, import_catalog_csv, seed_default_catalog
from v5_shared.catalog.csv_import import (
    CatalogParseReport,
    CatalogValidationError,
    parse_catalog_csv,
    parse_catalog_csv_report,
)
from v5_shared.catalog.generator import generate_catalog
from v5_shared.catalog.genres import CANONICAL_GENRES, canonical_genre
from v5_shared.catalog.model import Track
from v5_shared.catalog.repository import (
    CATALOG_CHANGED_CHANNEL,
    catalog_version,
    load_tracks,
    replace_catalog,
    track_count,
)

__all__ = [
    "CANONICAL_GENRES",
    "CATALOG_CHANGED_CHANNEL",
    "CatalogParseReport",
    "CatalogValidationError",
    "ImportResult",
    "Track",
    "canonical_genre",
    "catalog_version",
    "generate_catalog",
    "import_catalog_csv",
    "load_tracks",
    "parse_catalog_csv",
    "parse_catalog_csv_report",
    "replace_catalog",
    "seed_default_catalog",
    "track_count",
]
