"""OpenClaw's own agents through the sidecar: a real ``openclaw agent --local`` turn, offline.

OpenClaw holds only placeholders; the sidecar holds the real credentials and injects them; the
fake upstream requires the real credential (``--expect``), so a turn that completes proves the
sidecar, not OpenClaw, supplied it. The fake upstream, the sidecar and OpenClaw run in one fresh
network namespace (tests/interop/netns.py): nothing can reach a real provider, and OpenClaw can
reach the sidecar on 127.0.0.1.

- ``openai`` and ``anthropic`` on 2026.6.1 and 2026.9.6 (one sandbox and one namespace per
  version, both turns in it); 2026.9.6 also sends ``POST /v1/embeddings`` for its memory, which
  passes through with the injected key.
- Codex OAuth on 2026.9.6: ``models.providers.openai.api = openai-chatgpt-responses`` plus a
  loopback ``baseUrl`` (a "custom ChatGPT relay"); the sidecar injects an ``openai-codex`` OAuth
  access token and account id. See docs/openclaw.md for what each setting does and why.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sidecar import cli_env, free_port, render_config, run_cli
from tests.fakes.upstream import DEFAULT_TEXT
from tests.interop.netns import NetnsResult, Service, Step, run_in_netns
from tests.interop.openclaw import OpenClaw, installed, write_json

VERSIONS = ("2026.6.1", "2026.9.6")
CODEX_VERSION = "2026.9.6"
PYTHON = sys.executable
TURN_TIMEOUT_S = 150

pytestmark = pytest.mark.interop


def _needs(version: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        installed(version) is None and not os.environ.get("CI"),
        reason=f"OpenClaw {version} not installed (run scripts/install-openclaw.sh {version})",
    )


def _secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def _jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


@dataclass
class Chain:
    """Ports and folders of one fake upstream -> sidecar -> OpenClaw chain."""

    work: Path
    fake_port: int
    sidecar_port: int
    sidecar_state: Path

    @property
    def fake(self) -> str:
        return f"http://127.0.0.1:{self.fake_port}"

    @property
    def sidecar(self) -> str:
        return f"http://127.0.0.1:{self.sidecar_port}"

    def services(self, expect: dict[str, str]) -> list[Service]:
        """The fake (requiring ``expect[prefix]`` under each prefix) and the sidecar, whose
        providers live under distinct prefixes of the fake."""
        config = self.work / "sidecar.toml"
        config.write_text(
            render_config(
                [{"host": "127.0.0.1", "port": self.sidecar_port}],
                {
                    "openai": {"base_url": f"{self.fake}/oa"},
                    "anthropic": {"base_url": f"{self.fake}/an"},
                    # chatgpt.com/backend-api: OpenClaw appends /codex/responses itself.
                    "openai-codex": {"base_url": f"{self.fake}/backend-api"},
                },
            )
        )
        fake = [PYTHON, "-m", "tests.fakes.upstream", "--port", str(self.fake_port)]
        for prefix, key in expect.items():
            fake += ["--expect", f"{prefix}={key}"]
        serve = [PYTHON, "-m", "sidecar", "serve", "--config", str(config)]
        return [
            Service("fake", fake, self.fake_port),
            Service(
                "sidecar", serve, self.sidecar_port, env=cli_env(self.sidecar_state, self.work)
            ),
        ]

    def collect(self) -> dict[str, str]:
        return {"requests": f"{self.fake}/__fake/requests"}


def new_chain(work: Path) -> Chain:
    work.mkdir(parents=True, exist_ok=True)
    return Chain(work, free_port(), free_port(), work / "sidecar-state")


def turn_step(oc: OpenClaw, name: str, model: str) -> Step:
    """``openclaw agent --local --agent main -m "say hi" --model <model> --json``, run directly
    (the namespace already isolates it)."""
    argv = [str(oc.node), str(oc.cli), "agent", "--local", "--agent", "main"]
    argv += ["-m", "say hi", "--model", model, "--json"]
    return Step(name, argv, env=oc.env(), cwd=str(oc.sandbox), timeout=TURN_TIMEOUT_S)


def configure(oc: OpenClaw, values: dict[str, Any]) -> None:
    """One ``openclaw config set --batch-json`` call for several paths."""
    ops = [{"path": path, "value": value} for path, value in values.items()]
    oc.run("config", "set", "--batch-json", json.dumps(ops), check=True)


def assert_turn(result: NetnsResult, step: str) -> dict[str, Any]:
    assert result.error is None, f"{result.error}\n{result.service_logs}"
    ran = result.steps[step]
    assert ran.returncode == 0, f"{step} exited {ran.returncode}: {ran.stderr[-4000:]}"
    doc = result.json_of(step)
    meta = doc.get("meta", doc)
    assert meta.get("finalAssistantVisibleText") == DEFAULT_TEXT, json.dumps(doc)[-3000:]
    return doc


def requests_under(result: NetnsResult, prefix: str) -> list[dict[str, Any]]:
    return [r for r in result.collected["requests"] if r["path"].startswith(prefix)]


def assert_only_real(requests: list[dict[str, Any]], header: str, value: str, *fakes: str) -> None:
    """Every request carried the real credential, and no placeholder reached the upstream."""
    assert requests
    for req in requests:
        assert req["headers"].get(header) == value, (req["method"], req["path"], req["headers"])
        raw = json.dumps(req["headers"]) + req["body"]
        for placeholder in fakes:
            assert placeholder not in raw, (req["path"], "placeholder reached the upstream")


def completed(result: NetnsResult) -> list[dict[str, Any]]:
    events = [
        json.loads(line) for line in result.service_logs["sidecar"].splitlines() if line[:1] == "{"
    ]
    return [e for e in events if e.get("event") == "request_completed"]


# --------------------------------------------------------------------------- openai + anthropic


@dataclass
class VersionRun:
    version: str
    result: NetnsResult
    real: dict[str, str]
    placeholders: dict[str, str]


@pytest.fixture(scope="module", params=[pytest.param(v, marks=_needs(v), id=v) for v in VERSIONS])
def version_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> VersionRun:
    version: str = request.param
    chain = new_chain(tmp_path_factory.mktemp(f"turn-{version}"))
    real = {"openai": _secret("sk-REAL-openai"), "anthropic": _secret("sk-ant-REAL")}
    placeholders = {
        "openai": "sk-placeholder-openai-0123456789",
        "anthropic": "sk-ant-placeholder-0123456789",
    }
    # The sidecar's store: the real keys (its own CLI, secrets on stdin).
    env = cli_env(chain.sidecar_state, chain.work)
    for provider, key in real.items():
        done = run_cli(["paste-api-key", "--provider", provider], env, stdin=key + "\n")
        assert done.returncode == 0, done.stderr
    # OpenClaw's store: placeholders only; its providers point at the sidecar.
    oc = OpenClaw(version, chain.work / "openclaw")
    if version == "2026.6.1":  # JSON era: OpenClaw's own format, without two ~5 s CLI calls
        oc.write_store(
            {
                f"{p}:manual": {"type": "api_key", "provider": p, "key": key}
                for p, key in placeholders.items()
            }
        )
    else:  # SQLite era: let the CLI write its own store
        for provider, key in placeholders.items():
            oc.paste_api_key(provider, secret=key)
    configure(
        oc,
        {
            "models.providers.openai.baseUrl": f"{chain.sidecar}/agents/main/openai/v1",
            "models.providers.anthropic.baseUrl": f"{chain.sidecar}/anthropic",
        },
    )
    result = run_in_netns(
        chain.services({"/oa": real["openai"], "/an": real["anthropic"]}),
        [
            turn_step(oc, "openai", "openai/gpt-fake"),
            # a catalogued id: an unknown anthropic/* id falls back to openai-completions.
            turn_step(oc, "anthropic", "anthropic/claude-sonnet-4-6"),
        ],
        chain.collect(),
        workdir=chain.work / "netns",
    )
    return VersionRun(version, result, real, placeholders)


def test_openai_turn_through_sidecar(version_run: VersionRun) -> None:
    run = version_run
    doc = assert_turn(run.result, "openai")
    assert doc["meta"]["executionTrace"]["winnerProvider"] == "openai"
    seen = requests_under(run.result, "/oa/")
    assert_only_real(
        seen, "authorization", f"Bearer {run.real['openai']}", *run.placeholders.values()
    )
    chat = [r for r in seen if r["path"] == "/oa/v1/chat/completions"]
    assert chat
    assert all(r["status"] == 200 for r in chat)
    assert all(r["status"] == 200 for r in seen), [(r["path"], r["status"]) for r in seen]
    if run.version != "2026.6.1":  # 2026.9.x memory: embeddings through the sidecar too
        embeddings = [r for r in seen if r["path"] == "/oa/v1/embeddings"]
        assert embeddings, [r["path"] for r in seen]
    lines = [e for e in completed(run.result) if e["provider"] == "openai"]
    assert lines
    assert {e["profile"] for e in lines} == {"openai:manual"}
    assert {e["agent"] for e in lines} == {"main"}


def test_anthropic_turn_through_sidecar(version_run: VersionRun) -> None:
    run = version_run
    doc = assert_turn(run.result, "anthropic")
    assert doc["meta"]["executionTrace"]["winnerProvider"] == "anthropic"
    seen = requests_under(run.result, "/an/")
    assert_only_real(seen, "x-api-key", run.real["anthropic"], *run.placeholders.values())
    assert [r["path"] for r in seen] == ["/an/v1/messages"]
    assert seen[0]["status"] == 200
    assert "authorization" not in seen[0]["headers"]


def test_no_other_traffic(version_run: VersionRun) -> None:
    """Everything the fake saw came through a provider prefix of the sidecar."""
    paths = [r["path"] for r in version_run.result.collected["requests"]]
    assert paths
    assert all(p.startswith(("/oa/", "/an/")) for p in paths), paths


# --------------------------------------------------------------------------- Codex OAuth


@_needs(CODEX_VERSION)
def test_codex_oauth_turn_through_sidecar(tmp_path: Path) -> None:
    """2026.9.6, an ``openai`` OAuth (Codex) profile: OpenClaw holds a placeholder JWT, the
    sidecar an ``openai-codex`` OAuth profile whose access token the fake requires."""
    chain = new_chain(tmp_path)
    account = "acct-" + uuid.uuid4().hex[:8]
    expires = int(time.time() * 1000) + 30 * 86_400_000
    claims = {
        "exp": expires // 1000,
        "https://api.openai.com/auth": {"chatgpt_account_id": account},
    }
    real = _jwt({**claims, "real": uuid.uuid4().hex})
    placeholder = _jwt({**claims, "placeholder": True})
    profile = {
        "type": "oauth",
        "access": placeholder,
        "refresh": "placeholder-refresh",
        "expires": expires,
        "accountId": account,
        "email": "me@example.com",
    }
    # Sidecar: the real login (JSON store, provider openai-codex).
    write_json(
        chain.sidecar_state / "agents" / "main" / "agent" / "auth-profiles.json",
        {
            "version": 1,
            "profiles": {
                "openai-codex:me@example.com": {
                    **profile,
                    "provider": "openai-codex",
                    "access": real,
                    "refresh": _secret("REAL-refresh"),
                }
            },
        },
    )
    # OpenClaw: its CLI creates the SQLite store; the placeholder OAuth profile is written into
    # it (the CLI cannot log in offline).
    oc = OpenClaw(CODEX_VERSION, chain.work / "openclaw")
    oc.paste_api_key("openrouter", secret="sk-or-placeholder-0123456789")
    db = sqlite3.connect(oc.state_dir / "state" / "openclaw.sqlite")
    with db:
        db.execute(
            "UPDATE config_machine_state SET value_json = ? WHERE state_key = 'authProfiles.store'",
            (
                json.dumps(
                    {
                        "version": 1,
                        "profiles": {"openai:me@example.com": {**profile, "provider": "openai"}},
                    },
                    separators=(",", ":"),
                ),
            ),
        )
    db.close()
    configure(
        oc,
        {
            "models.providers.openai.baseUrl": f"{chain.sidecar}/openai-codex",
            "models.providers.openai.api": "openai-chatgpt-responses",
            # OpenClaw zstd-compresses Codex request bodies unless a content-encoding is set;
            # the fake upstream cannot decode zstd (docs/openclaw.md).
            "models.providers.openai.headers": {"content-encoding": "identity"},
        },
    )
    result = run_in_netns(
        chain.services({"/backend-api": real}),
        [turn_step(oc, "codex", "openai/gpt-5.5")],
        chain.collect(),
        workdir=chain.work / "netns",
    )
    assert_turn(result, "codex")
    seen = requests_under(result, "/backend-api/")
    assert_only_real(seen, "authorization", f"Bearer {real}", placeholder)
    assert all(r["headers"].get("chatgpt-account-id") == account for r in seen)
    posts = [
        r for r in seen if r["method"] == "POST" and r["path"] == "/backend-api/codex/responses"
    ]
    assert posts
    assert all(r["status"] == 200 for r in posts)
    assert len(seen) == len(result.collected["requests"])
    # OpenClaw tries a websocket first: the sidecar answers that 426 before choosing a profile.
    served = [e for e in completed(result) if e.get("error") != "upgrade_unsupported"]
    assert {e["profile"] for e in served} == {"openai-codex:me@example.com"}
