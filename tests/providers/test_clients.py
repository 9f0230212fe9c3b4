"""Tests for sidecar.providers.clients: the client URL rule."""

from __future__ import annotations

from sidecar.providers.clients import CLIENT_URL_RULE, client_base_url


def test_client_base_url() -> None:
    """A client's base URL is the sidecar's address plus /<provider> (and /agents/<a> first)."""
    assert client_base_url("http://127.0.0.1:18801/", "my-llm") == "http://127.0.0.1:18801/my-llm"
    assert client_base_url("http://h:1", "groq", agent="work") == "http://h:1/agents/work/groq"
    assert "never a /v1 the base URL already ends in" in CLIENT_URL_RULE
