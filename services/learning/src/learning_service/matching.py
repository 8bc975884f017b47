"""How strongly a track matched each of the nine features for a listener right now, from
their session and their novelty list: the pure part of weight feedback, without I/O (the
API reads the session and the list; the listener simulator keeps them in memory)."""

from __future__ import annotations

from collections.abc import Sequence

from v5_shared.catalog.model import Track
from v5_shared.domain.weights import track_feature_matches
from v5_shared.sessions import SessionState

# A track among the listener's latest this-many recommendations is not new to them.
NOVELTY_WINDOW = 50


def feedback_matches(
    track: Track, session: SessionState, recent_track_ids: Sequence[str]
) -> dict[str, float]:
    """The track's match per feature (see ``track_feature_matches``), for feedback on it."""
    artists, genres, _ = session.context.as_maps()

    def normalised(weights: dict[str, float]) -> dict[str, float]:
        top = max(weights.values(), default=0.0)
        return {k: v / top for k, v in weights.items()} if top > 0 else {}

    latest = session.points[-1] if session.points else None
    return track_feature_matches(
        track.genres,
        track.artists,
        track.valence,
        track.energy,
        track.popularity,
        liked_genres=normalised(genres),
        liked_artists=normalised(artists),
        target_valence=None if latest is None else (float(latest["valence"]) + 1) / 2,
        target_energy=None if latest is None else (float(latest["arousal"]) + 1) / 2,
        # A track the listener had not been recommended lately counts as new to them.
        novelty=0.0 if track.track_id in recent_track_ids[:NOVELTY_WINDOW] else 1.0,
    )
