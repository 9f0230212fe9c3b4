"""Routing: which agent, provider and profile a request names, and the one URL it may go to.

Pure: the app passes the raw path and headers in; a credential only ever goes under its
provider's configured base URL, whatever the path, Host header or request target say.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

import yarl

from sidecar.errors import (
    AgentMismatch,
    InvalidAgent,
    InvalidPath,
    RepeatedBasePath,
    UnknownProvider,
)
from sidecar.providers.ids import route_provider
from sidecar.sources.openclaw.layout import is_valid_agent_id

RESERVED_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
UI_PREFIX: Final = "/ui"  # the page and its API (sidecar/ui/); "ui" is no provider's name
AGENT_HEADER: Final = "x-openclaw-agent"
PROFILE_HEADER: Final = "x-openclaw-profile"
AGENTS_PREFIX: Final = "agents"
MAX_PROFILE_ID_LENGTH: Final = 200
_AGENT_RULE = "must match ^[a-z0-9][a-z0-9_-]{0,63}$"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Enough for any honest client; a segment still changing after this many decodes is an attack.
_MAX_DECODE_ROUNDS = 4
_SHOWN_LENGTH = 64
# Fast paths: a path of visible ASCII without '\\', '?', '#' (what nearly every request is), a
# segment with nothing to decode, a query of visible ASCII without '#'. Anything else takes the
# checks that name what is wrong.
_PLAIN_PATH = re.compile(rb"/[!\"$->@-\[\]-~]*")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]*")
_PLAIN_QUERY = re.compile(rb"[!-\"$-~]*")


def is_ui_path(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


@dataclass(frozen=True)
class Route:
    agent: str
    provider: str
    profile_id: str | None
    upstream_path: str  # "" or "/…", percent-encoding kept as received


def resolve_route(
    raw_path: bytes,
    headers: Mapping[str, str],
    *,
    bound_agent: str | None,
    default_agent: str,
    providers: Collection[str],
) -> Route:
    """The route a request asks for: listener > path > header > default for the agent."""
    segments = _checked_path(raw_path).split("/")[1:]
    path_agent, segments = _split_agent(segments)
    provider, pin = _split_pin(segments[0])
    header_agent = _header_agent(headers.get(AGENT_HEADER))
    profile_id = pin if pin is not None else _header_profile(headers.get(PROFILE_HEADER))
    agent = _chosen_agent(path_agent, header_agent, bound_agent, default_agent)
    routed = route_provider(provider, providers)  # OpenClaw's case and aliases: /Z.AI/ is zai
    if routed is None:
        raise UnknownProvider(
            f"unknown provider {_shown(provider)}; `openclaw-sidecar providers` lists the "
            f"{len(providers)} configured"
        )
    rest = segments[1:]
    return Route(agent, routed, profile_id, "/" + "/".join(rest) if rest else "")


def codex_path(base_url: str, upstream_path: str) -> str:
    """OpenClaw 2026.9.x appends ``/codex/responses`` to any Codex base that does not end in
    ``/codex``, so pointing it at ``…/openai-codex`` would double the segment against the built-in
    ``…/backend-api/codex`` base; that one leading ``/codex`` is dropped."""
    if base_url.rstrip("/").endswith("/codex") and (
        upstream_path == "/codex" or upstream_path.startswith("/codex/")
    ):
        return upstream_path[len("/codex") :]
    return upstream_path


def repeated_base_tail(base_url: str, upstream_path: str) -> str | None:
    """The end of ``base_url``'s path that ``upstream_path`` starts with again (``/v1`` for a base
    ending in ``/v1`` and a path ``/v1/chat/completions``), or None.

    The client URL rule (README): ``/<provider>`` stands for the whole base_url, so a client's
    base URL never repeats a part of it. A client that does (``…/my-llm/v1`` for a base_url
    ending in ``/v1``) would send ``/v1/v1/…`` upstream: no API has such paths."""
    base = _base_segments(base_url)
    path = tuple(upstream_path.split("/")[1:])
    for k in range(len(base), 0, -1):
        if path[:k] == base[-k:]:
            return "/" + "/".join(base[-k:])
    return None


@functools.lru_cache(maxsize=1024)
def _base_segments(base_url: str) -> tuple[str, ...]:
    base = _parsed(base_url)
    return () if base is None else tuple(s for s in base.raw_path.split("/") if s)


@functools.lru_cache(maxsize=1024)
def _parsed_base(base_url: str) -> yarl.URL | None:
    return _parsed(base_url)


def _parsed(url: str) -> yarl.URL | None:
    """``url`` as aiohttp will send it (yarl, already encoded: nothing re-quoted), or None."""
    try:
        parsed = yarl.URL(url, encoded=True)
        # yarl reads the authority lazily: every part compared later is read (checked) here.
        if not (parsed.absolute and parsed.raw_host) or parsed.port is None:
            return None
        parsed.raw_user, parsed.raw_password, parsed.raw_path  # noqa: B018
    except (ValueError, TypeError):
        return None
    return parsed


@functools.lru_cache(maxsize=1024)
def upstream_url(
    base_url: str, upstream_path: str, query: bytes, *, provider: str | None = None
) -> yarl.URL:
    """``base_url`` + path (+ query), refused unless the result stays under ``base_url`` and the
    path does not start by repeating the end of ``base_url`` (``repeated_base_tail``). Parsed
    once, here, by the parser that sends it (aiohttp's yarl), and sent as it is.

    Pure, and agents repeat a few paths: the last 1,024 URLs made are kept (3.9 -> 0.2 us a
    request). A refusal is not kept (it raises), and a yarl URL cannot change."""
    if upstream_path and not upstream_path.startswith("/"):
        raise InvalidPath(f"upstream path {_shown(upstream_path)} must start with '/'")
    if any(segment in (".", "..") for segment in upstream_path.split("/")):
        raise InvalidPath(f"upstream path {_shown(upstream_path)} has a '.' or '..' segment")
    if _PLAIN_QUERY.fullmatch(query) is None:
        raise InvalidPath("the query string holds a space, control, '#' or non-ASCII byte")
    target = _uri_safe(upstream_path) + (f"?{_uri_safe(query.decode('ascii'))}" if query else "")
    url = _parsed(base_url + target)
    if url is None or not _stays_under(base_url, url):
        raise InvalidPath(f"the path {_shown(upstream_path)} would leave the provider's base URL")
    repeated = repeated_base_tail(base_url, upstream_path)
    if repeated is not None:
        name = provider or "the provider"
        raise RepeatedBasePath(
            f"the path {_shown(upstream_path)} repeats {repeated!r}, the end of {name}'s "
            f"base_url {base_url}: /{provider or '<provider>'} on the sidecar stands for the "
            f"whole base_url, so drop {repeated!r} from the end of the client's base URL "
            f"(`openclaw-sidecar wire` prints the URL for each client)"
        )
    return url


# What RFC 3986 forbids in a path or query (``"``, ``<``, ``>``, ``\\``, ``^``, `````, ``{|}``,
# and a ``%`` that starts no escape): percent-encoded, as httpx's URL encodes them; every other
# byte goes as it came.
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:/?@\[\]%]|%(?![0-9A-Fa-f]{2})")


def _uri_safe(text: str) -> str:
    if _NOT_URI.search(text) is None:
        return text
    return _NOT_URI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def _stays_under(base_url: str, target: yarl.URL) -> bool:
    base = _parsed_base(base_url)
    if base is None:
        return False
    if (base.scheme, base.raw_user, base.raw_password, base.raw_host, base.port) != (
        target.scheme,
        target.raw_user,
        target.raw_password,
        target.raw_host,
        target.port,
    ):
        return False
    base_path = base.raw_path.rstrip("/")
    return target.raw_path == base_path or target.raw_path.startswith(base_path + "/")


def _checked_path(raw_path: bytes) -> str:
    if _PLAIN_PATH.fullmatch(raw_path) is not None and not raw_path.startswith(b"//"):
        path = raw_path.decode("ascii")
        for segment in path.split("/"):
            _check_segment(segment)
        return path
    if not raw_path.startswith(b"/") or raw_path.startswith(b"//"):
        raise InvalidPath("the request target must be a path starting with a single '/'")
    if any(byte < 0x21 or byte > 0x7E for byte in raw_path):
        raise InvalidPath("the path holds a space, control or non-ASCII byte")
    if any(char in raw_path for char in b"\\?#"):
        raise InvalidPath("the path holds a '\\', '?' or '#'")
    path = raw_path.decode("ascii")
    for segment in path.split("/"):
        _check_segment(segment)
    return path


def _check_segment(segment: str) -> None:
    if _PLAIN_SEGMENT.fullmatch(segment) is not None:  # nothing to decode or fold
        if segment in (".", ".."):
            raise InvalidPath(f"'.' or '..' segment {_shown(segment)}")
        return
    if _BAD_ESCAPE.search(segment):
        raise InvalidPath(f"malformed percent-escape in {_shown(segment)}")
    decoded = _fully_decoded(segment)
    # NFKC catches look-alikes such as fullwidth dots and slashes that a server might fold.
    for form in (decoded, unicodedata.normalize("NFKC", decoded)):
        if "/" in form or "\\" in form:
            raise InvalidPath(f"encoded '/' or '\\' in {_shown(segment)}")
        if any(unicodedata.category(char) == "Cc" for char in form):
            raise InvalidPath(f"encoded control character in {_shown(segment)}")
        if form in (".", ".."):
            raise InvalidPath(f"'.' or '..' segment {_shown(segment)}")


def _fully_decoded(segment: str) -> str:
    """The segment percent-decoded until it stops changing, so %252e counts as '.'."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(segment, errors="replace")
        if decoded == segment:
            return decoded
        segment = decoded
    raise InvalidPath("the path is percent-encoded too many times over")


def _split_agent(segments: list[str]) -> tuple[str | None, list[str]]:
    if segments[0] != AGENTS_PREFIX:
        return None, segments
    if len(segments) < 2:
        raise InvalidPath("expected /agents/<agent>/<provider>/…")
    agent = segments[1]
    if not is_valid_agent_id(agent):
        raise InvalidAgent(f"agent id {_shown(agent)} in the path {_AGENT_RULE}")
    if len(segments) < 3:
        raise InvalidPath("expected /agents/<agent>/<provider>/…")
    return agent, segments[2:]


def _split_pin(segment: str) -> tuple[str, str | None]:
    """``provider[@profileId]``; profile ids may themselves hold '@', so split at the first."""
    provider, at, pin = segment.partition("@")
    if not provider:
        raise InvalidPath("the path has an empty provider segment")
    if not at:
        return provider, None
    try:
        return provider, _checked_profile(unquote(pin, errors="strict"), "the path")
    except UnicodeDecodeError:
        raise InvalidPath("the profile id in the path is not UTF-8") from None


def _checked_profile(profile_id: str, where: str) -> str:
    valid = 0 < len(profile_id) <= MAX_PROFILE_ID_LENGTH
    if not valid or not profile_id.isprintable() or "/" in profile_id:
        raise InvalidPath(
            f"the profile id in {where} must be 1-{MAX_PROFILE_ID_LENGTH} printable "
            "characters without '/'"
        )
    return profile_id


def _header_agent(value: str | None) -> str | None:
    if value is not None and not is_valid_agent_id(value):
        raise InvalidAgent(f"agent id {_shown(value)} in X-OpenClaw-Agent {_AGENT_RULE}")
    return value


def _header_profile(value: str | None) -> str | None:
    return None if value is None else _checked_profile(value, "X-OpenClaw-Profile")


def _chosen_agent(
    path_agent: str | None, header_agent: str | None, bound_agent: str | None, default: str
) -> str:
    named = [agent for agent in (path_agent, header_agent) if agent is not None]
    if bound_agent is None:
        return named[0] if named else default
    for agent in named:
        if agent != bound_agent:
            raise AgentMismatch(
                f"this listener serves only agent {bound_agent!r}; the request named {agent!r}"
            )
    return bound_agent


def _shown(value: str) -> str:
    """A client-supplied value made safe and short for an error message."""
    if len(value) > _SHOWN_LENGTH:
        value = value[:_SHOWN_LENGTH] + "…"
    return repr(value)
