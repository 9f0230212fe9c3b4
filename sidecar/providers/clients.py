"""The client URL rule, one sentence for every provider, and each provider's client base URL."""

from __future__ import annotations

from typing import Final

CLIENT_URL_RULE: Final = (
    "A client's base URL is the sidecar's address plus /<provider>, and it stands for exactly "
    "that provider's base URL: append to it only what you would append to the provider's own "
    "base URL, never a /v1 the base URL already ends in."
)


def client_base_url(sidecar_url: str, provider: str, *, agent: str | None = None) -> str:
    """What a client uses as its base URL for ``provider`` (``/agents/<agent>`` first to name an
    agent in the path)."""
    prefix = f"/agents/{agent}" if agent else ""
    return f"{sidecar_url.rstrip('/')}{prefix}/{provider}"
