"""What a provider's requests carry that OpenClaw derives from the request itself, one hook per
provider that has one: GitHub Copilot's ``x-initiator`` from the conversation, xAI's model
override on a Grok CLI login, Comfy Cloud's key inside a workflow submission. Pure.

The proxy holds the body of these providers' requests before sending them (``reads_body``), and
only up to its replay limit (``refresh.replay_body_limit_bytes``); other providers' bodies
stream as they come. A hook given no body (not held) does what OpenClaw does when it cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from sidecar.providers import comfy, copilot, xai
from sidecar.providers.conversation import model_call
from sidecar.providers.spec import CredentialType, ProviderSpec

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, repr=False)
class Quirk:
    """``headers`` go where the client sent none; ``body``, when not None, is sent instead of
    the client's (it may hold the credential)."""

    headers: Headers = ()
    body: bytes | None = None

    def __repr__(self) -> str:
        body = "as sent" if self.body is None else f"<{len(self.body)} bytes>"
        return f"Quirk(headers={[name for name, _ in self.headers]!r}, body={body})"


NO_QUIRK: Final = Quirk()
# (credential type, secret, upstream URL path, body held or None) -> what to add.
Hook = Callable[[CredentialType, str, str, bytes | None], Quirk]


def _copilot(cred_type: CredentialType, secret: str, path: str, body: bytes | None) -> Quirk:
    return Quirk(headers=copilot.conversation_headers(model_call(path, body)))


def _xai(cred_type: CredentialType, secret: str, path: str, body: bytes | None) -> Quirk:
    # Only a login's requests go to the Grok CLI proxy, where OpenClaw sends the override.
    if cred_type != "oauth":
        return NO_QUIRK
    return Quirk(headers=xai.model_override(model_call(path, body)))


def _comfy(cred_type: CredentialType, secret: str, path: str, body: bytes | None) -> Quirk:
    return Quirk(body=comfy.submission_with_key(path, body, secret))


HOOKS: Final[Mapping[str, Hook]] = MappingProxyType(
    {"github-copilot": _copilot, "xai": _xai, "comfy": _comfy}
)


def reads_body(spec: ProviderSpec) -> bool:
    """Whether a provider's requests are shaped by their body, so the proxy holds it first."""
    return spec.name in HOOKS


def request_quirk(
    spec: ProviderSpec, cred_type: CredentialType, secret: str, url: str, body: bytes | None
) -> Quirk:
    """What a request to ``url`` with this credential carries besides its header."""
    hook = HOOKS.get(spec.name)
    if hook is None:
        return NO_QUIRK
    return hook(cred_type, secret, urlsplit(url).path, body)
