"""The credential-source interface: all the proxy, the refresher and the CLI need of a store.

OpenClaw's JSON files are the first implementation (``openclaw_json.store``), its SQLite store
the second (``openclaw_sqlite.store``); ``choice.open_source`` picks the one an install needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from sidecar.sources.openclaw.config import OpenClawConfig
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import REFRESH_MARGIN_MS, AuthState, OAuthCredential
from sidecar.sources.openclaw.views import AgentView

# Called with the credential read under the locks; returns the fields the provider gave back,
# merged over the stored profile (``{...old, ...new}``). Raises to abort without writing.
Exchange = Callable[[OAuthCredential], Awaitable[Mapping[str, Any]]]
StateUpdate = Callable[[AuthState], AuthState]


class CredentialSource(Protocol):
    layout: Layout  # the state dir's paths (with openclaw.json's agentDir overrides)
    home: Path  # OpenClaw's home, for ``~`` in SecretRefs and config paths

    def config(self) -> OpenClawConfig:
        """``openclaw.json`` as last read (agents, auth.order, secrets.providers)."""
        ...

    def agents(self) -> list[str]:
        """Every agent this source knows, ``main`` first."""
        ...

    async def all_agents(self) -> set[str]:
        """Every agent that exists, asked afresh (a fleet asks Redis); what ``serve`` checks an
        agent id against before it reads or keeps anything for it."""
        ...

    async def view(self, agent: str) -> AgentView:
        """The agent's merged profiles; cached, and cheap when nothing changed."""
        ...

    def view_sync(self, agent: str) -> AgentView:
        """``view`` for the CLI, which has no event loop."""
        ...

    async def refresh(
        self,
        agent: str,
        profile_id: str,
        exchange: Exchange,
        *,
        rejected_access: str | None = None,
        margin_ms: int = REFRESH_MARGIN_MS,
    ) -> OAuthCredential:
        """Refresh under the cross-process locks, or adopt a credential someone else already
        refreshed (one usable for more than ``margin_ms``, the refresher's own margin).
        ``rejected_access`` forces a refresh unless the stored access token differs."""
        ...

    async def update_state(self, agent: str, update: StateUpdate) -> None:
        """Apply ``update`` to the order/lastGood/usageStats of ``agent``'s own store."""
        ...

    async def put_profile(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        """Store a new or replaced profile in ``agent``'s own store; returns where it went."""
        ...

    def put_profile_sync(self, agent: str, profile_id: str, fields: Mapping[str, Any]) -> Path:
        """``put_profile`` for the CLI (login, paste, import)."""
        ...
