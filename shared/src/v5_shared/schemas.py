"""Base for request bodies: unknown fields are rejected (422), so no mass assignment."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


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
