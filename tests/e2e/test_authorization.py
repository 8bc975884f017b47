"""Object-level authorization on every user-scoped operation: another user's user_id (in the
path or the body) or recommendation_id is 403, and changes nothing."""

import httpx
import pytest

from .accounts import Listener


def _operations(victim: Listener) -> list[tuple[str, str, dict | None]]:
    uid = victim.user_id
    return [
        ("POST", "/api/v1/v5/conversation/continue", {"user_id": uid, "message": "hi"}),
        ("GET", f"/api/v1/v5/session/{uid}/status", None),
        ("DELETE", f"/api/v1/v5/session/{uid}", None),
        ("POST", "/api/v1/v5/recommendation/adaptive", {"user_id": uid}),
        ("GET", f"/api/v1/v5/learning/weights/{uid}", None),
        ("POST", f"/api/v1/v5/learning/weights/{uid}", {"action": "reset"}),
        (
            "POST",
            "/api/v1/v5/feedback/reward",
            {"user_id": uid, "recommendation_id": "x", "track_id": "v5t-000001", "event": "like"},
        ),
    ]


def test_every_user_scoped_operation_refuses_another_user(
    api: httpx.Client, listener: Listener, other_listener: Listener
) -> None:
    listener.say("hello")
    for method, path, body in _operations(listener):
        response = api.request(method, path, json=body, headers=other_listener.headers)
        assert response.status_code == 403, (method, path, response.text)
        assert isinstance(response.json()["detail"], str)
    status = listener.status().json()
    assert status["turns"] == 1 and status["adjustment_count"] == 0


def test_openapi_has_no_user_scoped_operation_left_out(
    api: httpx.Client, listener: Listener
) -> None:
    document = api.get("/openapi.json").json()
    scoped = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = {p["name"] for p in operation.get("parameters", [])}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            schema = document["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            if path.startswith("/api/v1/v5/auth/"):
                continue  # the user_id there is the account being created or logged in
            if "user_id" in params or "user_id" in schema.get("properties", {}):
                scoped.add((method.upper(), path))
    covered = {(m, p.replace(listener.user_id, "{user_id}")) for m, p, _ in _operations(listener)}
    assert scoped - covered == set()


@pytest.mark.parametrize("token", ["", "Bearer", "Bearer abc.def.ghi"])
def test_missing_or_bad_token_is_401_everywhere(
    api: httpx.Client, listener: Listener, token: str
) -> None:
    for method, path, body in _operations(listener):
        headers = {"Authorization": token} if token else {}
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
