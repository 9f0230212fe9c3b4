"""sidecar.cli.recipes: each client's recipe, as values (pure), and its text."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
from pathlib import Path

import pytest

from sidecar.cli import recipes
from sidecar.cli.recipe_text import render, render_shell
from sidecar.cli.recipes import PLACEHOLDER, URL_RULE, Edit, EnvVar, Target
from sidecar.providers.catalog import BUILTIN_PROVIDERS, ProviderSpec

OPENAI = BUILTIN_PROVIDERS["openai"]
ANTHROPIC = BUILTIN_PROVIDERS["anthropic"]
CODEX = BUILTIN_PROVIDERS["openai-codex"]
OPENROUTER = BUILTIN_PROVIDERS["openrouter"]
MY_LLM = ProviderSpec(name="my-llm", kind="generic", base_url="https://llm.example.com/v1")
ORIGIN = "http://127.0.0.1:18801"
MAIN = Target(ORIGIN, "main", agent_in_path=False)
WORK = Target(ORIGIN, "work", agent_in_path=True)


@pytest.mark.parametrize(
    ("target", "spec", "expected"),
    [
        (MAIN, OPENAI, f"{ORIGIN}/openai/v1"),
        (WORK, OPENAI, f"{ORIGIN}/agents/work/openai/v1"),
        (MAIN, OPENROUTER, f"{ORIGIN}/openrouter/v1"),
        (MAIN, MY_LLM, f"{ORIGIN}/my-llm"),
        (dataclasses.replace(MAIN, profile_id="openai:me@example.com"), OPENAI,
         f"{ORIGIN}/openai@openai:me@example.com/v1"),
        (dataclasses.replace(WORK, profile_id="openai:a b"), OPENAI,
         f"{ORIGIN}/agents/work/openai@openai:a%20b/v1"),
    ],
)  # fmt: skip
def test_openai_style_url(target: Target, spec: ProviderSpec, expected: str) -> None:
    """An OpenAI-style client's URL stands for the provider's …/v1: /v1 is added only when the
    base_url does not already end in a version (the one client URL rule)."""
    assert recipes.openai_style_url(target, spec) == expected


def test_provider_url_is_the_base_url_itself() -> None:
    """…/<provider> stands for base_url: Anthropic's and Codex's clients append the rest."""
    assert recipes.provider_url(WORK, "anthropic") == f"{ORIGIN}/agents/work/anthropic"
    assert recipes.provider_url(MAIN, "openai-codex") == f"{ORIGIN}/openai-codex"


def test_claude_code() -> None:
    """Claude Code: the base URL and the placeholder, in its environment or settings.json."""
    recipe = recipes.claude_code(WORK, ANTHROPIC)
    base = f"{ORIGIN}/agents/work/anthropic"
    assert recipe.env == (
        EnvVar("ANTHROPIC_BASE_URL", base),
        EnvVar("ANTHROPIC_API_KEY", PLACEHOLDER),
    )
    assert recipe.file is not None
    assert recipe.file.kind == "claude-settings"
    assert recipe.file.edits == (
        Edit(("env", "ANTHROPIC_BASE_URL"), base),
        Edit(("env", "ANTHROPIC_API_KEY"), PLACEHOLDER, credential=True),
    )


@pytest.mark.parametrize(
    ("spec", "base"),
    [(OPENAI, f"{ORIGIN}/agents/work/openai/v1"), (CODEX, f"{ORIGIN}/agents/work/openai-codex")],
)
def test_codex(spec: ProviderSpec, base: str) -> None:
    """Codex: a model provider of its own in config.toml (API key: …/openai/v1; ChatGPT login:
    …/openai-codex), with no key at all."""
    recipe = recipes.codex(WORK, spec)
    table = ("model_providers", "openclaw-sidecar")
    assert recipe.env == ()
    assert recipe.file is not None
    assert recipe.file.edits == (
        Edit(("model_provider",), "openclaw-sidecar"),
        Edit((*table, "name"), "OpenClaw sidecar"),
        Edit((*table, "base_url"), base),
        Edit((*table, "wire_api"), "responses"),
        Edit((*table, "env_key"), None),
    )
    assert recipe.commands == (
        "codex -c model_provider=openclaw-sidecar -c 'model_providers.openclaw-sidecar="
        f'{{name="OpenClaw sidecar",base_url="{base}",wire_api="responses"}}\'   '
        "(one run, without config.toml)",
    )


def test_a_client_token_comes_from_its_file_never_a_client_file() -> None:
    """On a listener with a client token, each client takes it from the file in the shell; no
    client file holds it (Codex names the variable, Claude Code's file gets the URL only)."""
    token = Path("/run/secrets/work token")
    target = dataclasses.replace(WORK, token_file=token)
    quoted = "\"$(cat '/run/secrets/work token')\""
    claude = recipes.claude_code(target, ANTHROPIC)
    assert claude.env[1] == EnvVar("ANTHROPIC_API_KEY", quoted, from_file=True)
    assert claude.file is not None
    assert [e.key for e in claude.file.edits] == [("env", "ANTHROPIC_BASE_URL")]
    codex = recipes.codex(target, OPENAI)
    assert codex.env == (EnvVar("OPENCLAW_SIDECAR_TOKEN", quoted, from_file=True),)
    assert codex.file is not None
    assert codex.file.edits[-1] == Edit(("model_providers", "openclaw-sidecar", "env_key"),
                                        "OPENCLAW_SIDECAR_TOKEN")  # fmt: skip
    sdk = recipes.sdk("openai-sdk", target, OPENAI)
    assert sdk.env[1] == EnvVar("OPENAI_API_KEY", quoted, from_file=True)
    assert "api_key=open('/run/secrets/work token').read().strip()" in sdk.commands[0]


def test_sdks_and_env() -> None:
    """The SDKs' variables; env is both of them at once."""
    openai = recipes.sdk("openai-sdk", MAIN, MY_LLM)
    assert openai.env == (
        EnvVar("OPENAI_BASE_URL", f"{ORIGIN}/my-llm"),
        EnvVar("OPENAI_API_KEY", PLACEHOLDER),
    )
    assert openai.file is None
    both = recipes.env(WORK, (OPENAI, ANTHROPIC))
    assert [(v.name, v.value) for v in both.env] == [
        ("OPENAI_BASE_URL", f"{ORIGIN}/agents/work/openai/v1"),
        ("OPENAI_API_KEY", PLACEHOLDER),
        ("ANTHROPIC_BASE_URL", f"{ORIGIN}/agents/work/anthropic"),
        ("ANTHROPIC_API_KEY", PLACEHOLDER),
    ]


def test_openclaw() -> None:
    """OpenClaw: baseUrl and a placeholder apiKey per provider in openclaw.json, and the same
    as one `openclaw config set --batch-json`."""
    recipe = recipes.openclaw(WORK, (OPENAI, ANTHROPIC))
    assert recipe.file is not None
    assert recipe.file.edits == (
        Edit(("models", "providers", "openai", "baseUrl"), f"{ORIGIN}/agents/work/openai/v1"),
        Edit(("models", "providers", "openai", "apiKey"), PLACEHOLDER, credential=True),
        Edit(("models", "providers", "anthropic", "baseUrl"), f"{ORIGIN}/agents/work/anthropic"),
        Edit(("models", "providers", "anthropic", "apiKey"), PLACEHOLDER, credential=True),
    )
    assert recipe.commands[0].startswith('openclaw config set --batch-json \'[{"path":')


def test_render_shows_what_to_set_how_to_check_and_the_rule() -> None:
    """The text has the settings file as TOML, the checks numbered and the URL rule last."""
    text = render(recipes.codex(WORK, OPENAI), origin=ORIGIN,
                  file_path=Path("/h/.codex/config.toml"), warnings=["w1"])  # fmt: skip
    assert "warning: w1" in text
    assert "In Codex's config.toml, /h/.codex/config.toml" in text
    assert '  base_url = "http://127.0.0.1:18801/agents/work/openai/v1"\n' in text
    assert '  1. codex exec "say hi" answers\n' in text
    assert text.endswith(URL_RULE + "\n")


def test_render_shell_is_a_snippet_to_eval(tmp_path: Path) -> None:
    """wire env's text, eval'ed by a real shell, sets exactly the recipe's variables."""
    token = tmp_path / "token"
    token.write_text("the-client-token\n")
    recipe = recipes.env(dataclasses.replace(WORK, token_file=token), (OPENAI, ANTHROPIC))
    text = render_shell(recipe, origin=ORIGIN, command="openclaw-sidecar wire env")
    names = [v.name for v in recipe.env]
    shown = " ".join(f'"${n}"' for n in names)
    done = subprocess.run(
        ["bash", "-c", f"eval {shlex.quote(text)}; printf '%s\\n' {shown}"],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.splitlines() == [
        f"{ORIGIN}/agents/work/openai/v1",
        "the-client-token",
        f"{ORIGIN}/agents/work/anthropic",
        "the-client-token",
    ]
