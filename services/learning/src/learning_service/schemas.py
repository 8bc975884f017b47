from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Body
from pydantic import Field, field_validator
from pydantic.json_schema import JsonDict

from v5_shared.domain.weights import WEIGHT_NAMES, WeightValidationError, validate_explicit
from v5_shared.schemas import RequestModel, ResponseModel, UserId

FeedbackType = Literal["like", "dislike", "skip", "save", "complete"]
RewardEvent = Literal["like", "dislike", "skip", "save", "complete", "play"]


class FeedbackAction(RequestModel):
    action: Literal["feedback"]
    track_id: str = Field(min_length=1, max_length=128)
    feedback: FeedbackType


def _document_weights(schema: JsonDict) -> None:
    # What validate_explicit accepts, for the OpenAPI document: any of the nine names, each
    # a number in [0, 1]. The field itself stays a plain mapping so that validate_explicit
    # reports every problem in one message.
    schema.pop("maxProperties", None)
    schema["properties"] = {
        name: {"type": "number", "minimum": 0.0, "maximum": 1.0} for name in WEIGHT_NAMES
    }
    schema["additionalProperties"] = False


class ExplicitAction(RequestModel):
    action: Literal["explicit"]
    weights: dict[str, Any] = Field(max_length=32, json_schema_extra=_document_weights)

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, value: dict[str, Any]) -> dict[str, float]:
        try:
            return validate_explicit(value)
        except WeightValidationError as exc:
            raise ValueError(str(exc)) from None


class ResetAction(RequestModel):
    action: Literal["reset"]


WeightsAction = Annotated[
    FeedbackAction | ExplicitAction | ResetAction, Body(discriminator="action")
]


class WeightsOut(ResponseModel):
    user_id: str
    weights: dict[str, float]
    adjustment_count: int
    updated_at: str | None


class RewardRequest(RequestModel):
    user_id: UserId
    recommendation_id: str = Field(min_length=1, max_length=64)
    track_id: str = Field(min_length=1, max_length=128)
    event: RewardEvent
    listen_ratio: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)


class PosteriorOut(ResponseModel):
    alpha: float
    beta: float


class RewardOut(ResponseModel):
    reward: float
    strategy: str
    posterior: PosteriorOut
