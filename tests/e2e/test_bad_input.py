"""Bad input through the gateway, against every POST operation and the path parameters of
the user-scoped GET/DELETE operations: malformed JSON, wrong content types, invalid UTF-8,
control characters, deep nesting, oversized bodies and fields, injection strings.

Every answer is a JSON error with `detail` (API.md: never a stack trace, never HTML), with
nosniff, answered quickly; free text (messages, passwords) is kept verbatim instead. After
the module no request saw a 5xx, no process of the cluster restarted and every replica is
ready.

Decisions where API.md leaves room, asserted below:
- a body that is not `application/json` (or `+json`), a missing content type included, is a
  422 with `loc: ["body"]`, the same for every operation (the contract's validation status;
  it lists no 415);
- a body must be UTF-8 JSON as RFC 8259 has it: invalid UTF-8, UTF-16, a byte order mark,
  escaped lone surrogates, NaN and nesting deeper than 1024 levels are a 422 `json_invalid`;
- `user_id`, in a body or a path, follows its documented pattern: control characters (and a
  final newline) are a 422. At `/auth/token` a user_id no account can have is a wrong login
  like any other, 401 (API.md: "the same message for both");
- `message` and `password` are free text: control characters, U+2028 and injection strings
  are stored as sent and returned verbatim (the session window shows the message; a password
  is proven by logging in with it);
- identifiers that are looked up (track_id, recommendation_id) are unknown, 404, whatever
  they contain; names that must match the catalog (mood, genres, artists) are a 422.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from v5_cluster.cluster import LocalCluster
from v5_cluster.config import SERVICES

from .accounts import new_user_id

API = "/api/v1/v5"
# A generous bound: every answer here takes milliseconds; this only catches a hang.
ANSWER_WITHIN_SECONDS = 5.0
BODY_LIMIT = 64 * 1024
# Where a bad string goes in an otherwise valid body, before the body is serialised.
MARKER = "@@bad-input@@"

CONTROL_CHARACTERS = {
    "nul": "\x00",
    "soh": "\x01",
    "tab": "\t",
    "newline": "\n",
    "carriage-return": "\r",
    "escape": "\x1b",
    "unit-separator": "\x1f",
    "del": "\x7f",
    "line-separator": "\u2028",
}
ALL_CONTROLS = "".join(chr(c) for c in range(0x20)) + "\x7f\u2028\u2029"

INJECTIONS = {
    "sql-drop": "'; DROP TABLE users; --",
    "sql-or": '" OR 1=1 --',
    "sql-sleep": "'; SELECT pg_sleep(10); --",
    "redis-protocol": "\r\n*1\r\n$8\r\nFLUSHALL\r\n",
    "lua": "]] redis.call('FLUSHALL') --",
    "lua-quote": '"); redis.call("FLUSHALL"); --',
    "nosql": '{"$gt": ""}',
    "html": "<script>alert(1)</script>",
    "traversal": "../../etc/passwd",
    "format": "%s%n{0}",
    "template": "{{7*7}}",
}


# -- the client, accounts and the cluster's state before the module --------------------


class ServerErrors:
    """Every 5xx answer this module's requests got (checked at the end of the module)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def record(self, method: str, url: str, status: int) -> None:
        if status >= 500:
            self.seen.append(f"{method} {url} -> {status}")

    def hook(self, response: httpx.Response) -> None:
        self.record(response.request.method, str(response.request.url), response.status_code)


@pytest.fixture(scope="module")
def server_errors() -> ServerErrors:
    return ServerErrors()


@pytest.fixture(scope="module")
def client(gateway_url: str, server_errors: ServerErrors) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=gateway_url, timeout=10.0, event_hooks={"response": [server_errors.hook]}
    ) as c:
        yield c


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    content: bytes | Iterator[bytes] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> httpx.Response:
    """One request, answered within the bound. The gateway's rate limits (per address for
    /auth, per token elsewhere) are not under test here: a 429 is waited out and retried."""
    all_headers = dict(headers or {})
    if json_body is not None:
        content = json.dumps(json_body).encode()
    if content is not None and content_type is not None:
        all_headers["content-type"] = content_type
    # A chunked body is kept, so that a retry sends it again.
    chunks = None if content is None or isinstance(content, bytes) else list(content)
    for _ in range(100):
        started = time.monotonic()
        response = client.request(
            method,
            url,
            content=content if chunks is None else iter(chunks),
            headers=all_headers,
        )
        elapsed = time.monotonic() - started
        if response.status_code != 429:
            break
        time.sleep(0.1)
    assert elapsed < ANSWER_WITHIN_SECONDS, f"{method} {url} took {elapsed:.2f} s"
    return response


def assert_json_error(response: httpx.Response, status: int) -> Any:
    """The status, and API.md's error shape: JSON with `detail`, no stack trace, no HTML."""
    request = response.request
    assert response.status_code == status, (request.method, request.url, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text
    for leak in ("Traceback", 'File "', "<html", "<body"):
        assert leak not in text, text[:300]
    detail = response.json()["detail"]
    if status == 422:
        assert isinstance(detail, list) and detail, detail
        for error in detail:
            assert {"loc", "msg", "type"} <= set(error), error
    else:
        assert isinstance(detail, str), detail
    return detail


@dataclass(frozen=True)
class Account:
    user_id: str
    password: str
    headers: dict[str, str]


def make_account(client: httpx.Client, password: str | None = None) -> Account:
    user_id = new_user_id("bad")
    password = password or f"pw-{uuid.uuid4().hex}"
    body = {"user_id": user_id, "password": password}
    created = send(client, "POST", f"{API}/auth/register", json_body=body)
    assert created.status_code == 201, created.text
    return Account(user_id, password, {"Authorization": f"Bearer {login(client, body)}"})


def login(client: httpx.Client, body: dict[str, str]) -> str:
    issued = send(client, "POST", f"{API}/auth/token", json_body=body)
    assert issued.status_code == 200, issued.text
    token: str = issued.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def account(client: httpx.Client) -> Account:
    """The caller of the authenticated operations."""
    return make_account(client)


@dataclass(frozen=True)
class Baseline:
    """What must still be there after the module: a witness's account and conversation, the
    catalog, and the same process behind every program of the cluster."""

    witness: Account
    witness_message: str
    catalog_stats: dict[str, Any]
    genres: list[dict[str, Any]]
    pids: dict[str, int]


def _pids(cluster: LocalCluster) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in cluster.rpc().getAllProcessInfo()}


@pytest.fixture(scope="module", autouse=True)
def baseline(client: httpx.Client, cluster: LocalCluster) -> Baseline:
    witness = make_account(client)
    message = "I'd like some calm jazz"
    said = send(
        client,
        "POST",
        f"{API}/conversation/continue",
        json_body={"user_id": witness.user_id, "message": message},
        headers=witness.headers,
    )
    assert said.status_code == 200, said.text
    stats = send(client, "GET", f"{API}/catalog/stats", headers=witness.headers)
    genres = send(client, "GET", f"{API}/catalog/genres", headers=witness.headers)
    assert stats.status_code == genres.status_code == 200
    return Baseline(witness, message, stats.json(), genres.json()["genres"], _pids(cluster))


# -- the POST operations -----------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    service: str
    path: Callable[[Account], str]
    authenticated: bool
    # An otherwise valid body with `text` in one of its string fields.
    body: Callable[[Account, str], dict[str, Any]]
    # A `text` with which `body` is accepted (not a 422).
    valid_text: str

    def headers(self, account: Account) -> dict[str, str]:
        return dict(account.headers) if self.authenticated else {}

    def raw_body(self, account: Account, raw: bytes) -> bytes:
        """The body as JSON text, `raw` (already JSON-encoded or not JSON at all) in place
        of the string field's value."""
        text = json.dumps(self.body(account, MARKER)).encode()
        return text.replace(json.dumps(MARKER).encode(), raw)


OPERATIONS = [
    Operation(
        "register",
        "identity",
        lambda a: f"{API}/auth/register",
        False,
        lambda a, text: {"user_id": new_user_id("reg"), "password": text},
        "a valid password",
    ),
    Operation(
        "token",
        "identity",
        lambda a: f"{API}/auth/token",
        False,
        lambda a, text: {"user_id": a.user_id, "password": text},
        "not the password",
    ),
    Operation(
        "conversation",
        "conversation",
        lambda a: f"{API}/conversation/continue",
        True,
        lambda a, text: {"user_id": a.user_id, "message": text},
        "some jazz please",
    ),
    Operation(
        "recommendation",
        "recommendation",
        lambda a: f"{API}/recommendation/adaptive",
        True,
        lambda a, text: {"user_id": a.user_id, "limit": 3, "exclude_track_ids": [text]},
        "v5t-000001",
    ),
    Operation(
        "weights",
        "learning",
        lambda a: f"{API}/learning/weights/{a.user_id}",
        True,
        lambda a, text: {"action": "feedback", "track_id": text, "feedback": "like"},
        "v5t-000001",
    ),
    Operation(
        "reward",
        "learning",
        lambda a: f"{API}/feedback/reward",
        True,
        lambda a, text: {
            "user_id": a.user_id,
            "recommendation_id": text,
            "track_id": "v5t-000001",
            "event": "like",
        },
        "no-such-recommendation",
    ),
]
BY_NAME = {op.name: op for op in OPERATIONS}
# What the valid body of each operation gets, to show that only the bad part is refused (a
# well-formed login with a wrong password is a 401, a reward for no recommendation a 404).
ACCEPTED = {
    "register": 201,
    "token": 401,
    "conversation": 200,
    "recommendation": 200,
    "weights": 200,
    "reward": 404,
}


def operations(*names: str) -> pytest.MarkDecorator:
    chosen = [BY_NAME[n] for n in names] if names else OPERATIONS
    return pytest.mark.parametrize("op", chosen, ids=[op.name for op in chosen])


def post(client: httpx.Client, op: Operation, account: Account, **kwargs: Any) -> httpx.Response:
    return send(client, "POST", op.path(account), headers=op.headers(account), **kwargs)


def assert_ready(cluster: LocalCluster, service: str) -> None:
    for port in cluster.config.replica_ports(service):
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0)
        assert ready.status_code == 200, (service, port, ready.text)


@operations()
def test_the_valid_bodies_are_accepted(
    client: httpx.Client, account: Account, op: Operation
) -> None:
    # The control for every case below: only the bad part of a body makes it a 422.
    response = post(client, op, account, json_body=op.body(account, op.valid_text))
    assert response.status_code == ACCEPTED[op.name], response.text


# -- malformed JSON --------------------------------------------------------------------

MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda valid: valid[:-3],
    "trailing-garbage": lambda valid: valid + b" garbage",
    "two-documents": lambda valid: valid + valid,
    "single-quotes": lambda valid: valid.replace(b'"', b"'"),
    "bare-number": lambda _: b"42",
    "bare-string": lambda _: b'"a string"',
    "bare-null": lambda _: b"null",
    "bare-true": lambda _: b"true",
    "bare-array": lambda _: b"[]",
    "empty": lambda _: b"",
    "only-white-space": lambda _: b" \r\n\t ",
    "nan": lambda valid: valid.replace(b"{", b'{"n": NaN, ', 1),
}


@operations()
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_json_is_422(
    client: httpx.Client, account: Account, op: Operation, case: str
) -> None:
    valid = json.dumps(op.body(account, op.valid_text)).encode()
    response = post(client, op, account, content=MALFORMED[case](valid))
    detail = assert_json_error(response, 422)
    assert detail[0]["loc"][0] == "body"


# -- content types ---------------------------------------------------------------------


def _multipart(fields: dict[str, Any]) -> bytes:
    parts = [
        f'--v5\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + "--v5--\r\n").encode()


CONTENT_TYPES: dict[str, tuple[str | None, Callable[[dict[str, Any]], bytes]]] = {
    "text-plain": ("text/plain", lambda body: json.dumps(body).encode()),
    "form-urlencoded": (
        "application/x-www-form-urlencoded",
        lambda body: urlencode({k: str(v) for k, v in body.items()}).encode(),
    ),
    "multipart": ("multipart/form-data; boundary=v5", _multipart),
    "xml": ("application/xml", lambda body: b"<user_id>x</user_id>"),
    "missing": (None, lambda body: json.dumps(body).encode()),
}


@operations()
@pytest.mark.parametrize("case", list(CONTENT_TYPES))
def test_a_body_that_is_not_json_is_422_everywhere(
    client: httpx.Client, account: Account, op: Operation, case: str
) -> None:
    content_type, encode = CONTENT_TYPES[case]
    body = op.body(account, op.valid_text)
    response = post(client, op, account, content=encode(body), content_type=content_type)
    detail = assert_json_error(response, 422)
    # The same answer from every service: the body as a whole is not a JSON object.
    assert [(e["loc"], e["type"]) for e in detail] == [(["body"], "model_attributes_type")]
    # And nothing happened: the same body as JSON gets its ordinary answer (a registration
    # would be a 409 had the first attempt created the account).
    again = post(client, op, account, json_body=body)
    assert again.status_code == ACCEPTED[op.name], again.text


# -- encodings -------------------------------------------------------------------------

# Raw bytes in place of a JSON string (quotes included where the case needs them).
BAD_STRINGS = {
    "invalid-bytes": b'"ab\xff\xfecd"',
    "latin-1": b'"caf\xe9"',
    "overlong-slash": b'"\xc0\xaf"',
    "truncated-sequence": b'"\xe2\x82"',
    "encoded-surrogate": b'"\xed\xa0\x80"',
    "beyond-unicode": b'"\xf4\x90\x80\x80"',
    "escaped-high-surrogate": b'"a\\ud800b"',
    "escaped-low-surrogate": b'"a\\udc00b"',
}


@operations()
@pytest.mark.parametrize("case", list(BAD_STRINGS))
def test_invalid_utf8_in_a_string_is_422(
    client: httpx.Client, account: Account, op: Operation, case: str
) -> None:
    response = post(client, op, account, content=op.raw_body(account, BAD_STRINGS[case]))
    assert [e["type"] for e in assert_json_error(response, 422)] == ["json_invalid"]


WHOLE_BODY_ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-32": lambda text: text.encode("utf-32"),
    "utf-8-bom": lambda text: b"\xef\xbb\xbf" + text.encode(),
}


@operations()
@pytest.mark.parametrize("encoding", list(WHOLE_BODY_ENCODINGS))
def test_a_body_not_in_utf8_is_422(
    client: httpx.Client, account: Account, op: Operation, encoding: str
) -> None:
    text = json.dumps(op.body(account, op.valid_text))
    response = post(client, op, account, content=WHOLE_BODY_ENCODINGS[encoding](text))
    assert [e["type"] for e in assert_json_error(response, 422)] == ["json_invalid"]


# -- control characters ----------------------------------------------------------------


@operations("register", "conversation", "recommendation", "reward")
@pytest.mark.parametrize("char", list(CONTROL_CHARACTERS))
def test_control_characters_in_a_body_user_id_are_422(
    client: httpx.Client, account: Account, op: Operation, char: str
) -> None:
    body = op.body(account, op.valid_text)
    body["user_id"] = f"{body['user_id'][:5]}{CONTROL_CHARACTERS[char]}{body['user_id'][5:]}"
    detail = assert_json_error(post(client, op, account, json_body=body), 422)
    assert [e["loc"] for e in detail] == [["body", "user_id"]]


@operations("register", "conversation", "recommendation", "reward")
def test_a_final_newline_after_a_user_id_is_422(
    client: httpx.Client, account: Account, op: Operation
) -> None:
    # The pattern's `$` must not accept a trailing newline (as Python's `re` would).
    body = op.body(account, op.valid_text)
    body["user_id"] += "\n"
    detail = assert_json_error(post(client, op, account, json_body=body), 422)
    assert [e["loc"] for e in detail] == [["body", "user_id"]]


@pytest.mark.parametrize("char", list(CONTROL_CHARACTERS))
def test_control_characters_in_a_login_are_a_wrong_login(
    client: httpx.Client, account: Account, char: str
) -> None:
    control = CONTROL_CHARACTERS[char]
    for body in (
        {"user_id": account.user_id + control, "password": account.password},
        {"user_id": account.user_id, "password": account.password + control},
    ):
        response = send(client, "POST", f"{API}/auth/token", json_body=body)
        assert assert_json_error(response, 401) == "incorrect user_id or password"


# The user-scoped operations with a user_id in the path: method, path, body.
PATH_OPERATIONS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "session-status": ("GET", f"{API}/session/{{}}/status", None),
    "session-delete": ("DELETE", f"{API}/session/{{}}", None),
    "weights-get": ("GET", f"{API}/learning/weights/{{}}", None),
    "weights-post": ("POST", f"{API}/learning/weights/{{}}", {"action": "reset"}),
}


@pytest.mark.parametrize("path_op", list(PATH_OPERATIONS))
@pytest.mark.parametrize("char", list(CONTROL_CHARACTERS))
def test_control_characters_in_a_path_user_id_are_refused(
    client: httpx.Client, account: Account, path_op: str, char: str
) -> None:
    method, template, body = PATH_OPERATIONS[path_op]
    user_id = account.user_id + CONTROL_CHARACTERS[char]
    url = template.format(quote(user_id, safe=""))
    response = send(client, method, url, json_body=body, headers=account.headers)
    if char == "nul":
        # nginx refuses a NUL in the request line before any service sees it.
        assert assert_json_error(response, 400) == "bad request"
    else:
        detail = assert_json_error(response, 422)
        assert [e["loc"] for e in detail] == [["path", "user_id"]]


def status_window(client: httpx.Client, account: Account) -> list[str]:
    status = send(client, "GET", f"{API}/session/{account.user_id}/status", headers=account.headers)
    assert status.status_code == 200, status.text
    return [turn["message"] for turn in status.json()["window"]]


def say(client: httpx.Client, account: Account, message: str) -> httpx.Response:
    return send(
        client,
        "POST",
        f"{API}/conversation/continue",
        json_body={"user_id": account.user_id, "message": message},
        headers=account.headers,
    )


def test_control_characters_in_a_message_are_kept_verbatim(client: httpx.Client) -> None:
    # Inside the text: API.md strips surrounding white space, which in Python's sense
    # includes \x1c-\x1f, U+2028 and others.
    listener = make_account(client)
    sent = [f"play{c}this" for c in CONTROL_CHARACTERS.values()] + [f"<{ALL_CONTROLS}>"]
    assert len(sent) <= 10  # the window holds the last 10 turns
    for message in sent:
        response = say(client, listener, message)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
    assert status_window(client, listener) == sent


def test_control_characters_in_a_password_are_part_of_it(client: httpx.Client) -> None:
    password = f"pass{ALL_CONTROLS}word"
    holder = make_account(client, password)
    assert login(client, {"user_id": holder.user_id, "password": password})
    without = {"user_id": holder.user_id, "password": "password"}
    assert_json_error(send(client, "POST", f"{API}/auth/token", json_body=without), 401)


@pytest.mark.parametrize("char", list(CONTROL_CHARACTERS))
def test_control_characters_in_looked_up_names_are_refused(
    client: httpx.Client, account: Account, char: str
) -> None:
    control = CONTROL_CHARACTERS[char]
    uid = account.user_id
    headers = account.headers
    # Inside the name: around it white space is trimmed ("jazz\t" is jazz), and genres are
    # compared with white space removed (aliases such as "hip hop"), so "jazzjazz" it is.
    for context in ({"mood": f"ha{control}ppy"}, {"genres": [f"jazz{control}jazz"]}):
        response = send(
            client,
            "POST",
            f"{API}/recommendation/adaptive",
            json_body={"user_id": uid, "context": context},
            headers=headers,
        )
        assert_json_error(response, 422)
    feedback = {"action": "feedback", "track_id": f"v5t-000001{control}", "feedback": "like"}
    response = send(
        client, "POST", f"{API}/learning/weights/{uid}", json_body=feedback, headers=headers
    )
    assert assert_json_error(response, 404) == "unknown track_id"
    reward = {"user_id": uid, "recommendation_id": f"r{control}", "track_id": "t", "event": "like"}
    response = send(client, "POST", f"{API}/feedback/reward", json_body=reward, headers=headers)
    assert assert_json_error(response, 404) == "unknown recommendation_id"
    track = send(client, "GET", f"{API}/catalog/tracks/{quote('v5t-1' + control)}", headers=headers)
    assert_json_error(track, 400 if char == "nul" else 404)


# -- deep nesting ----------------------------------------------------------------------

DEPTH = 10_000


def _arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


NESTING: dict[str, Callable[[Operation, Account], bytes]] = {
    "arrays-as-body": lambda op, a: _arrays(DEPTH),
    "objects-as-body": lambda op, a: _objects(DEPTH),
    "arrays-in-a-field": lambda op, a: op.raw_body(a, _arrays(DEPTH)),
    "objects-in-a-field": lambda op, a: op.raw_body(a, _objects(DEPTH)),
    # Below orjson's depth limit of 1024: parsed, then refused by the schema.
    "1000-arrays-in-a-field": lambda op, a: op.raw_body(a, _arrays(1000)),
    "1000-objects-in-a-field": lambda op, a: op.raw_body(a, _objects(1000)),
}


@operations()
@pytest.mark.parametrize("case", list(NESTING))
def test_deep_nesting_is_a_fast_422(
    client: httpx.Client, cluster: LocalCluster, account: Account, op: Operation, case: str
) -> None:
    content = NESTING[case](op, account)
    assert len(content) <= BODY_LIMIT  # the service's answer, not the gateway's 413
    assert_json_error(post(client, op, account, content=content), 422)
    assert_ready(cluster, op.service)


def test_deep_nesting_in_a_free_form_value_is_422(client: httpx.Client, account: Account) -> None:
    # The explicit weights are a mapping of any JSON values, checked one by one.
    for nested in (_arrays(1000), _objects(1000)):
        content = b'{"action": "explicit", "weights": {"genre_match": ' + nested + b"}}"
        response = send(
            client,
            "POST",
            f"{API}/learning/weights/{account.user_id}",
            content=content,
            headers=account.headers,
        )
        assert_json_error(response, 422)


# -- sizes -----------------------------------------------------------------------------


def _chunks(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), 4096):
        yield content[start : start + 4096]


@operations()
@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_body_over_64_kib_is_a_json_413(
    client: httpx.Client, account: Account, op: Operation, transfer: str
) -> None:
    content = json.dumps(op.body(account, "x" * (BODY_LIMIT + 100))).encode()
    response = post(
        client, op, account, content=content if transfer == "content-length" else _chunks(content)
    )
    assert "64 KiB" in assert_json_error(response, 413)


@operations()
def test_a_body_of_exactly_64_kib_reaches_the_service(
    client: httpx.Client, account: Account, op: Operation
) -> None:
    # 65,536 bytes are allowed, one more is not; at the limit, the service's field limits
    # apply (every text field here allows far fewer characters).
    shell = len(op.raw_body(account, b'""'))
    content = op.raw_body(account, json.dumps("y" * (BODY_LIMIT - shell)).encode())
    assert len(content) == BODY_LIMIT
    assert_json_error(post(client, op, account, content=content), 422)
    response = post(client, op, account, content=content + b" ")
    assert_json_error(response, 413)


def _adaptive(**fields: Any) -> Callable[[Account], dict[str, Any]]:
    return lambda a: {"user_id": a.user_id, **fields}


# Within 64 KiB, beyond a field's limit in API.md (or the schema): operation, body, status.
FIELD_LIMITS: dict[str, tuple[str, Callable[[Account], dict[str, Any]], int]] = {
    "exclude-500-ids": ("recommendation", _adaptive(exclude_track_ids=["t"] * 500), 200),
    "exclude-501-ids": ("recommendation", _adaptive(exclude_track_ids=["t"] * 501), 422),
    "exclude-10000-ids": ("recommendation", _adaptive(exclude_track_ids=["t"] * 10_000), 422),
    "exclude-id-129-chars": ("recommendation", _adaptive(exclude_track_ids=["t" * 129]), 422),
    "limit-0": ("recommendation", _adaptive(limit=0), 422),
    "limit-51": ("recommendation", _adaptive(limit=51), 422),
    "limit-negative": ("recommendation", _adaptive(limit=-1), 422),
    "limit-huge": ("recommendation", _adaptive(limit=10**30), 422),
    "limit-fraction": ("recommendation", _adaptive(limit=2.5), 422),
    "genres-21": ("recommendation", _adaptive(context={"genres": ["jazz"] * 21}), 422),
    "artists-21": ("recommendation", _adaptive(context={"artists": ["x"] * 21}), 422),
    "mood-65-chars": ("recommendation", _adaptive(context={"mood": "m" * 65}), 422),
    "message-1000-emoji": (
        "conversation",
        lambda a: {"user_id": a.user_id, "message": "\U0001f3b5" * 1000},
        200,
    ),
    "message-1001-chars": (
        "conversation",
        lambda a: {"user_id": a.user_id, "message": "m" * 1001},
        422,
    ),
    "message-60000-chars": (
        "conversation",
        lambda a: {"user_id": a.user_id, "message": "m" * 60_000},
        422,
    ),
    "password-129-chars": (
        "register",
        lambda a: {"user_id": new_user_id("big"), "password": "p" * 129},
        422,
    ),
    "user-id-65-chars": ("register", lambda a: {"user_id": "u" * 65, "password": "p" * 8}, 422),
    "login-password-1025-chars": (
        "token",
        lambda a: {"user_id": a.user_id, "password": "p" * 1025},
        422,
    ),
    "explicit-33-weights": (
        "weights",
        lambda a: {"action": "explicit", "weights": {f"w{i}": 0.5 for i in range(33)}},
        422,
    ),
    "track-id-129-chars": (
        "weights",
        lambda a: {"action": "feedback", "track_id": "t" * 129, "feedback": "like"},
        422,
    ),
    "recommendation-id-65-chars": (
        "reward",
        lambda a: {
            "user_id": a.user_id,
            "recommendation_id": "r" * 65,
            "track_id": "t",
            "event": "like",
        },
        422,
    ),
    "listen-ratio-over-1": (
        "reward",
        lambda a: {
            "user_id": a.user_id,
            "recommendation_id": "r",
            "track_id": "t",
            "event": "play",
            "listen_ratio": 1.5,
        },
        422,
    ),
}


@pytest.mark.parametrize("case", list(FIELD_LIMITS))
def test_field_limits_within_the_body_limit(
    client: httpx.Client, account: Account, case: str
) -> None:
    name, body, status = FIELD_LIMITS[case]
    op = BY_NAME[name]
    content = json.dumps(body(account)).encode()
    assert len(content) <= BODY_LIMIT
    response = post(client, op, account, content=content)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_json_error(response, status)


# -- injection strings -----------------------------------------------------------------


@dataclass(frozen=True)
class Talker:
    """A listener who says every injection, and what the session must hold afterwards."""

    account: Account
    said: list[str]


@pytest.fixture(scope="module")
def talker(client: httpx.Client) -> Talker:
    return Talker(make_account(client), [])


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_an_injection_in_a_message_is_kept_verbatim(
    client: httpx.Client, talker: Talker, name: str
) -> None:
    text = INJECTIONS[name]
    response = say(client, talker.account, text)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    # Verbatim but for the surrounding white space that API.md strips from a message.
    talker.said.append(text.strip())
    assert status_window(client, talker.account)[-1] == text.strip()


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_an_injection_in_a_password_is_just_a_password(client: httpx.Client, name: str) -> None:
    password = INJECTIONS[name].ljust(8, "!")
    holder = make_account(client, password)
    wrong = {"user_id": holder.user_id, "password": password + "?"}
    assert_json_error(send(client, "POST", f"{API}/auth/token", json_body=wrong), 401)


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_an_injection_in_other_fields_is_refused_as_data(
    client: httpx.Client, account: Account, name: str
) -> None:
    text = INJECTIONS[name]
    uid, headers = account.user_id, account.headers

    def post_json(path: str, body: dict[str, Any], auth: bool = True) -> httpx.Response:
        return send(client, "POST", f"{API}{path}", json_body=body, headers=headers if auth else {})

    register = post_json("/auth/register", {"user_id": text, "password": "p" * 8}, auth=False)
    assert [e["loc"] for e in assert_json_error(register, 422)] == [["body", "user_id"]]
    token = post_json("/auth/token", {"user_id": text, "password": "p" * 8}, auth=False)
    assert_json_error(token, 401)
    for field, value in (("mood", text), ("genres", [text]), ("artists", [text])):
        refused = post_json("/recommendation/adaptive", {"user_id": uid, "context": {field: value}})
        # The refusal quotes the value back: as JSON data, under nosniff.
        assert [e["loc"] for e in assert_json_error(refused, 422)] == [["body", "context", field]]
    excluded = post_json("/recommendation/adaptive", {"user_id": uid, "exclude_track_ids": [text]})
    assert excluded.status_code == 200, excluded.text
    feedback = {"action": "feedback", "track_id": text, "feedback": "like"}
    assert_json_error(post_json(f"/learning/weights/{uid}", feedback), 404)
    reward = {"user_id": uid, "recommendation_id": text, "track_id": text, "event": "like"}
    assert_json_error(post_json("/feedback/reward", reward), 404)
    weights = {"action": "explicit", "weights": {text: 0.5}}
    assert_json_error(post_json(f"/learning/weights/{uid}", weights), 422)


# Paths with a parameter; {} is where the (percent-encoded) string goes.
PARAMETER_PATHS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    **PATH_OPERATIONS,
    "track": ("GET", f"{API}/catalog/tracks/{{}}", None),
}


@pytest.mark.parametrize("path_op", list(PARAMETER_PATHS))
@pytest.mark.parametrize("name", list(INJECTIONS))
def test_an_injection_in_a_path_parameter_is_a_4xx(
    client: httpx.Client, account: Account, path_op: str, name: str
) -> None:
    method, template, body = PARAMETER_PATHS[path_op]
    url = template.format(quote(INJECTIONS[name], safe=""))
    response = send(client, method, url, json_body=body, headers=account.headers)
    # 404: no such track, or an encoded "/" that makes the path another (unknown) one;
    # 422: not a user_id; 400: the gateway refuses the request line.
    assert response.status_code in (400, 404, 422), (url, response.status_code, response.text)
    assert_json_error(response, response.status_code)


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_an_injection_in_a_query_is_just_an_unknown_genre(
    client: httpx.Client, account: Account, name: str
) -> None:
    response = send(
        client,
        "GET",
        f"{API}/catalog/artists?{urlencode({'genre': INJECTIONS[name][:64]})}",
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["artists"] == []


@pytest.mark.parametrize(
    "target",
    [
        f"{API}/catalog/tracks/../../../../etc/passwd",
        f"{API}/session/../../../etc/passwd/status",
        f"{API}/learning/weights/..%2f..%2f..%2fetc%2fpasswd",
        f"{API}/catalog/tracks/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/../../etc/passwd",
        "/api/v1/v5/../../../etc/passwd",
    ],
)
def test_path_traversal_as_sent_is_a_json_4xx(
    gateway_url: str, account: Account, server_errors: ServerErrors, target: str
) -> None:
    # Sent as is: httpx would resolve the dot segments before sending them.
    address = urlsplit(gateway_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        started = time.monotonic()
        connection.request("GET", target, headers=account.headers)
        answer = connection.getresponse()
        body = answer.read()
        assert time.monotonic() - started < ANSWER_WITHIN_SECONDS
    finally:
        connection.close()
    server_errors.record("GET", target, answer.status)
    assert answer.status in (400, 404), (target, answer.status, body[:200])
    assert answer.getheader("content-type", "").startswith("application/json")
    assert answer.getheader("x-content-type-options") == "nosniff"
    assert isinstance(json.loads(body)["detail"], str)
    assert b"root:" not in body


def test_the_data_is_all_still_there(
    client: httpx.Client, baseline: Baseline, talker: Talker
) -> None:
    # After the injections (run above): no table dropped, no Redis database flushed, no
    # session lost: the witness's from before them, and the talker's every turn.
    witness = baseline.witness
    assert status_window(client, witness) == [baseline.witness_message]
    for holder in (witness, talker.account):
        assert login(client, {"user_id": holder.user_id, "password": holder.password})
    status = send(
        client,
        "GET",
        f"{API}/session/{talker.account.user_id}/status",
        headers=talker.account.headers,
    ).json()
    assert status["turns"] == len(talker.said)
    assert [turn["message"] for turn in status["window"]] == talker.said[-10:]
    stats = send(client, "GET", f"{API}/catalog/stats", headers=witness.headers)
    assert stats.json() == baseline.catalog_stats
    genres = send(client, "GET", f"{API}/catalog/genres", headers=witness.headers)
    assert genres.json()["genres"] == baseline.genres
    track = send(client, "GET", f"{API}/catalog/tracks/v5t-000001", headers=witness.headers)
    assert track.status_code == 200, track.text


# -- afterwards ------------------------------------------------------------------------


def test_no_server_error_and_every_replica_still_ready(
    cluster: LocalCluster, baseline: Baseline, server_errors: ServerErrors
) -> None:
    # Last in the module: nothing above got a 5xx, crashed a process (supervisord would have
    # restarted it under a new pid) or left a replica unready.
    assert server_errors.seen == []
    assert _pids(cluster) == baseline.pids
    for service in SERVICES:
        assert_ready(cluster, service)
