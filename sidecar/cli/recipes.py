"""What a client sets to go through the sidecar as one agent (``wire``): pure functions from the
client, the sidecar's address, the agent, the pin and the provider to environment variables,
client-file settings and the checks that prove it works. Nothing here reads or writes a file.

The client URL rule, the same for every provider: ``/<provider>`` on the sidecar stands for the
provider's whole ``base_url``, so a client gets the URL it would use without the sidecar with
``base_url`` replaced by the sidecar's ``…/<provider>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

from sidecar.providers.catalog import ProviderSpec

Client = Literal["claude-code", "codex", "openai-sdk", "anthropic-sdk", "openclaw", "env"]
CLIENTS: Final[tuple[Client, ...]] = (
    "claude-code",
    "codex",
    "openai-sdk",
    "anthropic-sdk",
    "openclaw",
    "env",
)
FileKind = Literal["codex-config", "claude-settings", "openclaw-json"]

# The key a client holds: a fixed dummy, never a secret (the sidecar removes whatever credential
# a client sends and injects the profile's own).
PLACEHOLDER: Final = "openclaw-sidecar-placeholder"
# A listener with a client_token_file wants that token as the client's key: clients take it from
# this variable, set from the file, so no client file ever holds it.
TOKEN_ENV: Final = "OPENCLAW_SIDECAR_TOKEN"  # noqa: S105 -- a variable name
CODEX_PROVIDER: Final = "openclaw-sidecar"
URL_RULE: Final = (
    "Client URLs: the sidecar's /<provider> (/agents/<agent>/<provider> for another agent) "
    "stands for the provider's whole base_url, so give a client the URL it would use without "
    "the sidecar with base_url replaced by it: …/openai/v1 for api.openai.com/v1, …/anthropic "
    "for api.anthropic.com, and …/my-llm (not …/my-llm/v1) for a base_url ending in /v1."
)
_VERSIONED = re.compile(r"/v\d+/?$")


@dataclass(frozen=True)
class Target:
    """Where a client goes: the listener's origin, the agent, a pinned profile."""

    origin: str  # http(s)://host:port
    agent: str
    agent_in_path: bool  # False on a listener bound to the agent, or for the default agent
    profile_id: str | None = None
    token_file: Path | None = None  # the listener's client_token_file


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str  # a literal, or a shell expression when ``from_file``
    from_file: bool = False  # the value is the content of a file: set it in the shell only


@dataclass(frozen=True)
class Edit:
    """One setting in a client file: the keys down to it, and its value (None: remove it)."""

    key: tuple[str, ...]
    value: str | None
    credential: bool = False  # where a client keeps a key: refuse to replace a real one


@dataclass(frozen=True)
class ClientFile:
    kind: FileKind
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Recipe:
    client: Client
    title: str
    env: tuple[EnvVar, ...] = ()
    file: ClientFile | None = None
    commands: tuple[str, ...] = ()  # the same settings as commands of the client, when it has any
    run: str = ""
    checks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def provider_url(target: Target, provider: str) -> str:
    """The sidecar's URL for ``provider`` (standing for its base_url), with the agent and pin."""
    agent = f"/agents/{target.agent}" if target.agent_in_path else ""
    pin = f"@{quote(target.profile_id, safe=':@')}" if target.profile_id else ""
    return f"{target.origin}{agent}/{provider}{pin}"


def openai_style_url(target: Target, spec: ProviderSpec) -> str:
    """For a client that appends ``/chat/completions`` or ``/responses``: the URL that stands
    for the provider's ``…/v1`` (``base_url`` itself when it already ends in a version)."""
    versioned = _VERSIONED.search(spec.base_url.split("?")[0]) is not None
    return provider_url(target, spec.name) + ("" if versioned else "/v1")


def _key(target: Target, name: str) -> EnvVar:
    if target.token_file is None:
        return EnvVar(name, PLACEHOLDER)
    return EnvVar(name, f'"$(cat {_shell_path(target.token_file)})"', from_file=True)


def _shell_path(path: Path) -> str:
    text = str(path)
    return text if re.fullmatch(r"[\w@%+=:,./-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _log_check(target: Target, provider: str, path: str | None) -> str:
    where = f", path {path!r}" if path else ""
    return (
        f"the sidecar's log has a request_completed line with agent {target.agent!r}, provider "
        f"{provider!r}{where} and status 200"
    )


def _key_note(target: Target, header: str) -> str:
    if target.token_file is None:
        return (
            f"The client holds only the placeholder {PLACEHOLDER!r} ({header}): the sidecar "
            "removes it and injects the agent's own credential."
        )
    return (
        f"This listener wants its client token ({target.token_file}) as the client's key: it "
        "comes from the file in the shell that starts the client, never from a client file."
    )


def claude_code(target: Target, spec: ProviderSpec) -> Recipe:
    base = provider_url(target, spec.name)
    key = _key(target, "ANTHROPIC_API_KEY")
    edits = [Edit(("env", "ANTHROPIC_BASE_URL"), base)]
    if not key.from_file:
        edits.append(Edit(("env", "ANTHROPIC_API_KEY"), key.value, credential=True))
    return Recipe(
        client="claude-code",
        title=f"Claude Code as agent {target.agent} (provider {spec.name})",
        env=(EnvVar("ANTHROPIC_BASE_URL", base), key),
        file=ClientFile("claude-settings", tuple(edits)),
        run='claude -p "say hi"',
        checks=(
            'claude -p "say hi" answers',
            _log_check(target, spec.name, _path_of(base) + "/v1/messages"),
        ),
        notes=(
            _key_note(target, "sent as x-api-key"),
            "Claude Code reads the env block of its settings.json as it reads the environment.",
            "Logged in to Claude Code with claude.ai? `openclaw-sidecar import claude-cli` "
            "moves that login into the sidecar first.",
        ),
    )


def codex(target: Target, spec: ProviderSpec) -> Recipe:
    """Codex 0.169 ignores OPENAI_BASE_URL and OPENAI_API_KEY: a model provider of its own
    config.toml is what points it anywhere (``base_url`` + what Codex appends: ``/responses``)."""
    chatgpt = spec.kind == "openai-codex"
    base = provider_url(target, spec.name) if chatgpt else openai_style_url(target, spec)
    table = ("model_providers", CODEX_PROVIDER)
    env_key = TOKEN_ENV if target.token_file is not None else None
    edits = (
        Edit(("model_provider",), CODEX_PROVIDER),
        Edit((*table, "name"), "OpenClaw sidecar"),
        Edit((*table, "base_url"), base),
        Edit((*table, "wire_api"), "responses"),
        Edit((*table, "env_key"), env_key),
    )
    how = "a ChatGPT login" if chatgpt else "an API key"
    notes = [
        "Codex ignores OPENAI_BASE_URL and OPENAI_API_KEY: the model provider in config.toml "
        "is what points it at the sidecar.",
        "Codex sends no key of its own: the sidecar injects the agent's credential."
        if env_key is None
        else _key_note(target, f"in {TOKEN_ENV}"),
    ]
    if chatgpt:
        notes.append(
            "Codex's own ChatGPT login belongs in the sidecar: `openclaw-sidecar import "
            "codex-cli` (Codex's copy dies at the sidecar's first refresh) or `openclaw-sidecar "
            "login --provider openai-codex`."
        )
    return Recipe(
        client="codex",
        title=f"Codex CLI with {how}, as agent {target.agent} (provider {spec.name})",
        env=(_key(target, TOKEN_ENV),) if env_key else (),
        file=ClientFile("codex-config", edits),
        commands=(_codex_flags(base, env_key),),
        run='codex exec "say hi"',
        checks=(
            'codex exec "say hi" answers',
            _log_check(target, spec.name, _path_of(base) + "/responses"),
        ),
        notes=tuple(notes),
    )


def _codex_flags(base: str, env_key: str | None) -> str:
    fields = f'name="OpenClaw sidecar",base_url="{base}",wire_api="responses"'
    if env_key:
        fields += f',env_key="{env_key}"'
    return (
        f"codex -c model_provider={CODEX_PROVIDER} "
        f"-c 'model_providers.{CODEX_PROVIDER}={{{fields}}}'   (one run, without config.toml)"
    )


def sdk(
    client: Literal["openai-sdk", "anthropic-sdk"], target: Target, spec: ProviderSpec
) -> Recipe:
    anthropic = client == "anthropic-sdk"
    base = provider_url(target, spec.name) if anthropic else openai_style_url(target, spec)
    prefix = "ANTHROPIC" if anthropic else "OPENAI"
    key = _key(target, f"{prefix}_API_KEY")
    cls, call, tail = (
        ("Anthropic", "client.messages.create(...)", "/v1/messages")
        if anthropic
        else ("OpenAI", "client.chat.completions.create(...)", "/chat/completions")
    )
    token = target.token_file
    code_key = f"open({str(token)!r}).read().strip()" if token else repr(PLACEHOLDER)
    return Recipe(
        client=client,
        title=f"The {cls} SDK as agent {target.agent} (provider {spec.name})",
        env=(EnvVar(f"{prefix}_BASE_URL", base), key),
        commands=(f"{cls}(base_url={base!r}, api_key={code_key})   (in code instead)",),
        run=call,
        checks=(f"{call} answers", _log_check(target, spec.name, _path_of(base) + tail)),
        notes=(_key_note(target, "sent as the API key"),),
    )


def env(target: Target, specs: tuple[ProviderSpec, ...]) -> Recipe:
    """Both SDKs' variables at once, as a shell snippet to ``eval``."""
    parts = [
        sdk("anthropic-sdk" if s.kind == "anthropic" else "openai-sdk", target, s) for s in specs
    ]
    return Recipe(
        client="env",
        title=f"Environment for the OpenAI and Anthropic SDKs, as agent {target.agent}",
        env=tuple(var for part in parts for var in part.env),
        checks=tuple(check for part in parts for check in part.checks[1:]),
        notes=parts[0].notes if parts else (),
    )


def openclaw(target: Target, specs: tuple[ProviderSpec, ...]) -> Recipe:
    """OpenClaw's ``models.providers.<id>.baseUrl`` per provider, with a placeholder
    ``apiKey`` (its auth store needs no profile then); checked on 2026.6.1 and 2026.9.6."""
    edits: list[Edit] = []
    batch: list[str] = []
    for spec in specs:
        url = provider_url(target, spec.name)
        url = url if spec.kind == "anthropic" else openai_style_url(target, spec)
        path = ("models", "providers", spec.name)
        edits += [Edit((*path, "baseUrl"), url), Edit((*path, "apiKey"), PLACEHOLDER, True)]
        batch += [
            f'{{"path":"models.providers.{spec.name}.baseUrl","value":"{url}"}}',
            f'{{"path":"models.providers.{spec.name}.apiKey","value":"{PLACEHOLDER}"}}',
        ]
    names = ", ".join(s.name for s in specs)
    model = (
        "openai/gpt-5.5"
        if specs and specs[0].kind != "anthropic"
        else "anthropic/claude-sonnet-4-6"
    )
    run = f'openclaw agent --local --agent main -m "say hi" --model {model} --json'
    return Recipe(
        client="openclaw",
        title=f"OpenClaw's agents through the sidecar as agent {target.agent} ({names})",
        file=ClientFile("openclaw-json", tuple(edits)),
        commands=(f"openclaw config set --batch-json '[{','.join(batch)}]'",),
        run=run,
        checks=(
            f"{run} prints the answer",
            *(_log_check(target, s.name, None) for s in specs),
        ),
        notes=(
            f"OpenClaw holds only the placeholder apiKey {PLACEHOLDER!r}: the sidecar removes it "
            "and injects the agent's own credential.",
            "models.providers is global: one OpenClaw state dir goes to one sidecar agent "
            "(`openclaw --profile work …` for another, docs/openclaw.md §3).",
        ),
    )


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].partition("/")[2]
