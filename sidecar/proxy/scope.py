"""What a credential may reach: only its own provider's upstream, and only on a listener that
may use its owner's profiles. Pure rules; the proxy applies them where it picks a profile and,
once more, where it builds the upstream request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from sidecar.providers.catalog import ProviderSpec
from sidecar.providers.ids import auth_provider_id, profiles_of
from sidecar.sources.openclaw.layout import DEFAULT_AGENT
from sidecar.sources.openclaw.views import AgentView, ProfileView

CODEX: Final = "openai-codex"
# OpenClaw 2026.6.1 renamed Codex logins ``openai:*`` (store spec §9): an ``openai`` OAuth
# profile is a ChatGPT login, good only at the Codex backend.
RENAMED_CODEX: Final = "openai"


def may_carry(upstream: ProviderSpec, provider: str, credential_type: str) -> bool:
    """Whether a ``credential_type`` credential of ``provider`` may be sent to ``upstream``'s
    base URL: the credential's provider must be the one whose profiles serve it (ids compared as
    OpenClaw compares them: ``Z-AI`` and ``z-ai`` mean ``zai``); the one exception is a renamed
    Codex login going to the Codex backend."""
    if is_codex_login(provider, credential_type):
        return upstream.name == CODEX
    return auth_provider_id(provider) == profiles_of(upstream)


def is_codex_login(provider: str, credential_type: str) -> bool:
    """An ``openai`` OAuth profile: a Codex login under its 2026.6.1 name."""
    return provider == RENAMED_CODEX and credential_type == "oauth"


def is_inherited(profile: ProfileView, agent: str) -> bool:
    """Whether ``agent`` sees ``profile`` only through OpenClaw's read-through from main (store
    spec §7); the fleet's profiles of the agent (owner ``fleet:<agent>``) are its own."""
    return agent != DEFAULT_AGENT and profile.owner == DEFAULT_AGENT


def own_view(view: AgentView) -> AgentView:
    """``view`` without what read-through adds: only the profiles the agent itself owns. An
    order (``auth-state.json``'s or ``openclaw.json``'s) keeps only those ids, and one left with
    none no longer applies, so the agent's own profiles are then taken in OpenClaw's default
    order instead of not at all."""
    kept = {pid: p for pid, p in view.profiles.items() if not is_inherited(p, view.agent)}
    if len(kept) == len(view.profiles):
        return view
    return replace(
        view,
        profiles=kept,
        state=replace(view.state, order=_orders_within(view.state.order, kept)),
        config_order=_orders_within(view.config_order, kept),
    )


def _orders_within(
    orders: Mapping[str, tuple[str, ...]], kept: Mapping[str, ProfileView]
) -> dict[str, tuple[str, ...]]:
    narrowed = {provider: tuple(i for i in ids if i in kept) for provider, ids in orders.items()}
    return {provider: ids for provider, ids in narrowed.items() if ids}
