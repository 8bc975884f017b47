"""Errors the gateway itself produces are JSON too, and a service with no replica left
answers fast instead of hanging."""

import time

import httpx

from v5_cluster.cluster import LocalCluster


def test_no_replica_left_is_a_fast_json_502(
    cluster: LocalCluster, api: httpx.Client, auth_headers: dict[str, str]
) -> None:
    probe = "/api/v1/v5/learning/no-such-operation"
    cluster.supervisorctl("stop", "learning:*")
    try:
        started = time.monotonic()
        response = api.get(probe, headers=auth_headers)
        assert time.monotonic() - started < 2.0
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["retry-after"] == "1"
        assert "detail" in response.json()
        assert response.headers["x-request-id"]
    finally:
        cluster.up(timeout=60)
    # Back: a replica answers again (its own JSON 404 for an unknown operation) once nginx's
    # fail_timeout (2 s) for the replicas it saw refuse has passed.
    deadline = time.monotonic() + 5
    back = api.get(probe, headers=auth_headers)
    while back.status_code == 502 and time.monotonic() < deadline:
        time.sleep(0.2)
        back = api.get(probe, headers=auth_headers)
    assert back.status_code == 404
    assert back.json() == {"detail": "Not Found"}
