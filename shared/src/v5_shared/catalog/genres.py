"""Canonical genre names and the normalisation every catalog source goes through.

Genres are matched by exact string everywhere downstream (session entities, request
filters, the GIN index on ``tracks.genres``), so every spelling that reaches the
catalog is first mapped to one canonical, lower-case name here.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The genres of the generated default catalog. Order is stable because the generator
# draws from this tuple by index: reordering it changes every seeded catalog.
CANONICAL_GENRES: tuple[str, ...] = (
    "pop",
    "rock",
    "jazz",
    "classical",
    "hip-hop",
    "electronic",
    "r&b",
    "country",
    "metal",
    "folk",
    "blues",
    "reggae",
    "latin",
    "indie",
    "ambient",
    "soul",
    "punk",
    "funk",
    "lo-fi",
    "k-pop",
    "disco",
    "gospel",
    "house",
    "techno",
)

# Aliases are keyed by their "compact" form (lower case, separators removed), so that
# "Hip Hop", "hip_hop", "HIP-HOP" and "hiphop" all land on the same key without
# listing every spelling. Only spellings of the same genre belong here; sub-genres
# such as "heavy-metal" or "indie-pop" stay distinct, as they are in the datasets.
_ALIASES: dict[str, str] = {
    "hiphop": "hip-hop",
    "rnb": "r&b",
    "r&b": "r&b",
    "randb": "r&b",
    "r'n'b": "r&b",
    "rhythm&blues": "r&b",
    "rhythmandblues": "r&b",
    "lofi": "lo-fi",
    "kpop": "k-pop",
    "latino": "latin",
    "electronica": "electronic",
}

_SEPARATORS = re.compile(r"[\s_\-]+")
_WHITESPACE = re.compile(r"\s+")


def _compact(name: str) -> str:
    return _SEPARATORS.sub("", name)


_CANONICAL_BY_COMPACT: dict[str, str] = {
    **{_compact(genre): genre for genre in CANONICAL_GENRES},
    **_ALIASES,
}


_CANONICAL_SET = frozenset(CANONICAL_GENRES)


# Imports call this once per CSV row with a few hundred distinct values at most.
@lru_cache(maxsize=4096)
def canonical_genre(name: str) -> str:
    """Return the canonical lower-case name for ``name``.

    Known genres and their aliases map to the canonical spelling ("Hip Hop" ->
    "hip-hop", "rnb" -> "r&b"); any other genre is kept, lower-cased and with its
    whitespace collapsed, because a user's own catalog may carry genres we do not know.
    Raises ``ValueError`` for a blank name, which no catalog may store.
    """
    normalised = _WHITESPACE.sub(" ", name.strip().lower())
    if not normalised:
        raise ValueError("genre name is empty")
    return _CANONICAL_BY_COMPACT.get(_compact(normalised), normalised)


def is_canonical_genre(name: str) -> bool:
    """Whether ``name`` is one of the built-in canonical genres (exact spelling)."""
    return name in _CANONICAL_SET
