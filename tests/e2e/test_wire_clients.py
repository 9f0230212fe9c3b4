"""Every `openclaw-sidecar wire` recipe, proven with the real client through the real sidecar.

Agent ``work`` of the sidecar holds the real credentials (an OpenAI and an Anthropic API key, a
ChatGPT login); the fake upstream answers only those (401 to anything else). Each client is set
up only by what `wire` printed or wrote with --apply, so it holds a placeholder or nothing; the
fake upstream, the sidecar and the clients share one fresh network namespace, where nothing but
loopback exists (tests/interop/netns.py). OpenClaw's recipe: tests/interop/test_wire_openclaw.py.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli.recipes import PLACEHOLDER
from tests.e2e import clients
from tests.e2e.sidecar import cli_env, free_port, render_config, run_cli
from tests.fakes.upstream import DEFAULT_TEXT
from tests.interop.netns import NetnsResult, Service, Step, run_in_netns
from tests.interop.openclaw import write_json

pytestmark = pytest.mark.e2e

CLAUDE, CODEX = clients.claude_code(), clients.codex()
_MISSING = f"not installed (run {clients.INSTALL_HINT})"
needs_claude = pytest.mark.skipif(
    CLAUDE is None and not os.environ.get("CI"), reason=f"Claude Code {_MISSING}"
)
needs_codex = pytest.mark.skipif(
    CODEX is None and not os.environ.get("CI"), reason=f"Codex {_MISSING}"
)
AGENT = "work"
PREFIXES = {"openai": "/oa", "anthropic": "/an", "openai-codex": "/backend-api/codex"}
# Each SDK step asks for its own model, so the fake's record tells the steps apart.
SDK_SCRIPT = """
import sys
for which, model in zip(sys.argv[1::2], sys.argv[2::2]):
    if which == "openai":
        from openai import OpenAI
        reply = OpenAI(max_retries=0).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}])
        print(which, reply.choices[0].message.content)
    else:
        from anthropic import Anthropic
        reply = Anthropic(max_retries=0).messages.create(
            model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        print(which, reply.content[0].text)
"""


def _jwt(claims: Mapping[str, Any]) -> str:
    def part(doc: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


@dataclass
class Wired:
    """The namespace's result, the real credentials, and what `wire` printed per step."""

    result: NetnsResult
    real: dict[str, str]
    printed: dict[str, str]
    homes: dict[str, Path]

    def requests(self, prefix: str, **match: str) -> list[dict[str, Any]]:
        """The fake's requests under ``prefix`` whose user-agent / model contain ``match``."""
        found = []
        for req in self.result.collected["requests"]:
            body = json.loads(req["body"]) if req["body"].startswith("{") else {}
            agent_ok = match.get("ua", "") in req["headers"].get("user-agent", "")
            model_ok = match.get("model") in (None, body.get("model"))
            if req["path"].startswith(prefix + "/") and agent_ok and model_ok:
                found.append(req)
        return found

    def completed(self, provider: str) -> list[dict[str, Any]]:
        lines = self.result.service_logs["sidecar"].splitlines()
        events = [json.loads(line) for line in lines if line.startswith("{")]
        return [
            e for e in events if e.get("event") == "request_completed" and e["provider"] == provider
        ]


def exports(text: str) -> str:
    """The `export` lines of a printed recipe, as a shell script."""
    return "\n".join(line.strip() for line in text.splitlines() if line.startswith("  export "))


def one_run(text: str, start: str) -> str:
    """The arguments of the printed one-run command starting with ``start``."""
    line = next(line.strip() for line in text.splitlines() if line.strip().startswith(start))
    return line.removeprefix(start.split()[0]).split("   (")[0].strip()


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Wired:
    work = tmp_path_factory.mktemp("wire")
    fake_port, port = free_port(), free_port()
    fake = f"http://127.0.0.1:{fake_port}"
    account = "acct-" + uuid.uuid4().hex[:8]
    expires = int(time.time() * 1000) + 30 * 86_400_000
    real = {
        "openai": f"sk-REAL-openai-{uuid.uuid4().hex}",
        "anthropic": f"sk-ant-api03-REAL-{uuid.uuid4().hex}",
        "openai-codex": _jwt({"https://api.openai.com/auth": {"chatgpt_account_id": account},
                              "exp": expires // 1000, "n": uuid.uuid4().hex}),
    }  # fmt: skip
    state = work / "state"
    write_json(
        state / "agents" / AGENT / "agent" / "auth-profiles.json",
        {
            "version": 1,
            "profiles": {
                "openai:work": {"type": "api_key", "provider": "openai", "key": real["openai"]},
                "anthropic:work": {
                    "type": "api_key", "provider": "anthropic", "key": real["anthropic"]
                },
                "openai-codex:me@example.com": {
                    "type": "oauth", "provider": "openai-codex", "access": real["openai-codex"],
                    "refresh": f"REAL-refresh-{uuid.uuid4().hex}", "expires": expires,
                    "accountId": account,
                },
            },
        },
    )  # fmt: skip
    config = work / "sidecar.toml"
    config.write_text(
        render_config(
            [{"host": "127.0.0.1", "port": port}],
            {name: {"base_url": fake + prefix} for name, prefix in PREFIXES.items()},
        )
    )
    printed: dict[str, str] = {}
    homes: dict[str, Path] = {}
    steps: list[Step] = []

    def wire(step: str, *args: str, extra: Mapping[str, str] | None = None) -> Path:
        home = homes[step] = work / f"home-{step}"
        home.mkdir()
        env = cli_env(state, home, {"OPENCLAW_SIDECAR_CONFIG": str(config), **(extra or {})})
        done = run_cli(["wire", *args, "--agent", AGENT, "--port", str(port)], env)
        assert done.returncode == 0, done.stderr
        assert all(secret not in done.stdout + done.stderr for secret in real.values())
        printed[step] = done.stdout
        return home

    sdk = [sys.executable, "-c", SDK_SCRIPT]
    if CLAUDE is not None:
        home = wire("claude-code", "claude-code", "--apply")
        env = clients.base_env(home) | {
            # Not part of the recipe: no update check or telemetry (nothing to reach here), and
            # a 401 fails at once instead of after minutes of retries.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        steps.append(
            Step("claude-code", [*CLAUDE, "-p", "say hi"], env=env, cwd=str(home), timeout=90)
        )
        home = wire("claude-code-env", "claude-code")  # the printed variables, no file
        script = f'{exports(printed["claude-code-env"])}\nexec "$@"'
        argv = ["bash", "-c", script, "sh", *CLAUDE, "-p", "say hi"]
        steps.append(Step("claude-code-env", argv, env=env | clients.base_env(home), timeout=90))
    if CODEX is not None:
        for step, provider in (("codex", "openai"), ("codex-chatgpt", "openai-codex")):
            home = wire(step, "codex", "--provider", provider, "--apply")
            env = clients.base_env(home) | {"CODEX_HOME": str(home / ".codex")}
            quiet = ["-c", "analytics.enabled=false", "-c", "features.plugins=false"]
            argv = [*CODEX, "exec", "--skip-git-repo-check", *quiet, "say hi"]
            steps.append(Step(step, argv, env=env, cwd=str(home), timeout=120))
        home = wire("codex-flags", "codex")  # the printed one-run form, no config.toml
        flags = one_run(printed["codex-flags"], "codex -c ")
        script = f'exec "$@" {flags} exec --skip-git-repo-check "say hi"'
        env = clients.base_env(home)  # Codex makes ~/.codex itself, with no config.toml
        argv = ["bash", "-c", script, "sh", *CODEX, *quiet]
        steps.append(Step("codex-flags", argv, env=env, cwd=str(home), timeout=120))
    for step, which in (("openai-sdk", "openai"), ("anthropic-sdk", "anthropic")):
        home = wire(step, step)
        script = f'{exports(printed[step])}\nexec "$@"'
        argv = ["bash", "-c", script, "sh", *sdk, which, f"model-{step}"]
        steps.append(Step(step, argv, env=clients.base_env(home), timeout=60))
    home = wire("env", "env")
    argv = ["bash", "-c", 'eval "$1"; shift; exec "$@"', "sh", printed["env"], *sdk,
            "openai", "model-env", "anthropic", "model-env"]  # fmt: skip
    steps.append(Step("env", argv, env=clients.base_env(home), timeout=60))

    fake_argv = [sys.executable, "-m", "tests.fakes.upstream", "--port", str(fake_port)]
    for name, prefix in PREFIXES.items():
        fake_argv += ["--expect", f"{prefix}={real[name]}"]
    serve = [sys.executable, "-m", "sidecar", "serve", "--config", str(config)]
    result = run_in_netns(
        [
            Service("fake", fake_argv, fake_port),
            Service("sidecar", serve, port, env=cli_env(state, work)),
        ],
        steps,
        {"requests": f"{fake}/__fake/requests"},
        workdir=work / "netns",
    )
    assert result.error is None, f"{result.error}\n{result.service_logs}"
    return Wired(result, real, printed, homes)


def assert_ran(wired: Wired, step: str) -> str:
    ran = wired.result.steps[step]
    assert ran.returncode == 0, f"{step} exited {ran.returncode}: {ran.stderr[-3000:]}"
    return ran.stdout


def assert_only_real(wired: Wired, requests: list[dict[str, Any]], header: str, real: str) -> None:
    """Each request reached the upstream with the real credential and 200; no placeholder
    (nor any other client key) left the sidecar."""
    assert requests
    for req in requests:
        assert req["status"] == 200, (req["path"], req["status"])
        assert req["headers"].get(header) == real, req["headers"]
        assert PLACEHOLDER not in json.dumps(req["headers"]) + req["body"]


def assert_logged(wired: Wired, provider: str, path: str) -> None:
    """The check the recipe prints: request_completed, agent work, that path, status 200."""
    lines = [e for e in wired.completed(provider) if e["path"] == path]
    assert lines, [e["path"] for e in wired.completed(provider)]
    assert {(e["agent"], e["status"]) for e in lines} == {(AGENT, 200)}


@needs_claude
def test_claude_code(wired: Wired) -> None:
    """`wire claude-code --apply`: settings.json's env block is all Claude Code needs; it
    answers through the sidecar with agent work's Anthropic key."""
    settings = json.loads((wired.homes["claude-code"] / ".claude" / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_API_KEY"] == PLACEHOLDER
    assert DEFAULT_TEXT in assert_ran(wired, "claude-code")
    seen = wired.requests("/an", ua="claude-cli")
    assert [r["path"] for r in seen] == ["/an/v1/messages"] * 2  # with claude-code-env's
    assert_only_real(wired, seen, "x-api-key", wired.real["anthropic"])
    assert_logged(wired, "anthropic", "/agents/work/anthropic/v1/messages")


@needs_codex
def test_codex_with_an_api_key(wired: Wired) -> None:
    """`wire codex --apply` (API key): Codex's config.toml provider goes to /agents/work/openai/v1;
    Codex holds no key at all."""
    config = (wired.homes["codex"] / ".codex" / "config.toml").read_text()
    assert 'base_url = "http://127.0.0.1:' in config
    assert "key" not in config.replace("env_key", "")
    assert DEFAULT_TEXT in assert_ran(wired, "codex")
    seen = wired.requests("/oa", ua="codex_exec")
    assert [r["path"] for r in seen] == ["/oa/v1/responses"] * 2  # with codex-flags'
    assert_only_real(wired, seen, "authorization", f"Bearer {wired.real['openai']}")
    assert_logged(wired, "openai", "/agents/work/openai/v1/responses")


@needs_claude
def test_claude_code_from_the_environment(wired: Wired) -> None:
    """`wire claude-code` without --apply: its printed variables alone work just the same."""
    assert not (wired.homes["claude-code-env"] / ".claude" / "settings.json").exists()
    assert DEFAULT_TEXT in assert_ran(wired, "claude-code-env")


@needs_codex
def test_codex_one_run_flags(wired: Wired) -> None:
    """The printed `codex -c …` form works with no config.toml at all."""
    assert not (wired.homes["codex-flags"] / ".codex" / "config.toml").exists()
    assert DEFAULT_TEXT in assert_ran(wired, "codex-flags")


@needs_codex
def test_codex_with_a_chatgpt_login(wired: Wired) -> None:
    """`wire codex --provider openai-codex --apply`: Codex's requests reach the ChatGPT backend
    with the sidecar's login (access token and account id)."""
    assert DEFAULT_TEXT in assert_ran(wired, "codex-chatgpt")
    seen = wired.requests("/backend-api/codex", ua="codex_exec")
    assert [r["path"] for r in seen] == ["/backend-api/codex/responses"]
    assert_only_real(wired, seen, "authorization", f"Bearer {wired.real['openai-codex']}")
    assert all(r["headers"].get("chatgpt-account-id", "").startswith("acct-") for r in seen)
    assert_logged(wired, "openai-codex", "/agents/work/openai-codex/responses")


@pytest.mark.parametrize(
    ("step", "provider", "prefix", "header"),
    [
        ("openai-sdk", "openai", "/oa", "authorization"),
        ("anthropic-sdk", "anthropic", "/an", "x-api-key"),
    ],
)
def test_sdk(wired: Wired, step: str, provider: str, prefix: str, header: str) -> None:
    """`wire openai-sdk` / `wire anthropic-sdk`: the printed exports are all the SDK gets."""
    assert assert_ran(wired, step).strip() == f"{provider} {DEFAULT_TEXT}"
    seen = wired.requests(prefix, model=f"model-{step}")
    real = wired.real[provider]
    assert_only_real(wired, seen, header, f"Bearer {real}" if header == "authorization" else real)


def test_env(wired: Wired) -> None:
    """`eval "$(openclaw-sidecar wire env)"`: both SDKs, from that one snippet."""
    out = assert_ran(wired, "env").splitlines()
    assert out == [f"openai {DEFAULT_TEXT}", f"anthropic {DEFAULT_TEXT}"]
    seen = wired.requests("/oa", model="model-env")
    assert_only_real(wired, seen, "authorization", f"Bearer {wired.real['openai']}")
    seen = wired.requests("/an", model="model-env")
    assert_only_real(wired, seen, "x-api-key", wired.real["anthropic"])
    assert_logged(wired, "openai", "/agents/work/openai/v1/chat/completions")


def test_nothing_else_reached_the_upstream(wired: Wired) -> None:
    """Every request the fake saw came through the sidecar and was answered 200."""
    seen = wired.result.collected["requests"]
    assert seen
    assert all(r["path"].startswith(tuple(PREFIXES.values())) for r in seen), seen
    assert {r["status"] for r in seen} == {200}
