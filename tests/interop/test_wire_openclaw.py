"""`openclaw-sidecar wire openclaw --apply`, proven with a real OpenClaw agent turn.

The sidecar's agent ``work`` holds the real OpenAI and Anthropic keys. OpenClaw gets nothing but
what `wire` wrote into its openclaw.json (``models.providers.*.baseUrl`` and a placeholder
``apiKey``): no auth profile at all. The fake upstream answers only the real keys; upstream,
sidecar and OpenClaw share one fresh network namespace (tests/interop/netns.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from sidecar.cli.recipes import PLACEHOLDER
from tests.e2e.sidecar import cli_env, run_cli
from tests.interop.netns import NetnsResult, run_in_netns
from tests.interop.openclaw import OpenClaw, installed
from tests.interop.test_agent_turn import (
    VERSIONS,
    assert_only_real,
    assert_turn,
    completed,
    new_chain,
    requests_under,
    turn_step,
)

pytestmark = pytest.mark.interop


def _needs(version: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        installed(version) is None,
        reason=f"OpenClaw {version} not installed (run scripts/install-openclaw.sh {version})",
    )


@dataclass
class Run:
    result: NetnsResult
    real: dict[str, str]
    config: dict[str, Any]
    printed: str


@pytest.fixture(scope="module", params=[pytest.param(v, marks=_needs(v), id=v) for v in VERSIONS])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    version: str = request.param
    chain = new_chain(tmp_path_factory.mktemp(f"wire-openclaw-{version}"))
    real = {"openai": f"sk-REAL-{uuid.uuid4().hex}", "anthropic": f"sk-ant-REAL-{uuid.uuid4().hex}"}
    env = cli_env(chain.sidecar_state, chain.work)
    for provider, key in real.items():
        args = ["paste-api-key", "--provider", provider, "--agent", "work"]
        done = run_cli(args, env, stdin=key + "\n")
        assert done.returncode == 0, done.stderr
    services = chain.services({"/oa": real["openai"], "/an": real["anthropic"]})
    config = services[1].argv[-1]  # the sidecar's --config
    oc = OpenClaw(version, chain.work / "openclaw")
    wire = ["wire", "openclaw", "--agent", "work", "--config", config, "--apply"]
    done = run_cli([*wire, "--path", str(oc.config_path)], env)
    assert done.returncode == 0, done.stderr
    assert all(key not in done.stdout + done.stderr for key in real.values())
    result = run_in_netns(
        services,
        [
            turn_step(oc, "openai", "openai/gpt-fake"),
            turn_step(oc, "anthropic", "anthropic/claude-sonnet-4-6"),
        ],
        chain.collect(),
        workdir=chain.work / "netns",
    )
    return Run(result, real, json.loads(oc.config_path.read_text()), done.stdout)


def test_openclaw_json_holds_only_placeholders(run: Run) -> None:
    """What --apply wrote: the two providers' baseUrl (agent work) and the placeholder."""
    providers = run.config["models"]["providers"]
    assert {name: sorted(p) for name, p in providers.items()} == {
        "openai": ["apiKey", "baseUrl"],
        "anthropic": ["apiKey", "baseUrl"],
    }
    assert providers["openai"]["baseUrl"].endswith("/agents/work/openai/v1")
    assert providers["anthropic"]["baseUrl"].endswith("/agents/work/anthropic")
    assert {p["apiKey"] for p in providers.values()} == {PLACEHOLDER}


@pytest.mark.parametrize(
    ("step", "prefix", "header"),
    [("openai", "/oa/", "authorization"), ("anthropic", "/an/", "x-api-key")],
)
def test_turn_through_the_sidecar(run: Run, step: str, prefix: str, header: str) -> None:
    """Each OpenClaw turn completes with agent work's real key injected by the sidecar."""
    assert_turn(run.result, step)
    real = run.real[step]
    seen = requests_under(run.result, prefix)
    assert_only_real(seen, header, f"Bearer {real}" if step == "openai" else real, PLACEHOLDER)
    lines = [e for e in completed(run.result) if e["provider"] == step]
    assert lines
    assert {(e["agent"], e["status"]) for e in lines} == {("work", 200)}
