"""compose.fleet.yaml for real with podman-compose: Redis and two sidecars, one fleet login.

The stack is compose.fleet.yaml plus deploy/compose/compose.fleet.test.yaml (Redis built from
Debian's redis-server, a fake upstream and token endpoint, and the sidecars' config pointed at
it), under a unique project name. Each sidecar has its own state volume; only Redis is shared.
The tests run in order against one stack: seed a Codex login into fleet-a's local store with
the CLI, push it to the fleet, see it from fleet-b, use it through both ports, then expire it
and storm both sidecars.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from sidecar.config import parse_settings
from tests.deploy.compose_support import ROOT, ComposeStack, until, write_secret
from tests.e2e.sidecar import free_port

pytestmark = pytest.mark.deploy

FLEET_TEST_CONFIG = "deploy/compose/sidecar.fleet.test.toml"
REDIS_IMAGE = "localhost/openclaw-fleet-redis:test"
LOCAL_BASE = "localhost/python-base:bookworm"
SIDECARS = ("fleet-a", "fleet-b")
PROFILE = "openai-codex:fleet"
ORIGIN = "redis://redis:6379/openclaw-sidecar"  # what the CLI names the fleet: no password
EMAIL = "fleet@example.com"
STORM = 12  # concurrent requests per sidecar
# What the fake token endpoint issues (deploy/compose/fake_upstream.py): rt-/at- + 24 hex.
ISSUED = re.compile(r"\b(?:rt|at)-[0-9a-f]{24}\b")


def jwt(exp: float, sig: str, **claims: Any) -> str:
    """An unsigned JWT carrying ``exp``: what `import codex-cli` reads the expiry from."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), **claims})}.{sig}"


def codex_auth(access: str, refresh: str) -> str:
    """A Codex CLI auth.json holding a ChatGPT login."""
    return json.dumps(
        {"tokens": {"access_token": access, "refresh_token": refresh, "account_id": "acct-fleet"}}
    )


@dataclass
class Fleet(ComposeStack):
    FILES = ("-f", "compose.fleet.yaml", "-f", "deploy/compose/compose.fleet.test.yaml")
    ports: dict[str, int]
    client_token: str
    fleet_key: str
    seed_access: str  # valid for an hour: the login pushed first
    expired_access: str  # the same login later, its access token expired a minute ago
    seed_refresh: str
    outputs: list[str] = field(default_factory=list)  # every CLI command's stdout + stderr

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "seed access token": self.seed_access,
            "expired access token": self.expired_access,
            "refresh token": self.seed_refresh,
            "client token": self.client_token,
            "fleet key": self.fleet_key,
        }

    def container(self, service: str) -> str:
        if service in SIDECARS:  # container_name in compose.fleet.test.yaml
            return f"{self.project}-{service}"
        return f"{self.project}_{service}_1"

    def cli(self, service: str, *args: str, stdin: str | None = None) -> str:
        """``openclaw-sidecar ARGS`` in a sidecar container; its output is kept for the leak
        check, and a failure shows it."""
        flags = ("-i",) if stdin is not None else ()
        result = self.podman(
            "exec", *flags, self.container(service), "openclaw-sidecar", *args, stdin=stdin
        )
        self.outputs.append(result.stdout + result.stderr)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def fleet_list(self, service: str) -> list[dict[str, Any]]:
        profiles: list[dict[str, Any]] = json.loads(self.cli(service, "fleet", "list", "--json"))[
            "profiles"
        ]
        return profiles


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- http only
            doc: dict[str, Any] = json.load(response)
            return response.status, doc
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}


def ready(port: int) -> bool:
    return get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200


def post(port: int, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
    """A POST through a sidecar's published port: (status, the JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def chat(port: int, prompt: str, token: str | None) -> tuple[int, Any]:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": prompt}]}
    return post(port, "/openai-codex/chat/completions", body, token)


def responses(port: int, token: str) -> tuple[int, Any]:
    """A Codex ``/responses`` call: the fake accepts only an access token it issued."""
    return post(port, "/openai-codex/responses", {"model": "gpt-5", "input": "hi"}, token)


# ---- the files themselves (no podman needed)


def test_the_test_config_is_the_fleet_config_pointed_at_the_fake() -> None:
    """sidecar.fleet.test.toml passes the real parser: compose.fleet.yaml's listener and
    [fleet], openai-codex's API and token endpoint on the fake, no background refresh."""
    real, test = (
        parse_settings(tomllib.loads(path.read_text()), source=str(path))
        for path in (ROOT / "deploy/compose/sidecar.fleet.toml", ROOT / FLEET_TEST_CONFIG)
    )
    assert (test.listeners, test.fleet) == (real.listeners, real.fleet)
    codex = test.providers["openai-codex"]
    assert codex.base_url == "http://fake-upstream:8080/backend-api/codex"
    assert codex.token_url == "http://fake-upstream:8080/oauth/token"
    assert test.refresh.background_interval_seconds >= 3600


# ---- the stack, for real


@pytest.fixture(scope="module")
def redis_image(podman: str) -> str:
    """deploy/compose/redis.Dockerfile: Debian's redis-server, as docker.io cannot be reached."""
    base = os.environ.get("BASE_IMAGE", LOCAL_BASE)
    result = subprocess.run(
        [
            podman, "build", "--format", "docker", "--build-arg", f"BASE_IMAGE={base}",
            "-f", "deploy/compose/redis.Dockerfile", "-t", REDIS_IMAGE, "deploy/compose",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return REDIS_IMAGE


@pytest.fixture(scope="module")
def fleet(
    image: str, redis_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """The stack up: Redis, the fake upstream, fleet-a and fleet-b both ready."""
    project = f"ocsfleet{os.getpid()}{secrets.token_hex(3)}"
    now = time.time()
    seed_access = jwt(
        now + 3600,
        secrets.token_urlsafe(16),
        **{"https://api.openai.com/profile": {"email": EMAIL}},
    )
    stack = Fleet(
        project=project,
        env={},
        ports={"fleet-a": free_port(), "fleet-b": free_port()},
        client_token=f"fleet-client-{secrets.token_urlsafe(24)}",
        fleet_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        seed_access=seed_access,
        expired_access=jwt(now - 60, secrets.token_urlsafe(16)),
        seed_refresh=f"rt-fleet-seed-{secrets.token_hex(8)}",
    )
    secrets_dir = tmp_path_factory.mktemp("fleet-secrets")
    for name, value in {
        "redis-url": "redis://redis:6379/0",
        "fleet-key": stack.fleet_key,
        "client-token": stack.client_token,
    }.items():
        write_secret(secrets_dir / name, value)
    stack.env = {
        **os.environ,
        "BUILDAH_FORMAT": "docker",
        "OPENCLAW_SIDECAR_IMAGE": image,
        "REDIS_IMAGE": redis_image,
        "OPENCLAW_SECRETS_DIR": str(secrets_dir),
        "FLEET_A_PORT": str(stack.ports["fleet-a"]),
        "FLEET_B_PORT": str(stack.ports["fleet-b"]),
        # Upstream takes the seeded access token, or one the token endpoint issued; the token
        # endpoint rotates the seeded refresh token once.
        "FAKE_UPSTREAM_KEYS": stack.seed_access,
        "FAKE_REFRESH_TOKENS": stack.seed_refresh,
    }
    try:
        up = stack.compose("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        for service, port in stack.ports.items():
            until(partial(ready, port), f"{service} ready on 127.0.0.1:{port}")
        until(stack.upstream_seen, "the fake upstream")
        yield stack
    finally:
        down = stack.compose("down", "-v", "-t", "5")
        left = stack.podman("ps", "-a", "--filter", f"name={project}", "--format", "{{.Names}}")
        for volume in ("fleet-redis", "fleet-state-a", "fleet-state-b"):
            stack.podman("volume", "rm", "-f", f"{project}_{volume}")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left.stdout.strip(), left.stdout


def test_both_sidecars_are_ready_healthy_and_on_loopback_only(fleet: Fleet) -> None:
    """/readyz answers ready on each published port, the image's HEALTHCHECK passes, and
    `podman port` shows 127.0.0.1 only."""
    for service, port in fleet.ports.items():
        status, doc = get_json(f"http://127.0.0.1:{port}/readyz")
        assert (status, doc["status"], doc["agent"]) == (200, "ready", "main"), doc
        name = fleet.container(service)
        assert fleet.podman("healthcheck", "run", name).returncode == 0
        mapping = fleet.podman("port", name).stdout.split()
        assert f"127.0.0.1:{port}" in mapping, mapping
        assert all(m.startswith("127.0.0.1:") for m in mapping if ":" in m and "/" not in m)
    assert fleet.podman("exec", fleet.container("redis"), "redis-cli", "ping").stdout == "PONG\n"


def test_a_login_pushed_from_fleet_a_is_listed_by_fleet_b_masked(fleet: Fleet) -> None:
    """`import codex-cli` into fleet-a's own volume, `fleet push`: fleet-a's local copy loses
    its refresh token, and `fleet list --json` in fleet-b (another volume) shows the profile."""
    assert fleet.fleet_list("fleet-b") == []
    fleet.cli(
        "fleet-a", "import", "codex-cli", "--path", "/dev/stdin", "--profile-id", PROFILE,
        stdin=codex_auth(fleet.seed_access, fleet.seed_refresh),
    )  # fmt: skip
    pushed = fleet.cli("fleet-a", "fleet", "push", "--profile-id", PROFILE)
    assert pushed == f"Pushed {PROFILE} of agent main to the fleet at {ORIGIN}.\n"
    local = fleet.podman(
        "exec", fleet.container("fleet-a"), "python3", "-c",
        "import json; p = json.load(open('/state/agents/main/agent/auth-profiles.json'))"
        f"['profiles'][{PROFILE!r}]; print(sorted(p))",
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert "'access'" in local.stdout
    assert "'refresh'" not in local.stdout  # moved to the fleet, not copied

    (entry,) = fleet.fleet_list("fleet-b")
    expected: dict[str, Any] = {"agent": "main", "profileId": PROFILE, "provider": "openai-codex"}
    expected |= {"type": "oauth", "email": EMAIL, "version": 1}
    assert {k: entry[k] for k in expected} == expected
    assert entry["secret"] == f"OAuth ({EMAIL})"
    assert 3000_000 < entry["remainingMs"] <= 3600_000
    # fleet-b's own volume holds nothing: what it serves comes from Redis.
    (agent,) = json.loads(fleet.cli("fleet-b", "status", "--json"))["agents"]
    (shown,) = agent["profiles"]
    assert (shown["profileId"], shown["owner"]) == (PROFILE, "fleet:main")
    assert shown["source"] == ORIGIN
    store = "/state/agents/main/agent/auth-profiles.json"
    assert fleet.podman("exec", fleet.container("fleet-b"), "test", "-e", store).returncode == 1
    leaked = "\n".join(fleet.outputs)
    assert not [what for what, value in fleet.secrets.items() if value in leaked]


def test_each_sidecar_sends_the_fleet_credential_upstream(fleet: Fleet) -> None:
    """A request through each published port, with the client token, reaches the fake upstream
    with the pushed access token; without the client token it never leaves the sidecar."""
    before = len(fleet.seen()["requests"])
    for service, port in fleet.ports.items():
        status, answer = chat(port, f"no token via {service}", None)
        assert (status, answer["error"]["code"]) == (401, "caller_unauthorized"), answer
        status, answer = chat(port, f"via {service}", fleet.client_token)
        assert status == 200, answer
        content = answer["choices"][0]["message"]["content"]
        assert content == f"Hello from the fake upstream (key ...{fleet.seed_access[-4:]})."
    seen = fleet.seen()["requests"][before:]
    assert [(r["prompt"], r["authorization"]) for r in seen] == [
        (f"via {s}", f"Bearer {fleet.seed_access}") for s in SIDECARS
    ]
    assert fleet.client_token not in json.dumps(seen)


def storm(fleet: Fleet) -> list[tuple[str, int, Any]]:
    """STORM concurrent /responses calls through each sidecar at once."""
    targets = [s for _ in range(STORM) for s in SIDECARS]
    with ThreadPoolExecutor(len(targets)) as pool:

        def call(service: str) -> tuple[str, int, Any]:
            return (service, *responses(fleet.ports[service], fleet.client_token))

        return list(pool.map(call, targets))


def test_an_expired_fleet_token_is_refreshed_once_for_both_sidecars(fleet: Fleet) -> None:
    """The login pulled back, re-imported with its access token expired, pushed again: a storm
    through both sidecars makes exactly one token-endpoint call, and both serve the new token."""
    fleet.cli("fleet-a", "fleet", "pull", "--profile-id", PROFILE)
    assert fleet.fleet_list("fleet-b") == []
    fleet.cli(
        "fleet-a", "import", "codex-cli", "--path", "/dev/stdin", "--profile-id", PROFILE,
        stdin=codex_auth(fleet.expired_access, fleet.seed_refresh),
    )  # fmt: skip
    fleet.cli("fleet-a", "fleet", "push", "--profile-id", PROFILE)
    (entry,) = fleet.fleet_list("fleet-b")
    assert (entry["profileId"], entry["status"]) == (PROFILE, "expired")
    assert fleet.seen()["token_calls"] == []
    before = len(fleet.seen()["requests"])

    answers = storm(fleet)

    seen = fleet.seen()
    logs = {s: fleet.podman("logs", fleet.container(s)) for s in SIDECARS}
    tails = {s: (r.stdout + r.stderr)[-3000:] for s, r in logs.items()}
    assert [status for _, status, _ in answers] == [200] * (2 * STORM), (answers, tails)
    assert [c["grant_type"] for c in seen["token_calls"]] == ["refresh_token"], tails
    calls = seen["requests"][before:]
    assert {r["path"] for r in calls} == {"/backend-api/codex/responses"}
    assert len(calls) == 2 * STORM  # no 401 and retry: each went out once, with the new token
    (new_auth,) = {r["authorization"] for r in calls}
    new_access = new_auth.removeprefix("Bearer ")
    assert ISSUED.fullmatch(new_access), new_auth
    for service in SIDECARS:
        texts = {a["output"][0]["content"][0]["text"] for s, _, a in answers if s == service}
        assert texts == {f"token ...{new_access[-4:]}"}, service

    (entry,) = fleet.fleet_list("fleet-b")
    assert (entry["version"], entry["status"]) == (2, "expiring")  # 1 h left, < 24 h
    for service, port in fleet.ports.items():  # and after the storm, still the new token
        status, answer = responses(port, fleet.client_token)
        assert (status, answer["output"][0]["content"][0]["text"]) == (
            200,
            f"token ...{new_access[-4:]}",
        ), service
    assert len(fleet.seen()["token_calls"]) == 1


def test_no_secret_in_command_output_or_sidecar_logs(fleet: Fleet) -> None:
    """Neither the CLI's output nor `podman logs` of either sidecar holds a token, the client
    token or the fleet key; nor any token the fake token endpoint issued."""
    assert len(fleet.outputs) >= 8
    outputs = "\n".join(fleet.outputs)
    for service in SIDECARS:
        result = fleet.podman("logs", fleet.container(service))
        logs = result.stdout + result.stderr
        assert "request_completed" in logs, logs[-2000:]
        for where, text in ((f"podman logs {service}", logs), ("command output", outputs)):
            found = [what for what, value in fleet.secrets.items() if value in text]
            found += ISSUED.findall(text)
            assert not found, f"{where} holds {found}"
