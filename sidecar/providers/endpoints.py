"""Where a request with a given profile goes: the provider's base URL, or for a per-user endpoint
(a Foundry resource, a Cloudflare gateway, a Copilot enterprise tenant) the one OpenClaw keeps in
the profile, else the config's, else an error naming the key to set. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from sidecar.errors import NoEndpoint
from sidecar.providers.spec import Endpoint, EndpointField, ProviderSpec

_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# GitHub Copilot's data-residency tenants; OpenClaw 2026.9.6 (github-copilot/domain.ts) accepts
# no other enterprise host, so a stored token never goes to an arbitrary one.
_GHE_TENANT: Final = re.compile(r"[a-z0-9-]+\.ghe\.com")
# OpenClaw's normalizeFoundryEndpoint (2026.9.6): the resource root, without an API suffix.
_FOUNDRY_SUFFIX: Final = re.compile(r"/(?:openai|anthropic)(?:$|/).*", re.IGNORECASE)


def base_url_for(spec: ProviderSpec, profile: Mapping[str, Any], profile_id: str) -> str:
    """The base URL for a request with this profile: where the provider's OAuth logins go, for
    one (xAI's Grok CLI proxy); the profile's endpoint (where OpenClaw keeps it); else
    ``spec.base_url`` (the catalog's or the config's); else ``NoEndpoint``."""
    if spec.oauth_base_url and profile.get("type") == "oauth":
        return spec.oauth_base_url
    endpoint = spec.endpoint
    if endpoint is not None and endpoint.template is not None:
        found = _from_profile(spec.name, endpoint.template, endpoint, profile, profile_id)
        if found is not None:
            return found
    if spec.base_url:
        return spec.base_url
    raise NoEndpoint(missing_message(spec, profile_id))


def missing_message(spec: ProviderSpec, profile_id: str | None) -> str:
    """What to set when a provider's endpoint is nowhere to be found."""
    endpoint = spec.endpoint
    where = ""
    if endpoint is not None and endpoint.fields:
        paths = " and ".join(f.path for f in endpoint.fields)
        whose = f"profile {profile_id!r} has no {paths}" if profile_id else f"OpenClaw's {paths}"
        where = f" ({whose})"
    key = endpoint.config_key if endpoint is not None else f"providers.{spec.name}.base_url"
    table, _, field = key.rpartition(".")
    default = endpoint.openclaw_default if endpoint is not None else None
    example = f', e.g. "{default}" (OpenClaw\'s default)' if default else ""
    return (
        f"provider {spec.name!r} needs its own endpoint{where}: set {field} in "
        f"[{table}] of the sidecar config{example}"
    )


def _from_profile(
    provider: str,
    template: str,
    endpoint: Endpoint,
    profile: Mapping[str, Any],
    profile_id: str,
) -> str | None:
    """``template`` filled from the profile; ``None`` when a field is absent."""
    values: dict[str, str] = {}
    for item in endpoint.fields:
        raw = _lookup(profile, item.path)
        if raw is None:
            return None
        value = _checked(provider, item, raw, profile_id)
        if value is None:
            return None
        values[item.placeholder] = value
    return template.format(**values)


def _lookup(profile: Mapping[str, Any], path: str) -> str | None:
    value: Any = profile
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _checked(provider: str, item: EndpointField, raw: str, profile_id: str) -> str | None:
    """The value a template may hold, ``None`` for "the public default", else ``NoEndpoint``."""
    if item.check == "ghe-tenant":
        value = raw.lower()
        if value == "github.com":
            return None
        if _GHE_TENANT.fullmatch(value):
            return value
    elif item.check == "id" and _ID.fullmatch(raw):
        return raw
    elif item.check == "url":
        url = _resource_url(raw)
        if url is not None:
            return url
    raise NoEndpoint(
        f"profile {profile_id!r} has an {item.path} that is not a usable {provider} endpoint "
        f"({_EXPECTED[item.check]}); store the profile again with OpenClaw"
    )


_EXPECTED: Final = {
    "ghe-tenant": "a *.ghe.com tenant or github.com",
    "id": "letters, digits, '-' and '_'",
    "url": "an https URL without credentials, query or fragment",
}


def _resource_url(raw: str) -> str | None:
    """An https endpoint as OpenClaw normalises it (query, fragment, API suffix and trailing '/'
    removed), or ``None`` if it is not one a credential may go to."""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return None
    if any(c in raw for c in " \\") or not raw.isprintable():
        return None
    path = _FOUNDRY_SUFFIX.sub("", parts.path).rstrip("/")
    return f"https://{parts.netloc}{path}"
