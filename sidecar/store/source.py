"""The credential-source interface: all the proxy, the refresher and the CLI need of a store.

OpenClaw's JSON files are the first implementation (``jsonstore``); its SQLite store and a
Redis fleet store arrive as further modules implementing the same protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from sidecar.store.model import REFRESH_MARGIN_MS, AuthState, OAuthCredential
from sidecar.store.views import AgentView

# Called with the credential read under the locks; returns the fields the provider gave back,
# merged over the stored profile (``{...old, ...new}``). Raises to abort without writing.
Exchange = Callable[[OAuthCredential], Awaitable[Mapping[str, Any]]]
StateUpdate = Callable[[AuthState], AuthState]


class CredentialSource(Protocol):
    def agents(self) -> list[str]:
        """Every agent this source knows, ``main`` first."""
        ...

    async def view(self, agent: str) -> AgentView:
        """The agent's merged profiles; cached, and cheap when nothing changed."""
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
