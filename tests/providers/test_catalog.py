"""Tests for sidecar.providers.catalog: the built-in providers, as shipped in catalog.json."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sidecar.config import parse_settings
from sidecar.config.settings import NAME_PATTERN, RESERVED_PROVIDER_NAMES
from sidecar.providers import catalog_file
from sidecar.providers.catalog import ALIASES, BUILTIN_PROVIDERS, CATALOG, GENERATED
from sidecar.providers.spec import CatalogEntry, ProviderSpec, can_refresh

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = Path.home() / ".cache" / "openclaw-sidecar" / "openclaw"
AUTH_FORMS = ("bearer", "x-api-key", "header:", "authorization:")
CREDENTIAL_TYPES = ("api_key", "token", "oauth")
ENTRIES = sorted(CATALOG.values(), key=lambda e: e.spec.name)


def test_header_names_the_script_and_the_openclaw_versions() -> None:
    """The file's header records the run: the script, and the OpenClaw versions it read."""
    assert GENERATED["by"] == "scripts/gen_provider_catalog.py"
    assert [item["version"] for item in GENERATED["openclaw"]] == ["2026.9.6", "2026.6.1"]


@pytest.mark.skipif(
    not all(
        (PACKAGES / v / "node_modules" / "openclaw").is_dir() for v in ("2026.6.1", "2026.9.6")
    ),
    reason="needs scripts/install-openclaw.sh",
)
def test_catalog_is_what_the_script_makes_from_the_installed_packages() -> None:
    """Re-running the generator on OpenClaw 2026.6.1 and 2026.9.6 gives the checked-in file and
    docs table (it also fails when a package lists a provider id the catalog does not cover)."""
    script = ROOT / "scripts" / "gen_provider_catalog.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_figures() -> None:
    """78 routes (OpenClaw's providers, the sidecar's zai endpoint variants) and 31 aliases."""
    assert (len(CATALOG), len(ALIASES)) == (78, 31)
    assert set(BUILTIN_PROVIDERS) == set(CATALOG)


def test_each_oauth_provider_names_its_refresh_flavour() -> None:
    """The providers whose logins OpenClaw refreshes carry its flavour; those it cannot refresh
    either say "none" (issue #18 section 2)."""
    flavours = {n: spec.refresh for n, spec in BUILTIN_PROVIDERS.items() if spec.refresh}
    assert flavours == {
        "anthropic": "anthropic",
        "chutes": "chutes",
        "github-copilot": "copilot",
        "google": "google",
        "google-gemini-cli": "google",
        "minimax-portal": "none",
        "minimax-portal-cn": "none",
        "openai-codex": "openai",
        "qwen-oauth": "none",
        "xai": "xai",
    }
    refreshed = {n for n, spec in BUILTIN_PROVIDERS.items() if can_refresh(spec)}
    assert refreshed == {n for n, style in flavours.items() if style != "none"}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.spec.name)
def test_entry_is_well_formed(entry: CatalogEntry) -> None:
    """An id a [providers.X] table could name; an https base URL without a trailing '/' (or a
    per-user endpoint); an auth form injection knows; known credential types."""
    spec = entry.spec
    assert NAME_PATTERN.fullmatch(spec.name)
    assert spec.name not in RESERVED_PROVIDER_NAMES
    assert ALIASES.get(spec.name) in (None, spec.profiles_from)  # minimax-cn: minimax's
    if spec.base_url:
        parts = urlsplit(spec.base_url)
        assert (parts.scheme, parts.query, parts.fragment) == ("https", "", "")
        assert not spec.base_url.endswith("/")
    else:
        assert spec.endpoint is not None
    for auth in (spec.auth, spec.token_auth or "bearer"):
        assert auth.startswith(AUTH_FORMS) or auth == "none"
    assert set(entry.credentials) <= set(CREDENTIAL_TYPES)
    assert entry.credentials or spec.auth == "none"  # none stored: none sent
    assert spec.error_style == ("anthropic" if entry.api == "anthropic-messages" else "openai")
    assert spec.profiles_from is None or spec.profiles_from in CATALOG
    assert all((entry.openclaw, entry.base_url_from, entry.auth_from, entry.api_from))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.spec.name)
def test_every_auth_was_read(entry: CatalogEntry) -> None:
    """No entry's header is a guess: each names where it was read (a package file, or an
    external plugin's source at a commit)."""
    assert "assumed" not in entry.auth_from
    assert entry.auth_from.startswith(("2026.", "openclaw/openclaw@"))


@pytest.mark.parametrize(
    ("name", "auth", "credentials", "read_in"),
    [
        # The Vertex SDK's Authorization: Bearer, with a token OpenClaw gets from ADC.
        (
            "anthropic-vertex",
            "bearer",
            ("token",),
            "packages/vertex-sdk/src/client.ts AnthropicVertex #adaptRequest",
        ),
        # A process on the Mac, no HTTP, no stored credential: nothing is sent.
        ("apple-fm", "none", (), "2026.9.6 dist/extensions/apple-fm/native.js"),
        ("pixverse", "header:API-KEY", ("api_key",), "extensions/pixverse/video-generation"),
        ("radius", "bearer", ("api_key", "oauth"), "extensions/radius/stream.ts"),
    ],
)
def test_the_once_assumed_headers_are_what_openclaw_s_code_sends(
    name: str, auth: str, credentials: tuple[str, ...], read_in: str
) -> None:
    """anthropic-vertex, apple-fm, pixverse and radius: the header their plugin's code sends,
    and where that was read."""
    entry = CATALOG[name]
    assert (entry.spec.auth, entry.spec.token_auth, entry.credentials) == (auth, None, credentials)
    assert read_in in entry.auth_from


def test_aliases_point_at_catalog_entries() -> None:
    """Every alias is lower-case and names a provider of the catalog."""
    assert all(alias == alias.strip().lower() for alias in ALIASES)
    assert {target for target in ALIASES.values()} <= set(CATALOG)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "deepseek",
            ProviderSpec(name="deepseek", kind="generic", base_url="https://api.deepseek.com"),
        ),
        (
            "google",
            ProviderSpec(
                name="google",
                kind="generic",
                base_url="https://generativelanguage.googleapis.com/v1beta",
                auth="header:x-goog-api-key",
                token_auth="bearer",
                token_url="https://oauth2.googleapis.com/token",
                refresh="google",
                client_id_env=("OPENCLAW_GEMINI_OAUTH_CLIENT_ID", "GEMINI_CLI_OAUTH_CLIENT_ID"),
                client_secret_env=(
                    "OPENCLAW_GEMINI_OAUTH_CLIENT_SECRET",
                    "GEMINI_CLI_OAUTH_CLIENT_SECRET",
                ),
            ),
        ),
        (
            "xai",
            ProviderSpec(
                name="xai",
                kind="generic",
                base_url="https://api.x.ai/v1",
                client_id="b1a00492-073a-47ea-816f-4c329264a828",
                refresh="xai",
                issuer="https://auth.x.ai",
                oauth_base_url="https://cli-chat-proxy.grok.com/v1",
            ),
        ),
        (
            "zai-coding-global",
            ProviderSpec(
                name="zai-coding-global",
                kind="generic",
                base_url="https://api.z.ai/api/coding/paas/v4",
                profiles_from="zai",
            ),
        ),
        (
            "synthetic",
            ProviderSpec(
                name="synthetic",
                kind="generic",
                base_url="https://api.synthetic.new/anthropic",
                auth="x-api-key",
                token_auth="bearer",
                error_style="anthropic",
            ),
        ),
        (
            "fal",
            ProviderSpec(
                name="fal", kind="generic", base_url="https://fal.run", auth="authorization:Key"
            ),
        ),
    ],
)
def test_sample_entries(name: str, expected: ProviderSpec) -> None:
    """A few entries, whole: what OpenClaw's packages say of them."""
    assert BUILTIN_PROVIDERS[name] == expected


def test_config_still_overrides_a_catalog_entry() -> None:
    """[providers.X] replaces the fields it names of a catalog entry, as for the first four."""
    doc = {"providers": {"deepseek": {"base_url": "https://proxy.example.com/deepseek"}}}
    settings = parse_settings(doc, source="t.toml")
    assert settings.providers["deepseek"] == ProviderSpec(
        name="deepseek", kind="generic", base_url="https://proxy.example.com/deepseek"
    )


def test_config_gives_a_per_user_endpoint() -> None:
    """A per-user provider with [providers.X] base_url keeps its endpoint rule, and the URL."""
    doc = {"providers": {"vllm": {"base_url": "http://gpu-box:8000/v1"}}}
    spec = parse_settings(doc, source="t.toml").providers["vllm"]
    assert (spec.base_url, spec.endpoint) == (
        "http://gpu-box:8000/v1",
        BUILTIN_PROVIDERS["vllm"].endpoint,
    )


def test_a_malformed_file_names_the_entry() -> None:
    """A catalog.json that does not have the expected shape fails at import, naming the entry."""
    data = json.loads(
        resources.files("sidecar.providers").joinpath("catalog.json").read_text(encoding="utf-8")
    )
    data["providers"][0]["kind"] = "nonsense"
    with pytest.raises(ValueError, match=r"provider 'amazon-bedrock'.*nonsense"):
        catalog_file.parse(json.dumps(data))
