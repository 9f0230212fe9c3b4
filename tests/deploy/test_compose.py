"""compose.yaml for real with podman-compose: two agents, two ports, one shared store.

The stack is compose.yaml plus deploy/compose/compose.test.yaml (a fake upstream, and a second
sidecar sharing the first one's volume and PID namespace), under a unique project name.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import yaml

from sidecar.config import parse_settings
from tests.deploy.compose_support import ROOT, ComposeStack, until, write_secret
from tests.e2e.sidecar import free_port

pytestmark = pytest.mark.deploy

AGENTS = ("personal", "work")
STORM_REFRESH = "rt-storm-seed"
STORM = 12  # concurrent requests per sidecar


def compose_doc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


# ---- the files themselves (no podman needed)


def test_compose_publishes_ports_on_loopback_only() -> None:
    """Every published port in compose.yaml is bound to 127.0.0.1."""
    services = compose_doc()["services"]
    ports = [p for service in services.values() for p in service.get("ports", [])]
    assert ports
    assert all(str(p).startswith("127.0.0.1:") for p in ports), ports


def test_each_agent_gets_only_its_own_token_and_no_store() -> None:
    """agent-personal and agent-work each mount only their own client token, not the volume."""
    doc = compose_doc()
    services = doc["services"]
    assert services["sidecar"]["secrets"] == ["personal-client-token", "work-client-token"]
    assert "openclaw-state:/state" in services["sidecar"]["volumes"]
    assert "openclaw-state" in doc["volumes"]
    for agent in AGENTS:
        service = services[f"agent-{agent}"]
        assert service["secrets"] == [f"{agent}-client-token"]
        assert not [v for v in service.get("volumes", []) if "openclaw-state" in v]
        port = 18802 if agent == "personal" else 18803
        assert service["environment"]["OPENAI_BASE_URL"] == f"http://sidecar:{port}/openai/v1"


def test_compose_documents_the_gateway_on_the_shared_pid_namespace() -> None:
    """The commented OpenClaw gateway joins the sidecar's PID namespace and volume."""
    text = (ROOT / "compose.yaml").read_text()
    assert '#   pid: "container:openclaw-sidecar"' in text
    assert "#     - openclaw-state:/state" in text
    assert compose_doc()["services"]["sidecar"]["container_name"].endswith(":-openclaw-sidecar}")


@pytest.mark.parametrize("name", ["sidecar.toml", "sidecar.test.toml"])
def test_compose_sidecar_configs_bind_one_agent_per_port_with_a_token(name: str) -> None:
    """Both compose configs pass the real config parser: personal on 18802, work on 18803."""
    path = ROOT / "deploy/compose" / name
    settings = parse_settings(tomllib.loads(path.read_text()), source=str(path))
    bound = {(ln.port, ln.agent, str(ln.client_token_file)) for ln in settings.listeners}
    assert bound == {
        (18802, "personal", "/run/secrets/personal-client-token"),
        (18803, "work", "/run/secrets/work-client-token"),
    }


# ---- the stack, for real


@dataclass
class Stack(ComposeStack):
    FILES = ("-f", "compose.yaml", "-f", "deploy/compose/compose.test.yaml")
    sidecar: str
    ports: dict[str, int]
    tokens: dict[str, str]
    keys: dict[str, str]

    def container(self, service: str) -> str:
        return self.sidecar if service == "sidecar" else f"{self.project}_{service}_1"


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- http only
            return bool(response.status == 200)
    except OSError:
        return False


def post_chat(port: int, token: str | None) -> tuple[int, str | None, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "from the host"}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/openai/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, None, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-OpenClaw-Sidecar-Error"), json.loads(exc.read())


def last_json_line(text: str) -> dict[str, Any]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines, text
    doc: dict[str, Any] = json.loads(lines[-1])
    return doc


@pytest.fixture(scope="module")
def stack(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack up (sidecar + fake upstream), both agents' API keys pasted into the volume."""
    project = f"ocsdeploy{os.getpid()}{secrets.token_hex(3)}"
    secrets_dir = tmp_path_factory.mktemp("compose-secrets")
    tokens = {a: f"{a}-client-{secrets.token_urlsafe(24)}" for a in AGENTS}
    keys = {a: f"sk-{a}-{secrets.token_hex(16)}" for a in AGENTS}
    for agent, token in tokens.items():
        write_secret(secrets_dir / f"{agent}-client-token", token)
    ports = {"personal": free_port(), "work": free_port()}
    env = {
        **os.environ,
        "BUILDAH_FORMAT": "docker",
        "OPENCLAW_SIDECAR_IMAGE": image,
        "OPENCLAW_SIDECAR_CONTAINER": f"{project}-sidecar",
        "OPENCLAW_SIDECAR_CONFIG_FILE": "./deploy/compose/sidecar.test.toml",
        "OPENCLAW_SECRETS_DIR": str(secrets_dir),
        "OPENCLAW_PERSONAL_PORT": str(ports["personal"]),
        "OPENCLAW_WORK_PORT": str(ports["work"]),
        "FAKE_UPSTREAM_KEYS": ",".join(keys.values()),
        "FAKE_REFRESH_TOKENS": STORM_REFRESH,
    }
    stack = Stack(project, env, f"{project}-sidecar", ports, tokens, keys)
    try:
        up = stack.compose("up", "-d", "sidecar", "fake-upstream")
        assert up.returncode == 0, up.stdout + up.stderr
        for port in ports.values():
            until(partial(http_ok, f"http://127.0.0.1:{port}/healthz"), f"port {port}")
        until(stack.upstream_seen, "the fake upstream")
        for agent, key in keys.items():
            paste = stack.podman(
                "exec", "-i", stack.sidecar, "openclaw-sidecar", "paste-api-key",
                "--provider", "openai", "--agent", agent,
                stdin=key + "\n",
            )  # fmt: skip
            assert paste.returncode == 0, paste.stderr
            assert key not in paste.stdout + paste.stderr
        yield stack
    finally:
        down = stack.compose("down", "-v", "-t", "5")
        left = stack.podman("ps", "-a", "--filter", f"name={project}", "--format", "{{.Names}}")
        stack.podman("volume", "rm", "-f", f"{project}_openclaw-state")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left.stdout.strip(), left.stdout


def test_agents_reach_the_upstream_each_with_only_its_own_key(stack: Stack) -> None:
    """Both agent containers get 200 through their ports; upstream saw each agent's own key."""
    up = stack.compose("up", "-d", "agent-personal", "agent-work")
    assert up.returncode == 0, up.stdout + up.stderr
    for agent in AGENTS:
        name = stack.container(f"agent-{agent}")
        waited = stack.podman("wait", name, timeout=120)
        logs = stack.podman("logs", name).stdout
        assert waited.stdout.strip() == "0", logs
        result = last_json_line(logs)
        assert result["status"] == 200
        assert result["reply"].endswith(f"(key ...{stack.keys[agent][-4:]}).")
    seen = stack.seen()["requests"]
    for agent in AGENTS:
        mine = [r for r in seen if r["prompt"] == f"Hello from the {agent} agent."]
        assert [r["authorization"] for r in mine] == [f"Bearer {stack.keys[agent]}"]
    leaked = json.dumps(seen)
    assert not [t for t in stack.tokens.values() if t in leaked], "client token sent upstream"
    assert all(r["authorization"] in {f"Bearer {k}" for k in stack.keys.values()} for r in seen)


def test_an_agent_cannot_use_the_other_agents_port(stack: Stack) -> None:
    """agent-personal holds only its own token; sent to the work port it gets 401."""
    listing = stack.compose("run", "--rm", "-T", "agent-personal", "ls", "/run/secrets")
    assert listing.stdout.split() == ["personal-client-token"], listing.stderr
    cross = stack.compose(
        "run", "--rm", "-T", "-e", "OPENAI_BASE_URL=http://sidecar:18803/openai/v1",
        "agent-personal",
    )  # fmt: skip
    result = last_json_line(cross.stdout)
    assert result["status"] == 401
    assert result["sidecar_error"] == "caller_unauthorized"


def test_wrong_or_missing_client_token_is_refused_before_upstream(stack: Stack) -> None:
    """From the host: the work token on the personal port and no token both get 401."""
    before = len(stack.seen()["requests"])
    personal, work = stack.ports["personal"], stack.ports["work"]
    assert post_chat(personal, stack.tokens["work"])[:2] == (401, "caller_unauthorized")
    assert post_chat(work, stack.tokens["personal"])[:2] == (401, "caller_unauthorized")
    status, code, body = post_chat(personal, None)
    assert (status, code, body["error"]["code"]) == (401, *["caller_unauthorized"] * 2)
    assert len(stack.seen()["requests"]) == before
    assert post_chat(personal, stack.tokens["personal"])[0] == 200
    last = stack.seen()["requests"][-1]
    assert last["authorization"] == f"Bearer {stack.keys['personal']}"


def test_ports_are_published_on_loopback_and_healthcheck_passes(stack: Stack) -> None:
    """`podman port` shows 127.0.0.1 only, and the image's HEALTHCHECK reports healthy."""
    mapping = stack.podman("port", stack.sidecar).stdout.split()
    published = [m for m in mapping if ":" in m and "/" not in m]
    assert len(published) == 2
    assert all(m.startswith("127.0.0.1:") for m in published), mapping
    assert stack.podman("healthcheck", "run", stack.sidecar).returncode == 0
    health = stack.podman("inspect", "--format", "{{.State.Health.Status}}", stack.sidecar)
    assert health.stdout.strip() == "healthy"


def test_second_sidecar_shares_the_pid_namespace_and_the_store(stack: Stack) -> None:
    """sidecar-2 sees the first sidecar's process and serves the work agent from the same volume."""
    up = stack.compose("up", "-d", "sidecar-2")
    assert up.returncode == 0, up.stdout + up.stderr
    second = stack.container("sidecar-2")
    ps = (
        "import pathlib; print('\\n'.join(p.read_text().replace('\\0', ' ') for p in "
        "pathlib.Path('/proc').glob('[0-9]*/cmdline') if p.exists()))"
    )
    until(
        lambda: stack.podman("exec", second, "python3", "-c", ps).stdout.count("serve") >= 2,
        "both sidecars in one PID namespace",
        seconds=30,
    )
    status = stack.podman("exec", second, "openclaw-sidecar", "status", "--agent", "work", "--json")
    profiles = json.loads(status.stdout)["agents"][0]["profiles"]
    assert [p["profileId"] for p in profiles] == ["openai:manual"]
    through_second = stack.compose(
        "run", "--rm", "-T", "-e", "OPENAI_BASE_URL=http://sidecar-2:18803/openai/v1",
        "agent-work",
    )  # fmt: skip
    assert last_json_line(through_second.stdout)["status"] == 200, through_second.stderr


STORM_CLIENT = """
import json, sys, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
token, n = open('/run/secrets/personal-client-token').read().strip(), int(sys.argv[1])
def call(_):
    req = urllib.request.Request('http://127.0.0.1:18802/openai-codex/responses',
        data=b'{"model": "gpt-5", "input": "hi"}',
        headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
with ThreadPoolExecutor(n) as pool:
    print(json.dumps(list(pool.map(call, range(n)))))
"""


def test_refresh_storm_across_two_sidecars_makes_one_token_call(stack: Stack) -> None:
    """Two sidecars on one volume and PID namespace, an expired OAuth token: one refresh."""
    stack.compose("up", "-d", "sidecar-2")
    second = stack.container("sidecar-2")
    until(
        lambda: stack.podman("exec", second, "python3", "-c", "import urllib.request as u; "
                             "u.urlopen('http://127.0.0.1:18802/healthz')").returncode == 0,
        "sidecar-2",
        seconds=30,
    )  # fmt: skip
    profile = {
        "type": "oauth",
        "provider": "openai-codex",
        "access": "at-expired",
        "refresh": STORM_REFRESH,
        "expires": int(time.time() * 1000) - 60_000,
        "accountId": "acct-storm",
    }
    write = (
        "import json, os, sys; p = '/state/agents/personal/agent/auth-profiles.json'; "
        "doc = json.load(open(p)); doc['profiles']['openai-codex:storm'] = json.load(sys.stdin); "
        "t = p + '.storm.tmp'; fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
        "os.write(fd, (json.dumps(doc, indent=2) + '\\n').encode()); os.close(fd); "
        "os.replace(t, p)"
    )
    seeded = stack.podman("exec", "-i", stack.sidecar, "python3", "-c", write,
                          stdin=json.dumps(profile))  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    storms = [
        subprocess.Popen(
            ["podman", "exec", name, "python3", "-c", STORM_CLIENT, str(STORM)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in (stack.sidecar, second)
    ]
    results = [proc.communicate(timeout=120) for proc in storms]
    statuses = [s for out, _ in results for s in json.loads(out.strip().splitlines()[-1])]
    logs = stack.podman("logs", stack.sidecar)
    assert statuses == [200] * (2 * STORM), (results, (logs.stdout + logs.stderr)[-3000:])
    calls = stack.seen()["token_calls"]
    assert [c["grant_type"] for c in calls] == ["refresh_token"]
