"""From a stored profile to the secret a request carries: inline values, resolved SecretRefs
(cached briefly, exec refs run off the event loop) and OAuth tokens kept fresh by the refresher.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio

from sidecar.auth import hints
from sidecar.auth.copilot import CopilotApis
from sidecar.auth.refresh import Refresher
from sidecar.errors import NoProfile
from sidecar.secret import Secret
from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    OAuthCredential,
    Profile,
    SecretRef,
    TokenCredential,
)
from sidecar.sources.openclaw.refs import resolve_ref
from sidecar.sources.openclaw.views import ProfileView

REF_TTL_S = 300.0


@dataclass(frozen=True)
class Credential:
    """What is injected into one request."""

    profile_id: str
    provider: str
    type: Literal["api_key", "token", "oauth"]
    secret: Secret
    account_id: str | None = None
    refreshable: bool = True  # False: an upstream 401 is passed on, there is nothing to refresh
    base_url: str | None = None  # where this credential goes, if not its provider's base URL


class CredentialResolver:
    def __init__(
        self,
        refresher: Refresher,
        *,
        environ: Mapping[str, str],
        home: Path,
        secret_providers: Callable[[], Mapping[str, Mapping[str, Any]]],
        clock: Callable[[], int],
        hint_args: Sequence[str] = (),
        copilot: CopilotApis | None = None,
    ) -> None:
        self.refresher = refresher
        self.copilot = copilot
        self.hint_args = tuple(hint_args)  # --config / --state-dir for the commands hints name
        self.environ = environ
        self.home = home
        self.secret_providers = secret_providers
        self.clock = clock
        self._refs: dict[SecretRef, tuple[float, Secret]] = {}

    async def resolve(
        self, agent: str, view: ProfileView, *, rejected_access: str | None = None
    ) -> Credential:
        cred, profile = await self._resolved(agent, view, rejected_access)
        auth = self.refresher.auth_for(cred.provider) if self.copilot is not None else None
        if self.copilot is None or auth is None or auth.style != "copilot":
            return cred
        # GitHub Copilot: the base URL belongs to the credential (its proxy-ep, or its account's).
        found = await self.copilot.base_url(auth, cred.type, cred.secret, profile.raw)
        return replace(cred, base_url=found)

    async def _resolved(
        self, agent: str, view: ProfileView, rejected_access: str | None
    ) -> tuple[Credential, Profile]:
        profile = view.profile
        if isinstance(profile, OAuthCredential) and not self.refresher.refreshes(profile.provider):
            return self._unrefreshed(view, profile), profile
        if isinstance(profile, OAuthCredential):
            if rejected_access is not None or self.refresher.is_due(profile):
                profile = await self.refresher.fresh(agent, view, rejected_access=rejected_access)
            else:
                self.refresher.fresh_hint(agent, view)
            cred = Credential(
                view.id, profile.provider, "oauth", profile.access, profile.account_id
            )
            return cred, profile
        if isinstance(profile, TokenCredential):
            if profile.expires is not None and profile.expires <= self.clock():
                renew = hints.renew_token(profile.provider, view.owner, view.id, self.hint_args)
                raise NoProfile(
                    f"token profile {view.id} expired; store a new one in its place with {renew}"
                )
            secret = await self._value(profile.token, profile.token_ref, view.id)
            return Credential(view.id, profile.provider, "token", secret), profile
        assert isinstance(profile, ApiKeyCredential)
        secret = await self._value(profile.key, profile.key_ref, view.id)
        return Credential(view.id, profile.provider, "api_key", secret), profile

    def _unrefreshed(self, view: ProfileView, profile: OAuthCredential) -> Credential:
        """A login nobody here can refresh (OpenClaw's plugin can, or nobody can) is served until
        it expires, then refused with the command that signs in again."""
        if not profile.access or profile.expires is None or profile.expires <= self.clock():
            raise self.refresher.no_refresh(profile)
        return Credential(
            view.id, profile.provider, "oauth", profile.access, profile.account_id, False
        )

    async def _value(self, inline: Secret | None, ref: SecretRef | None, pid: str) -> Secret:
        if inline:
            return inline
        if ref is None:
            raise NoProfile(f"profile {pid} holds no secret")
        cached = self._refs.get(ref)
        if cached is not None and time.monotonic() - cached[0] < REF_TTL_S:
            return cached[1]
        secret = await anyio.to_thread.run_sync(
            lambda: resolve_ref(ref, self.secret_providers(), self.environ, self.home)
        )
        self._refs[ref] = (time.monotonic(), secret)
        return secret
