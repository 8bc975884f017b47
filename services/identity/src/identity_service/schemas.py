from __future__ import annotations

from typing import Literal

from pydantic import Field

from v5_shared.schemas import RequestModel, ResponseModel

from .domain import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USER_ID_PATTERN


class RegisterRequest(RequestModel):
    user_id: str = Field(pattern=USER_ID_PATTERN)
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)


class RegisterResponse(ResponseModel):
    user_id: str
    created_at: str


class TokenRequest(RequestModel):
    # Deliberately loose: a malformed user id or short password is just a wrong login (401),
    # and must not reveal which rule it broke.
    user_id: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
