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


def feedback_novelty(track_id: str, recent_track_ids: Sequence[str]) -> float:
    """1 when the track was new to the listener when it was recommended, else 0.

    Feedback comes after the recommendation that served the track, which already put it
    at the head of the listener's recent list: that one appearance is the recommendation
    being answered. Only an earlier one means the track had been recommended before, so
    novelty is judged without it (otherwise every feedback would find every track "not
    new" and the novelty weight could never learn)."""
    return 0.0 if list(recent_track_ids[:NOVELTY_WINDOW]).count(track_id) > 1 else 1.0


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
        novelty=feedback_novelty(track.track_id, recent_track_ids),
    )
