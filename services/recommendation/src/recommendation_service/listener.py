"""What the recommender knows about a listener, assembled from the session (Redis), the
learning state (PostgreSQL) and the request. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from v5_shared.domain.comfort import comfort_applies
from v5_shared.domain.trajectory import valence_trend
from v5_shared.sessions import SessionState

from .scoring import ListenerContext

# A genre named this many turns ago or more recently still counts as "the latest turns".
LATEST_TURNS = 3


@dataclass(frozen=True)
class RequestedContext:
    mood_valence: float | None
    mood_arousal: float | None
    genres: Sequence[str]
    artists: Sequence[str]

    @property
    def empty(self) -> bool:
        return self.mood_valence is None and not self.genres and not self.artists


def latest_named_genres(session: SessionState) -> list[str]:
    """Genres of the most recent turn that named any, if it is among the latest turns."""
    for entry in reversed(session.window[-LATEST_TURNS:]):
        genres = entry.get("entities", {}).get("genres") or []
        if genres:
            return list(genres)
    return []


def latest_activity_energy(session: SessionState) -> float | None:
    for entry in reversed(session.window[-LATEST_TURNS:]):
        energy = entry.get("target_energy")
        if energy is not None:
            return float(energy)
    return None


def build_listener(
    session: SessionState,
    requested: RequestedContext,
    *,
    liked_track_ids: Sequence[str],
    recent_track_ids: Sequence[str],
    exclude_track_ids: Sequence[str],
    has_feedback: bool,
    comfort_low_valence: float,
) -> ListenerContext:
    artists, genres, _moods = session.context.as_maps()
    valences = [float(p["valence"]) for p in session.points]
    latest_point = session.points[-1] if session.points else None
    mood_valence = requested.mood_valence
    mood_arousal = requested.mood_arousal
    if mood_valence is None and latest_point is not None:
        mood_valence = float(latest_point["valence"])
        mood_arousal = float(latest_point["arousal"])
    comfort = comfort_applies(valence_trend(valences)[0], mood_valence, low=comfort_low_valence)
    knows_session = not session.context.empty or bool(session.points)
    cold_start = not knows_session and not has_feedback and requested.empty
    return ListenerContext(
        session_genres=genres,
        session_artists=artists,
        latest_genres=latest_named_genres(session),
        request_genres=list(requested.genres),
        request_artists=list(requested.artists),
        mood_valence=mood_valence,
        mood_arousal=mood_arousal,
        target_energy=latest_activity_energy(session),
        liked_track_ids=list(liked_track_ids),
        recent_track_ids=list(recent_track_ids),
        exclude_track_ids=list(exclude_track_ids),
        comfort=comfort,
        cold_start=cold_start,
    )
