"""The catalog's track record, shared by the generator, the CSV importer and the services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Track:
    """One catalog track; field order matches the columns of the ``tracks`` table.

    Audio features (valence, energy, danceability, acousticness) and popularity are in
    [0, 1]; tempo is in beats per minute, or None when unknown (imported catalogs have
    such tracks; the generated one never does). ``genres`` holds canonical lower-case names
    (see ``genres.canonical_genre``); the first artist and first genre are the primary
    ones.
    """

    track_id: str
    title: str
    artists: tuple[str, ...]
    album: str | None
    genres: tuple[str, ...]
    valence: float
    energy: float
    danceability: float
    acousticness: float
    tempo: float | None
    popularity: float
    release_year: int | None
    duration_ms: int

    @property
    def artist(self) -> str:
        """The display string for the artists, e.g. "Mara Quill, Velvet Harbor"."""
        return ", ".join(self.artists)
