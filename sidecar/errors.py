"""The one error tree of the sidecar.

Every error a user can see is a ``SidecarError`` with a stable ``code`` (the value of the
``X-OpenClaw-Sidecar-Error`` header and of the CLI's message prefix) and an HTTP ``status``::

    SidecarError
    ├── ConfigError              config_invalid        start-up only: names the key
    ├── StoreError               store_unreadable 500  a store that does not parse; nothing written
    │   ├── StoreLocked          store_locked     503  a lock could not be had in time
    │   ├── StoreUnsupported     store_unsupported 500 a layout this version cannot serve
    │   └── StoreReadOnly        store_read_only  409  era-D/future store, or read-only folder
    ├── RouteError               (400/401/403/404)     what a request asked for cannot be served
    │   InvalidAgent, InvalidPath, CallerUnauthorized, AgentMismatch, UnknownProvider,
    │   UnknownAgent (404: the state dir has no such agent), NoProfile,
    │   NoEndpoint (a per-user endpoint neither the profile nor the config gives),
    │   RepeatedBasePath (404: the client's base URL repeats the end of the provider's base_url),
    │   UpgradeUnsupported (426: websockets are not proxied; clients fall back to HTTP),
    │   and at the listener's edge (``proxy/edge.py``): InvalidFraming (400: ambiguous body
    │   framing, connection closed), MethodNotAllowed (405: TRACE, CONNECT)
    ├── HeadTimeout, TooManyConnections  (408, 503; ``proxy/admission.py``) a connection refused
    │   before its request is read: a head too slow, a listener at its connection cap
    ├── ProfilesCooling          all_profiles_cooling 429  every usable profile is resting;
    │                                                  Retry-After: the soonest one's end
    ├── RefreshError
    │   ├── ReauthRequired       reauth_required  401  the refresh token was rejected
    │   └── RefreshUnavailable   refresh_unavailable 503  token endpoint down or slow
    └── UpstreamError
        ├── UpstreamUnavailable  upstream_unavailable 502
        └── UpstreamTimeout      upstream_timeout 504

Messages say what was wrong and what to do, naming the file, profile or route; they never
contain a secret. Outside exceptions are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence


class SidecarError(Exception):
    """Base of every error the sidecar reports to a user."""

    code: str = "internal_error"
    status: int = 500
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigError(SidecarError):
    """``problems``: everything found wrong, each naming its key; ``message`` says them all on
    one line (numbered when there are several), so one run of the sidecar reports every one."""

    code = "config_invalid"
    status = 500

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)

    @classmethod
    def of(cls, problems: Sequence[str], *, where: str = "") -> ConfigError:
        prefix = f"{where}: " if where else ""
        if len(problems) == 1:
            return cls(prefix + problems[0], problems=problems)
        numbered = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        return cls(f"{prefix}{len(problems)} errors: {numbered}", problems=problems)


class StoreError(SidecarError):
    code = "store_unreadable"
    status = 500


class StoreLocked(StoreError):
    code = "store_locked"
    status = 503


class StoreUnsupported(StoreError):
    code = "store_unsupported"
    status = 500


class StoreReadOnly(StoreError):
    code = "store_read_only"
    status = 409


class RouteError(SidecarError):
    code = "invalid_path"
    status = 400


class InvalidAgent(RouteError):
    code = "invalid_agent"
    status = 400


class InvalidPath(RouteError):
    code = "invalid_path"
    status = 400


class CallerUnauthorized(RouteError):
    code = "caller_unauthorized"
    status = 401


class AgentMismatch(RouteError):
    code = "agent_mismatch"
    status = 403


class UnknownProvider(RouteError):
    code = "unknown_provider"
    status = 404


class UnknownAgent(RouteError):
    code = "unknown_agent"
    status = 404


class NoProfile(RouteError):
    code = "no_profile"
    status = 404


class NoEndpoint(RouteError):
    code = "no_endpoint"
    status = 404


class RepeatedBasePath(RouteError):
    """The path repeats the end of the provider's base_url (``…/my-llm/v1`` for a base_url
    ending in ``/v1`` sends ``/v1/v1/…``): the client's base URL goes one level too deep."""

    code = "repeated_base_path"
    status = 404


class UpgradeUnsupported(RouteError):
    code = "upgrade_unsupported"
    status = 426


class ProfilesCooling(SidecarError):
    """Every profile the request could use is in its cooldown: nothing is sent upstream."""

    code = "all_profiles_cooling"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RefreshError(SidecarError):
    code = "refresh_unavailable"
    status = 503


class ReauthRequired(RefreshError):
    code = "reauth_required"
    status = 401


class RefreshUnavailable(RefreshError):
    code = "refresh_unavailable"
    status = 503


class UpstreamError(SidecarError):
    code = "upstream_unavailable"
    status = 502


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    status = 502


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    status = 504
