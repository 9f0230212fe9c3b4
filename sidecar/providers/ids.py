"""Provider ids compared the way OpenClaw compares them, for routing and for matching profiles.

OpenClaw 2026.9.6 (``model-catalog-core/provider-id.ts``, ``agents/provider-auth-aliases.ts``;
2026.6.1 the same): an id is trimmed and lowercased (``normalizeProviderId``), then an auth alias
is replaced by its provider (``resolveProviderIdForAuth``), e.g. ``Z.AI`` -> ``z.ai`` -> ``zai``
and ``minimax-cn`` -> ``minimax``. The aliases are the catalog's (``catalog.json``). Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from sidecar.providers.catalog import ALIASES
from sidecar.providers.spec import ProviderSpec


def normalize_provider_id(raw: str) -> str:
    """OpenClaw's ``normalizeProviderId``: trimmed, lowercased."""
    return raw.strip().lower()


def auth_provider_id(raw: str, aliases: Mapping[str, str] = ALIASES) -> str:
    """The provider whose credentials ``raw`` means: normalised, an alias replaced by its target."""
    normalized = normalize_provider_id(raw)
    return aliases.get(normalized, normalized)


def route_provider(
    segment: str, known: Collection[str], aliases: Mapping[str, str] = ALIASES
) -> str | None:
    """The configured provider a path segment names: itself, its normalised form, else the
    provider it is an alias of (``/Z.AI/`` -> ``zai``); ``None`` when none is configured. A
    provider with an endpoint of its own (``minimax-cn``) is its own route, not its alias's."""
    if segment in known:
        return segment
    normalized = normalize_provider_id(segment)
    if normalized in known:
        return normalized
    target = aliases.get(normalized)
    return target if target is not None and target in known else None


def profiles_of(spec: ProviderSpec, aliases: Mapping[str, str] = ALIASES) -> str:
    """The credential provider whose profiles serve ``spec``'s route (``zai-coding-global`` and
    ``minimax-cn`` are served by ``zai`` and ``minimax`` profiles)."""
    return auth_provider_id(spec.profiles_from or spec.name, aliases)


def stored_spellings(
    wanted: str, stored: Iterable[str], aliases: Mapping[str, str] = ALIASES
) -> list[str]:
    """``wanted`` first, then every provider id as a store spells it (``z-ai``, ``minimax-cn``)
    that means ``wanted``: the keys under which a store lists and orders its profiles."""
    spellings = [wanted]
    for provider in stored:
        if provider not in spellings and auth_provider_id(provider, aliases) == wanted:
            spellings.append(provider)
    return spellings


def serves(spec: ProviderSpec, provider: str, cred_type: str) -> bool:
    """Whether a stored profile (its provider and type) serves ``spec``'s route unpinned, as
    the proxy chooses: ChatGPT/Codex logins renamed ``openai`` (2026.6.1+) serve openai-codex,
    not openai; otherwise the profile's provider must mean the route's."""
    if spec.name == "openai-codex" and provider == "openai":
        return cred_type == "oauth"
    if spec.name == "openai" and cred_type == "oauth":
        return False
    return auth_provider_id(provider) == profiles_of(spec)
