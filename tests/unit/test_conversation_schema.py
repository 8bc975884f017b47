"""The OpenAPI document's rule for a conversation message is the validator's rule."""

import re

import pytest
from pydantic import ValidationError

from conversation_service.schemas import MESSAGE_PATTERN, ContinueRequest

SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
SAMPLES = [
    "",
    "a",
    "a" * 1000,
    "a" * 1001,
    " " + "a" * 1000 + "\n",
    "a b",
    "\ufeff",
    "\u200b",
    *SPACES,
    *(f"{space}x{space}" for space in SPACES),
    "".join(SPACES),
]


@pytest.mark.parametrize("message", SAMPLES, ids=repr)
def test_the_documented_pattern_accepts_what_the_validator_accepts(message: str) -> None:
    try:
        ContinueRequest(user_id="abc", message=message)
        accepted = True
    except ValidationError:
        accepted = False
    assert bool(re.search(MESSAGE_PATTERN, message)) == accepted
