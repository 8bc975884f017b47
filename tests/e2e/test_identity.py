"""Registration and tokens through the gateway, as API.md states them."""

from datetime import datetime

import httpx
import jwt

from .accounts import new_user_id

REGISTER = "/api/v1/v5/auth/register"
TOKEN = "/api/v1/v5/auth/token"


def test_register_then_token(api: httpx.Client) -> None:
    user_id = new_user_id()
    created = api.post(REGISTER, json={"user_id": user_id, "password": "correct horse"})
    assert created.status_code == 201
    body = created.json()
    assert body["user_id"] == user_id
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert "password" not in created.text and "hash" not in created.text

    issued = api.post(TOKEN, json={"user_id": user_id, "password": "correct horse"})
    assert issued.status_code == 200
    token = issued.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    header = jwt.get_unverified_header(token["access_token"])
    assert header["alg"] == "EdDSA"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id
    assert claims["exp"] - claims["iat"] == 3600


def test_duplicate_registration_is_409(api: httpx.Client) -> None:
    user_id = new_user_id()
    assert api.post(REGISTER, json={"user_id": user_id, "password": "password1"}).status_code == 201
    again = api.post(REGISTER, json={"user_id": user_id, "password": "password2"})
    assert again.status_code == 409
    assert isinstance(again.json()["detail"], str)


def test_registration_validation(api: httpx.Client) -> None:
    cases = [
        {"user_id": "ab", "password": "long enough"},  # too short
        {"user_id": "a" * 65, "password": "long enough"},  # too long
        {"user_id": "bad id!", "password": "long enough"},  # outside the pattern
        {"user_id": new_user_id(), "password": "short"},  # password under 8
        {"user_id": new_user_id(), "password": "x" * 129},  # password over 128
        {"user_id": new_user_id(), "password": "long enough", "role": "admin"},  # unknown field
        {"user_id": new_user_id()},  # missing password
    ]
    for body in cases:
        response = api.post(REGISTER, json=body)
        assert response.status_code == 422, body
        assert isinstance(response.json()["detail"], list)
    # The edges are inclusive: 3 and 64 characters, 8 and 128 code points.
    assert (
        api.post(
            REGISTER, json={"user_id": new_user_id("e")[:3] + "x", "password": "é" * 8}
        ).status_code
        == 201
    )
    assert (
        api.post(
            REGISTER,
            json={"user_id": ("z" + new_user_id())[:64].ljust(64, "z"), "password": "p" * 128},
        ).status_code
        == 201
    )


def test_wrong_password_and_unknown_user_get_the_same_401(api: httpx.Client) -> None:
    user_id = new_user_id()
    api.post(REGISTER, json={"user_id": user_id, "password": "the right one"})
    wrong = api.post(TOKEN, json={"user_id": user_id, "password": "the wrong one"})
    unknown = api.post(TOKEN, json={"user_id": new_user_id(), "password": "the right one"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in wrong.text
