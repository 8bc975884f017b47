"""REDIS_URL forms: one Redis server (``redis://``, ``rediss://``, ``unix://``, read by
redis-py itself), or a Redis Sentinel set that names the current master::

    redis+sentinel://[[user]:password@]host1:26379,host2:26379,host3:26379/<master-name>[/<db>]
        [?sentinel_username=...&sentinel_password=...]

The user and password are the Redis master's (and its replicas'); ``sentinel_username`` and
``sentinel_password`` are the sentinels' own, when they require one. A host without a port
means 26379, an IPv6 address is written in brackets (``[::1]:26379``), and user, password,
master name and query values may be percent-encoded. Timeouts and the pool size come from
the REDIS_* settings, as for a single server, so they are not accepted in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_QUERY_PARAMETERS = frozenset({"sentinel_username", "sentinel_password"})
_FORM = "redis+sentinel://[[user]:password@]host:port[,host:port...]/<master-name>[/<db>]"


class RedisURLError(ValueError):
    """REDIS_URL cannot be used; the message says why and shows the expected form."""


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:
        # Never show a password in a log line or a traceback.
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"SentinelURL({hosts}/{self.master_name}/{self.db})"


def _error(reason: str) -> RedisURLError:
    return RedisURLError(f"REDIS_URL: {reason} (expected {_FORM})")


def _parse_address(item: str) -> tuple[str, int]:
    if not item:
        raise _error("empty sentinel address (two commas in a row, or a trailing comma)")
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or not host:
            raise _error(f"sentinel address {item!r} has an unclosed IPv6 bracket")
        if rest and not rest.startswith(":"):
            raise _error(f"sentinel address {item!r}: expected ':port' after ']'")
        port_text = rest[1:] if rest else ""
    else:
        if item.count(":") > 1:
            raise _error(f"sentinel address {item!r}: write an IPv6 address as [addr]:port")
        host, colon, port_text = item.partition(":")
        if not host:
            raise _error(f"sentinel address {item!r} has no host")
        if colon and not port_text:
            raise _error(f"sentinel address {item!r} has an empty port")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _error(f"sentinel address {item!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse a ``redis+sentinel://`` URL; RedisURLError with the reason when it is wrong."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise _error(f"not a URL: {exc}") from None
    if parts.scheme.lower() != SENTINEL_SCHEME:
        raise _error(f"scheme {parts.scheme!r} is not {SENTINEL_SCHEME!r}")
    if parts.fragment:
        raise _error("a '#' fragment is not allowed")

    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon and password_text else None
    if not hostlist:
        raise _error("no sentinel addresses")
    sentinels = tuple(_parse_address(item.strip()) for item in hostlist.split(","))
    if len(set(sentinels)) != len(sentinels):
        raise _error("a sentinel address is listed twice")

    segments = parts.path.split("/")[1:] if parts.path else []
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if not segments or not segments[0]:
        raise _error("no master name: add /<master-name> after the sentinel addresses")
    if len(segments) > 2:
        raise _error(f"path {parts.path!r} has more than /<master-name>/<db>")
    master_name = unquote(segments[0])
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise _error(f"database {segments[1]!r} is not a non-negative integer")
        db = int(segments[1])

    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise _error(f"the query string is malformed ({exc})") from None
    unknown = sorted(set(query) - SENTINEL_QUERY_PARAMETERS)
    if unknown:
        raise _error(
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(SENTINEL_QUERY_PARAMETERS))} (timeouts and the pool size are "
            "REDIS_CONNECT_TIMEOUT_SECONDS, REDIS_SOCKET_TIMEOUT_SECONDS, REDIS_MAX_CONNECTIONS)"
        )
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise _error(f"query parameter(s) given more than once: {', '.join(repeated)}")

    return SentinelURL(
        sentinels=sentinels,
        master_name=master_name,
        db=db,
        username=username,
        password=password,
        sentinel_username=query.get("sentinel_username", [""])[0] or None,
        sentinel_password=query.get("sentinel_password", [""])[0] or None,
    )


def sentinel_url(url: str) -> SentinelURL | None:
    """The parsed Sentinel set for a ``redis+sentinel://`` URL, None for any other form
    (left to redis-py exactly as before: it names the schemes it accepts when one is
    wrong). RedisURLError when the URL means a Sentinel set but cannot work. The messages
    never repeat a password."""
    scheme = url.strip().partition(":")[0].lower()
    if "sentinel" in scheme and scheme != SENTINEL_SCHEME:
        raise _error(f"scheme {scheme!r} is not supported; a Sentinel set is {SENTINEL_SCHEME}://")
    return parse_sentinel_url(url) if scheme == SENTINEL_SCHEME else None
