"""The conversation session held in memory, as the conversation service keeps it in Redis.

The service applies a turn with one Lua script (``v5_shared.sessions._APPLY_TURN``): the
turn record is appended to a window of the last ``WINDOW_TURNS``, every entity weight is
multiplied by ``CONTEXT_DECAY`` and forgotten below ``CONTEXT_FLOOR``, each mention adds 1,
weights are stored as ``%.6g`` text, and a turn with a mood appends a trajectory point (the
last ``TRAJECTORY_POINTS`` kept). Reading rounds weights to 4 decimals and sorts them
heaviest first. There is no Python version of that script to call, so this mirrors it step
for step with the same constants, and produces the same ``SessionState`` that the
recommendation and learning services read (the live-mode test compares the two).

What goes into a turn comes from the real ``understand()``, nothing else.
"""

from __future__ import annotations

from typing import Any

from conversation_service.understanding import Understanding
from v5_shared.sessions import (
    CONTEXT_DECAY,
    CONTEXT_FLOOR,
    TRAJECTORY_POINTS,
    WINDOW_TURNS,
    SessionContext,
    SessionState,
    WeightedName,
)

_KINDS = ("artists", "genres", "moods")


class SessionMirror:
    """One listener's session: ``apply`` a turn, read it back as a ``SessionState``."""

    def __init__(self) -> None:
        self._session_number = 0
        self.end()

    def end(self) -> None:
        """Forget the session (it expired, or was deleted): the next turn starts a new one."""
        self._active = False
        self._turns = 0
        self._window: list[dict[str, Any]] = []
        self._context: dict[tuple[str, str], float] = {}  # (kind, name) -> stored weight
        self._points: list[dict[str, Any]] = []
        self._state: SessionState | None = SessionState()

    def apply(self, message: str, understanding: Understanding, *, at: str = "") -> None:
        if not self._active:
            self._active = True
            self._session_number += 1
        self._turns += 1
        turn = self._turns
        self._window.append({"turn": turn, **understanding.turn_record(message, at)})
        del self._window[:-WINDOW_TURNS]

        weights: dict[tuple[str, str], float] = {}
        for key, weight in self._context.items():
            decayed = weight * CONTEXT_DECAY
            if decayed >= CONTEXT_FLOOR:
                weights[key] = decayed
        mentions = (understanding.artists, understanding.genres, understanding.moods)
        for kind, names in zip(_KINDS, mentions, strict=True):
            for name in names:
                weights[(kind, name)] = weights.get((kind, name), 0.0) + 1.0
        # Stored as '%.6g' text in Redis, and decayed from that value on the next turn.
        self._context = {key: float(f"{weight:.6g}") for key, weight in weights.items()}

        mood = understanding.mood
        if mood is not None:
            self._points.append(
                {"turn": turn, "valence": mood.valence, "arousal": mood.arousal, "at": at}
            )
            del self._points[:-TRAJECTORY_POINTS]
        self._state = None

    @property
    def state(self) -> SessionState:
        """The session as ``SessionStore.read`` returns it (a fresh object per change)."""
        if self._state is None:
            context = SessionContext()
            for (kind, name), weight in self._context.items():
                getattr(context, kind).append(WeightedName(name, round(weight, 4)))
            for kind in _KINDS:
                getattr(context, kind).sort(key=lambda w: (-w.weight, w.name))
            self._state = SessionState(
                session_id=f"sim-{self._session_number}",
                turns=self._turns,
                window=list(self._window),
                context=context,
                points=list(self._points),
            )
        return self._state
