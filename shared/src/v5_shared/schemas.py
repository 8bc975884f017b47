"""Base for request bodies: unknown fields are rejected (422), so no mass assignment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

# API.md's user_id, wherever one appears (body or path): an id outside it cannot belong to
# any account, and is a 422 rather than another user's id (403). It also keeps control
# characters, NUL among them (which PostgreSQL's text cannot hold), out of every query.
# pydantic matches it with the Rust regex engine, where `$` does not accept a final newline.
USER_ID_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"

UserId = Annotated[str, Field(pattern=USER_ID_PATTERN)]
UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 with an explicit offset; naive datetimes are a bug, so they are refused."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("naive datetime")
    return ts.isoformat()
