"""Property-based fuzzing of the whole public API through the gateway.

schemathesis reads the merged OpenAPI document (nginx/openapi.json, the file the gateway
serves as /openapi.json) and generates requests for every operation in it: boundary and
schema-derived cases (its coverage phase), random ones (fuzzing), valid and invalid, and
undeclared methods. Every response is checked against the document: no 5xx, a documented
status code, the documented content type and body schema, invalid data rejected with a 4xx,
valid data not rejected, authentication enforced, and a 405 that says what is allowed.

The requests carry real bearer tokens of listeners made for this module. Most generated
ids are replaced by real ones (the caller's user_id and password, a served recommendation
and its tracks, the catalog's genres and artists), so that the happy paths run; the rest
stay as generated and must be refused: another user's id with 403, an unknown one with 404."""

from __future__ import annotations

import itertools
import json
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from schemathesis import Case, HookContext
from schemathesis.core.parameters import ParameterLocation

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "nginx" / "openapi.json"
AUTH = "/api/v1/v5/auth/"
# The gateway limits every token to 50 requests/s with bursts of 100 in the test cluster
# (tests/conftest.py). schemathesis sends one request at a time, a few hundred per second
# at most, so spreading them over this many tokens keeps each one under its limit.
ACCOUNTS = 8
# One generated id in this many stays as generated; the others become real ones.
KEEP_EVERY = 5
# Random examples per operation in the fuzzing phase, after the coverage phase's cases.
MAX_EXAMPLES = 80
# How often a rate-limited case is sent again before its 429 is judged as the answer.
RATE_LIMITED_RETRIES = 5
# Answered requests (429s do not count) over the whole run.
MIN_REQUESTS = 1000
# Moods that the conversation lexicon knows, for a recommendation's context.
MOODS = ("happy", "sad", "calm", "energetic", "relaxed", "angry")

CONFIG = schemathesis.Config.from_dict(
    {
        # A fixed seed: CI replays the same run, and a failure reproduces locally.
        "seed": 20261203,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {
            # Invalid data must be refused by the API itself: not by a server error, and
            # not merely by a rate limit, which schemathesis accepts by default.
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422]
            },
        },
        "operations": [
            {
                # Login and registration are limited per client address (50/s, bursts of
                # 100 in the test cluster), and every request here comes from one address.
                "include-path-regex": f"^{AUTH}",
                "rate-limit": "40/s",
            }
        ],
    }
)
schema = schemathesis.openapi.from_path(OPENAPI_FILE, config=CONFIG)

# Statuses of the requests sent, per operation: "POST /api/v1/v5/feedback/reward".
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)


@schema.hook
def after_call(context: HookContext, case: Case, response: schemathesis.Response) -> None:
    STATUSES[f"{case.method.upper()} {case.path}"][response.status_code] += 1


@dataclass(frozen=True)
class Account:
    user_id: str
    password: str
    token: str
    recommendation_id: str
    track_ids: Sequence[str]


T = TypeVar("T")


def _digest(value: object) -> int:
    return zlib.crc32(json.dumps(value, sort_keys=True).encode())


def _pick(options: Sequence[T], generated: object) -> T:
    """An option chosen by the generated value, so that Hypothesis replays and shrinks a
    case unchanged."""
    return options[_digest(generated) % len(options)]


def _kept(generated: object) -> bool:
    return _digest(generated) % KEEP_EVERY == 0


@dataclass
class World:
    accounts: list[Account]
    genres: list[str]
    artists: list[str]
    tokens: Iterator[str]

    @property
    def track_ids(self) -> list[str]:
        return [track for account in self.accounts for track in account.track_ids]


def _make_account(api: httpx.Client) -> Account:
    user_id, password = f"fz_{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    created = api.post("/api/v1/v5/auth/register", json={"user_id": user_id, "password": password})
    assert created.status_code == 201, created.text
    issued = api.post("/api/v1/v5/auth/token", json={"user_id": user_id, "password": password})
    assert issued.status_code == 200, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    said = api.post(
        "/api/v1/v5/conversation/continue",
        json={"user_id": user_id, "message": "I love jazz and I'm feeling happy today"},
        headers=headers,
    )
    assert said.status_code == 200, said.text
    served = api.post(
        "/api/v1/v5/recommendation/adaptive", json={"user_id": user_id}, headers=headers
    )
    assert served.status_code == 200, served.text
    return Account(
        user_id=user_id,
        password=password,
        token=issued.json()["access_token"],
        recommendation_id=served.json()["recommendation_id"],
        track_ids=tuple(track["track_id"] for track in served.json()["tracks"]),
    )


@pytest.fixture(scope="module")
def world(api: httpx.Client) -> World:
    accounts = [_make_account(api) for _ in range(ACCOUNTS)]
    headers = {"Authorization": f"Bearer {accounts[0].token}"}
    genres = api.get("/api/v1/v5/catalog/genres", headers=headers).json()["genres"]
    artists = api.get("/api/v1/v5/catalog/artists", params={"limit": 200}, headers=headers).json()[
        "artists"
    ]
    return World(
        accounts=accounts,
        genres=[genre["name"] for genre in genres],
        artists=[artist["name"] for artist in artists],
        tokens=itertools.cycle([account.token for account in accounts]),
    )


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _valid(case: Case, location: ParameterLocation) -> bool:
    """Whether schemathesis generated this part of the case as valid: only such a part gets
    real ids (which are valid too), so that an invalid case stays invalid."""
    meta = case.meta
    component = meta.components.get(location) if meta is not None else None
    return component is None or component.mode.is_positive


def _real_context(world: World, context: dict[str, Any]) -> dict[str, Any]:
    # A recommendation's context must name what the catalog and the mood lexicon know
    # (unknown names are a 422), which the document cannot list: they are data.
    real = dict(context)
    if isinstance(real.get("mood"), str):
        real["mood"] = _pick(MOODS, real["mood"])
    for key, known in (("genres", world.genres), ("artists", world.artists)):
        if isinstance(real.get(key), list):
            real[key] = [_pick(known, name) for name in real[key]]
    return real


def _path_with_real_ids(world: World, case: Case) -> Account | None:
    path = dict(case.path_parameters)
    owner = None
    if isinstance(path.get("user_id"), str) and not _kept(path["user_id"]):
        owner = _pick(world.accounts, path["user_id"])
        path["user_id"] = owner.user_id
    if isinstance(path.get("track_id"), str) and not _kept(path["track_id"]):
        path["track_id"] = _pick(world.track_ids, path["track_id"])
    # A new container, not an edit in place: schemathesis then classifies the case as
    # valid or invalid again from what is actually sent.
    case.path_parameters = path
    return owner


def _body_with_real_ids(world: World, case: Case) -> Account | None:
    if not isinstance(case.body, dict):
        return None
    body = dict(case.body)
    owner = None
    if case.path == f"{AUTH}token" and _digest(body) % 2:
        # Half of the logins are a listener's own, which get a token.
        account = _pick(world.accounts, body)
        body.update(user_id=account.user_id, password=account.password)
    # A registration's user_id is the new account's, not one to replace.
    if not case.path.startswith(AUTH) and "user_id" in body and not _kept(body["user_id"]):
        owner = _pick(world.accounts, body["user_id"])
        body["user_id"] = owner.user_id
    if case.path == "/api/v1/v5/feedback/reward" and owner is not None:
        if not _kept(body.get("track_id")):
            # A recommendation this listener was served and one of its tracks.
            body["recommendation_id"] = owner.recommendation_id
            body["track_id"] = _pick(owner.track_ids, body.get("track_id"))
    if body.get("action") == "feedback" and not _kept(body.get("track_id")):
        body["track_id"] = _pick(world.track_ids, body.get("track_id"))
    context = body.get("context")
    if isinstance(context, dict):
        body["context"] = _real_context(world, context)
    case.body = body
    return owner


def _with_real_ids(world: World, case: Case) -> Account | None:
    """Replace generated ids by real ones in the valid parts of the case; returns the
    listener whose user_id the case now names, if any."""
    owner = None
    if case.path_parameters and _valid(case, ParameterLocation.PATH):
        owner = _path_with_real_ids(world, case)
    if _valid(case, ParameterLocation.BODY):
        owner = _body_with_real_ids(world, case) or owner
    return owner


def _retry_after(response: schemathesis.Response) -> float:
    value = response.headers.get("retry-after") or response.headers.get("Retry-After") or "1"
    return float(value[0] if isinstance(value, list) else str(value))


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(
    case: Case, gateway_url: str, world: World, session: requests.Session
) -> None:
    owner = _with_real_ids(world, case)
    headers: dict[str, str] = {}
    secured = any(True for _ in case.operation.security.iter_parameters())
    # A case that tests a missing or malformed token goes out as generated (a 401). Any
    # other carries the token of the listener it names, else the next token in turn.
    if secured and not case.operation.schema.is_security_param_negated(case):
        token = owner.token if owner is not None else next(world.tokens)
        headers["Authorization"] = f"Bearer {token}"
    # The gateway limits requests per token; a run that outpaces it gets 429s, which say
    # nothing about the API's answer to the case. Like a careful client, wait as told and
    # send the case again, then judge the answer it got.
    for _ in range(RATE_LIMITED_RETRIES):
        response = case.call(base_url=gateway_url, session=session, headers=headers)
        if response.status_code != 429:
            break
        time.sleep(_retry_after(response))
    case.validate_response(response)


def test_the_gateway_serves_the_fuzzed_document(api: httpx.Client) -> None:
    assert api.get("/openapi.json").json() == json.loads(OPENAPI_FILE.read_text())


def test_fuzzing_reached_every_operation_and_its_happy_path() -> None:
    """A summary of the fuzzing test above, which runs first: enough answers, none of them
    counted when rate limited, and for every operation at least one success."""
    document = json.loads(OPENAPI_FILE.read_text())
    declared = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert STATUSES, "the fuzzing test above did not run"
    print(
        "\nresponses per operation and status:",
        json.dumps({op: dict(sorted(statuses.items())) for op, statuses in STATUSES.items()}),
    )
    answered = sum(
        n for statuses in STATUSES.values() for code, n in statuses.items() if code != 429
    )
    assert answered >= MIN_REQUESTS
    succeeded = {
        op: sum(n for code, n in STATUSES[op].items() if 200 <= code < 300) for op in declared
    }
    assert {op: n for op, n in succeeded.items() if n == 0} == {}
