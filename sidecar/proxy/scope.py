"""What a credential may reach: only its own provider's upstream. A pure rule; the proxy applies
it where it picks a profile and, once more, where it builds the upstream request.
"""

from __future__ import annotations

from typing import Final

CODEX: Final = "openai-codex"
# OpenClaw 2026.6.1 renamed Codex logins ``openai:*`` (store spec §9): an ``openai`` OAuth
# profile is a ChatGPT login, good only at the Codex backend.
RENAMED_CODEX: Final = "openai"


def may_carry(upstream: str, provider: str, credential_type: str) -> bool:
    """Whether a ``credential_type`` credential of ``provider`` may be sent to the base URL of
    the provider named ``upstream``: its own, or the Codex backend for a renamed Codex login."""
    if provider == upstream:
        return True
    return upstream == CODEX and is_codex_login(provider, credential_type)


def is_codex_login(provider: str, credential_type: str) -> bool:
    """An ``openai`` OAuth profile: a Codex login under its 2026.6.1 name."""
    return provider == RENAMED_CODEX and credential_type == "oauth"
