from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .accounts import Listener, register_and_login


@pytest.fixture(scope="session")
def api(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def auth_headers(api: httpx.Client) -> dict[str, str]:
    _, token = register_and_login(api)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def listener(api: httpx.Client) -> Listener:
    """A new listener for each test: no session, no feedback."""
    return Listener(api)


@pytest.fixture
def other_listener(api: httpx.Client) -> Listener:
    return Listener(api)
