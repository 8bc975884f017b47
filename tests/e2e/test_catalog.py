"""The catalog endpoints through the gateway, over the seeded default catalog."""

import httpx

REQUIRED_GENRES = {
    "pop",
    "rock",
    "jazz",
    "classical",
    "hip-hop",
    "electronic",
    "r&b",
    "country",
    "metal",
    "folk",
    "blues",
    "reggae",
    "latin",
    "indie",
    "ambient",
    "soul",
    "punk",
    "funk",
    "lo-fi",
    "k-pop",
}


def test_genres(api: httpx.Client, auth_headers: dict[str, str]) -> None:
    body = api.get("/api/v1/v5/catalog/genres", headers=auth_headers).json()
    names = {g["name"] for g in body["genres"]}
    assert REQUIRED_GENRES <= names
    assert all(g["tracks"] > 0 for g in body["genres"])


def test_stats(api: httpx.Client, auth_headers: dict[str, str]) -> None:
    stats = api.get("/api/v1/v5/catalog/stats", headers=auth_headers).json()
    assert stats["tracks"] >= 20000
    assert stats["artists"] >= 2000
    assert stats["genres"] >= 20
    popularity = stats["popularity"]
    assert 0 <= popularity["p50"] <= popularity["p90"] <= 1
    assert 0 <= popularity["mean"] <= 1


def test_artists_paging_and_genre_filter(api: httpx.Client, auth_headers: dict[str, str]) -> None:
    url = "/api/v1/v5/catalog/artists"
    first = api.get(url, params={"limit": 10}, headers=auth_headers).json()
    second = api.get(url, params={"limit": 10, "offset": 10}, headers=auth_headers).json()
    assert len(first["artists"]) == 10 and first["total"] >= 2000
    assert not {a["name"] for a in first["artists"]} & {a["name"] for a in second["artists"]}
    jazz = api.get(url, params={"genre": "Jazz", "limit": 200}, headers=auth_headers).json()
    assert 0 < jazz["total"] < first["total"]
    assert len(jazz["artists"]) == min(200, jazz["total"])
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"limit": "many"}):
        assert api.get(url, params=bad, headers=auth_headers).status_code == 422


def test_track_lookup(api: httpx.Client, auth_headers: dict[str, str]) -> None:
    artists = api.get(
        "/api/v1/v5/catalog/artists", params={"genre": "metal", "limit": 1}, headers=auth_headers
    ).json()
    assert artists["artists"]
    missing = api.get("/api/v1/v5/catalog/tracks/no-such-track", headers=auth_headers)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "unknown track_id"}
    track = api.get("/api/v1/v5/catalog/tracks/v5t-000001", headers=auth_headers)
    assert track.status_code == 200
    body = track.json()
    for field in (
        "track_id",
        "title",
        "artist",
        "genres",
        "valence",
        "energy",
        "popularity",
        "score",
        "reasons",
    ):
        assert field in body
    assert body["track_id"] == "v5t-000001"
    assert all(0 <= body[f] <= 1 for f in ("valence", "energy", "popularity"))
    assert body["reasons"] and all(isinstance(r, str) and r for r in body["reasons"])
