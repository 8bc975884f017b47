from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from v5_shared.schemas import RequestModel, ResponseModel, UserId

MESSAGE_MAX_CHARS = 1000
# What str.strip() removes (Python's white space), spelled out: regex engines disagree on
# \s (JSON Schema's, ECMA-262's, leaves out U+001C..U+001F, for one).
_SPACE = "\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# The validator's rule below, for the OpenAPI document only: 1 to 1000 characters between
# optional surrounding white space.
MESSAGE_PATTERN = (
    f"^[{_SPACE}]*[^{_SPACE}](?:[\\s\\S]{{0,{MESSAGE_MAX_CHARS - 2}}}[^{_SPACE}])?[{_SPACE}]*$"
)


class ContinueRequest(RequestModel):
    user_id: UserId
    message: str = Field(
        description="1 to 1000 characters after stripping surrounding space",
        json_schema_extra={"pattern": MESSAGE_PATTERN},
    )

    @field_validator("message")
    @classmethod
    def _strip_and_bound(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("message must not be empty or only white space")
        if len(stripped) > MESSAGE_MAX_CHARS:
            raise ValueError(f"message must be at most {MESSAGE_MAX_CHARS} characters")
        return stripped


class Entities(ResponseModel):
    artists: list[str]
    genres: list[str]
    moods: list[str]


class NamedWeight(ResponseModel):
    name: str
    weight: float


class ContextOut(ResponseModel):
    window: int
    artists: list[NamedWeight]
    genres: list[NamedWeight]
    moods: list[NamedWeight]


class MoodOut(ResponseModel):
    label: str
    valence: float
    arousal: float


Trend = Literal["improving", "declining", "stable", "unknown"]


class TrajectorySummary(ResponseModel):
    trend: Trend
    points: int
    valence_slope: float


class ContinueResponse(ResponseModel):
    session_id: str
    turn: int
    reply: str
    entities: Entities
    context: ContextOut
    mood: MoodOut | None
    trajectory: TrajectorySummary
    clarity: float
    activity: str | None = None
    target_energy: float | None = None
    comfort: bool = False


class WindowTurn(ResponseModel):
    turn: int
    message: str
    mood: MoodOut | None
    entities: Entities
    at: str


class TrajectoryPoint(ResponseModel):
    turn: int
    valence: float
    arousal: float
    at: str


class TrajectoryOut(ResponseModel):
    trend: Trend
    valence_slope: float
    points: list[TrajectoryPoint]


class ArmOut(ResponseModel):
    alpha: float
    beta: float
    pulls: int


class RewardsOut(ResponseModel):
    count: int
    total: float
    mean: float | None


class SessionStatus(ResponseModel):
    user_id: str
    session_id: str | None
    active: bool
    turns: int
    window: list[WindowTurn]
    context: ContextOut
    trajectory: TrajectoryOut
    weights: dict[str, float]
    adjustment_count: int
    bandit: dict[str, ArmOut]
    rewards: RewardsOut
    created_at: str | None
    last_active_at: str | None
    expires_at: str | None
