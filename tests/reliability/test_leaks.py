"""Leaks and isolation. Canary secrets in every credential type (api_key, token, OAuth access,
refresh and id token, a SecretRef-resolved key, client tokens) through requests, errors,
refreshes, /metrics, status and CLI failures: zero occurrences anywhere a person can see.
Secrets in memory have masked reprs; files and folders are private even under umask 000; a
bound port's client token cannot be bypassed, and is compared with hmac.compare_digest."""

from __future__ import annotations

import hmac
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.auth.credentials import Credential
from sidecar.config import Listener, Settings
from sidecar.errors import CallerUnauthorized, SidecarError
from sidecar.providers import grants
from sidecar.providers.injection import credential_injection
from sidecar.proxy import headers as rules
from sidecar.proxy.forward import Proxy
from sidecar.secret import Secret
from sidecar.sources.openclaw.model import parse_profiles
from tests.e2e.refresh_support import CODEX_ID, RESPONSES, RESPONSES_BODY, expect_oauth
from tests.e2e.refresh_support import provider_tables as oauth_tables
from tests.e2e.sidecar import Sidecar, cli_env, free_port, render_config, run_cli, start_sidecar
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream
from tests.reliability.support import report

pytestmark = pytest.mark.reliability


def canary(kind: str) -> str:
    return f"{kind}-CANARY-{uuid.uuid4().hex}"


@dataclass
class Seen:
    """Everything a person could see, by where it was seen."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str | bytes) -> None:
        self.texts.append(
            (where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
        )

    def response(self, where: str, response: httpx.Response) -> httpx.Response:
        self.add(f"{where} headers", repr(response.headers.raw))
        self.add(f"{where} body", response.content)
        return response

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        return [
            f"{name} in {where}"
            for where, text in self.texts
            for name, value in secrets.items()
            if value in text
        ]


@dataclass
class Leaky:
    sidecar: Sidecar
    tokens: FakeTokenServer
    upstream: FakeUpstream
    secrets: dict[str, str]
    env: dict[str, str]
    workdir: Path


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Leaky]:
    """A sidecar under umask 000 with a canary in every credential type; bound ``work`` port
    with a client token."""
    root = tmp_path_factory.mktemp("leaks")
    state_dir = root / "state"
    state_dir.mkdir()
    old_umask = os.umask(0)
    try:
        with FakeTokenServer() as tokens, FakeUpstream(tokens=tokens) as upstream:
            grant = tokens.seed(access_expires_in=-60)
            secrets = {
                "api_key": canary("sk"),
                "setup_token": f"sk-ant-oat01-CANARY-{uuid.uuid4().hex}{uuid.uuid4().hex}-AA",
                "ref_key": canary("sk-ref"),
                "client": canary("client"),
                "other_client": canary("client2"),
                "oauth_access": grant.access_token,
                "oauth_refresh": grant.refresh_token,
                "id_token": grant.id_token or "",
            }
            env = cli_env(state_dir, root, {"REF_KEY": secrets["ref_key"]})
            for args, secret in (
                (["paste-api-key", "--provider", "openai"], secrets["api_key"]),
                (
                    ["paste-token", "--provider", "anthropic", "--agent", "work"],
                    secrets["setup_token"],
                ),
            ):
                done = run_cli([*args], env, stdin=secret + "\n")
                assert done.returncode == 0, done.stderr
            profiles = parse_profiles(
                (state_dir / "agents/main/agent/auth-profiles.json").read_bytes()
            ).raw
            profiles["profiles"][CODEX_ID] = {
                "type": "oauth",
                "provider": "openai-codex",
                "access": grant.access_token,
                "refresh": grant.refresh_token,
                "expires": grant.expires_ms,
                "accountId": grant.account_id,
                "idToken": grant.id_token,
            }
            profiles["profiles"]["my-llm:ref"] = {
                "type": "api_key",
                "provider": "my-llm",
                "keyRef": {"source": "env", "provider": "default", "id": "REF_KEY"},
            }
            path = state_dir / "agents/main/agent/auth-profiles.json"
            import json

            path.write_text(json.dumps(profiles, indent=2) + "\n")
            for name in ("client", "other_client"):
                (root / f"{name}.token").write_text(secrets[name] + "\n")
            expect_oauth(upstream, secrets["setup_token"])
            upstream.expect("/oa", [secrets["api_key"]])
            upstream.expect("/my", [secrets["ref_key"]])
            providers = {
                **oauth_tables(tokens, upstream),
                "openai": {"base_url": upstream.url + "/oa"},
                "my-llm": {"base_url": upstream.url + "/my/v1"},
            }
            ports = [free_port(), free_port(), free_port()]
            listeners = [
                {"port": ports[0]},
                {
                    "port": ports[1],
                    "agent": "work",
                    "client_token_file": str(root / "client.token"),
                },
                {
                    "port": ports[2],
                    "agent": "personal",
                    "client_token_file": str(root / "other_client.token"),
                },
            ]
            sidecar = start_sidecar(
                render_config(listeners, providers),
                ports,
                state_dir=state_dir,
                workdir=root,
                env={"REF_KEY": secrets["ref_key"]},
            )
            try:
                yield Leaky(sidecar, tokens, upstream, secrets, env, root)
            finally:
                sidecar.stop()
    finally:
        os.umask(old_umask)


CHAT: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "c",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hi"}],
}


def drive(leaky: Leaky, seen: Seen) -> int:
    """A broad mix of requests, errors and commands; returns how many were made."""
    s, url = leaky.secrets, leaky.sidecar.url
    work = {"authorization": f"Bearer {s['client']}", "anthropic-version": "2023-06-01"}
    calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        (url(0), "/openai/v1/chat/completions", CHAT, {}),
        (url(0), "/my-llm/chat/completions", CHAT, {}),
        (url(0), RESPONSES, dict(RESPONSES_BODY), {}),  # refresh of an expired login
        (url(0), RESPONSES, dict(RESPONSES_BODY), {}),
        (url(1), "/anthropic/v1/messages", MESSAGE, work),
        (url(1), "/anthropic/v1/messages", MESSAGE, {"x-api-key": s["client"][:-1]}),
        (
            url(1),
            "/anthropic/v1/messages",
            MESSAGE,
            {"authorization": f"Bearer {s['other_client']}"},
        ),
        (url(2), "/openai/v1/chat/completions", CHAT, {"x-api-key": s["client"]}),
        (url(0), "/agents/personal/openai/v1/chat/completions", CHAT, {}),
        (url(0), "/openai/v1/chat/completions", CHAT, {"authorization": f"Bearer {s['api_key']}x"}),
        (url(0), "/agents/../openai/v1/x", CHAT, {}),
    ]
    with httpx.Client(timeout=15) as http:
        for base, path, body, headers in calls:
            seen.response(path, http.post(base + path, json=body, headers=headers))
        leaky.upstream.set_mode("500", times=1)
        seen.response("upstream 500", http.post(url(0) + "/openai/v1/chat/completions", json=CHAT))
        leaky.tokens.registry.revoke()  # every access token refused: refresh, then reauth
        leaky.tokens.set_mode("reject")
        seen.response("reauth", http.post(url(0) + RESPONSES, json=dict(RESPONSES_BODY)))
        leaky.tokens.set_mode("normal")
        for page in ("/metrics", "/readyz", "/healthz"):
            seen.response(page, http.get(url(0) + page))
    commands = [
        (["status"], None),
        (["status", "--json"], None),
        (["status", "--check"], None),
        (["status", "--agent", "work", "--json"], None),
        (
            ["paste-token", "--provider", "anthropic", "--agent", "x"],
            "sk-ant-oat01-" + s["api_key"],
        ),
        (["paste-api-key", "--provider", "openai", "--agent", "bad/agent"], s["api_key"]),
        (["paste-api-key", "--provider", "openai", "--agent", "pasted"], s["api_key"]),
        (
            ["login", "--provider", "anthropic", "--no-browser", "--timeout", "5"],
            f"{s['api_key']}#wrong-state",
        ),
        (
            ["login", "--provider", "openai-codex", "--no-browser", "--timeout", "5"],
            f"http://localhost:1455/auth/callback?code={s['api_key']}&state=wrong",
        ),
    ]
    env = {**leaky.env, "OPENCLAW_SIDECAR_CONFIG": str(next(leaky.workdir.glob("sidecar-*.toml")))}
    for args, stdin in commands:
        done = run_cli(args, env, stdin=None if stdin is None else stdin + "\n")
        seen.add(f"{args[:2]} stdout", done.stdout)
        seen.add(f"{args[:2]} stderr", done.stderr)
    return len(calls) + 5 + len(commands)


def test_no_canary_anywhere_a_person_can_see(leaky: Leaky) -> None:
    """Responses, error bodies, pages, status output, CLI errors and every log line hold no
    canary of any credential type (nor the tokens issued by refreshes)."""
    seen = Seen()
    made = drive(leaky, seen)
    seen.add("sidecar log", leaky.sidecar.logs())
    secrets = dict(leaky.secrets)
    for n, exchange in enumerate(leaky.tokens.exchanges):
        for key in ("issued_access", "issued_refresh"):
            if exchange.get(key):
                secrets[f"{key}#{n}"] = exchange[key]
    assert leaky.tokens.calls >= 1  # a refresh happened, its tokens are canaries too
    assert seen.leaks(secrets) == []
    report(
        "leaks",
        canaries=len(secrets),
        requests_and_commands=made,
        log_lines=len(leaky.sidecar.logs().splitlines()),
    )


def test_files_and_folders_are_private(leaky: Leaky) -> None:
    """Under umask 000, every file the sidecar and CLI made is 0600 and every folder 0700;
    lock files 0644 and the refresh-lock folders 0755, as OpenClaw makes them."""
    state_dir = leaky.sidecar.state_dir
    wrong = []
    for path in state_dir.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        lock_area = "locks" in path.relative_to(state_dir).parts
        if path.is_dir():
            expected = 0o755 if lock_area else 0o700
        else:
            expected = 0o644 if path.name.endswith(".lock") else 0o600
        if mode != expected:
            wrong.append(f"{path.relative_to(state_dir)} {oct(mode)}")
    assert wrong == []
    assert any(p.is_file() for p in state_dir.rglob("*"))


def test_reprs_mask_every_secret() -> None:
    """Profiles, Credential, Settings/Listener, TokenRequest, Grant, Injection and errors made
    from token answers show no secret."""
    secret = canary("sk")
    doc = parse_profiles(
        '{"profiles": {"a:1": {"type": "api_key", "provider": "a", "key": "%s"},'
        ' "o:1": {"type": "oauth", "provider": "o", "access": "%s", "refresh": "%s"},'
        ' "t:1": {"type": "token", "provider": "t", "token": "%s"}}}' % ((secret,) * 4)
    )
    auth = grants.OPENAI_CODEX
    grant = grants.Grant(Secret(secret), Secret(secret), 1, id_token=Secret(secret))
    shown = [
        repr(doc),
        repr(doc.entries),
        repr(Credential("a:1", "a", "api_key", Secret(secret))),
        repr(Settings(listeners=(Listener(port=1, client_token=Secret(secret)),))),
        repr(grants.refresh_request(auth, secret)),
        repr(grant),
        repr(
            credential_injection(Settings().providers["openai"], "api_key", secret, account_id=None)
        ),
    ]
    for body in (
        b'{"error": "%s"}' % secret.encode(),
        b'{"error": {"code": "%s", "message": "%s"}}' % (secret.encode(), secret.encode()),
        b'{"access_token": "%s"}' % secret.encode(),
    ):
        for status in (200, 400, 401, 500):
            with pytest.raises(SidecarError) as failed:
                grants.parse_token_response(auth, status, body, 0, previous_refresh=secret)
            shown += [str(failed.value), repr(failed.value)]
    assert [text for text in shown if secret in text] == []


# --- isolation ---------------------------------------------------------------------------------


def test_bound_port_client_token_cannot_be_bypassed(leaky: Leaky) -> None:
    """Missing, wrong, near-miss, other port's token, in every header form: 401; only the
    exact token opens the port, and only for its own agent."""
    s, url = leaky.secrets, leaky.sidecar.url(1)
    token = s["client"]
    refused = [
        {},
        {"authorization": "Bearer"},
        {"authorization": f"Basic {token}"},
        {"authorization": f"Bearer {token[:-1]}"},
        {"authorization": f"Bearer {token}x"},
        {"authorization": f"Bearer {token.upper()}"},
        {"x-api-key": s["other_client"]},
        {"authorization": f"Bearer {s['other_client']}"},
        {"api-key": token[1:]},
        {"x-openclaw-token": ""},
        {"authorization": f"Bearer {token}".encode() + b"\xc3\xa9"},
    ]
    with httpx.Client(timeout=10) as http:
        for headers in refused:
            response = http.post(url + "/anthropic/v1/messages", json=MESSAGE, headers=headers)
            assert (response.status_code, response.headers.get("x-openclaw-sidecar-error")) == (
                401,
                "caller_unauthorized",
            ), headers
        for name in ("x-api-key", "api-key", "x-openclaw-token"):
            response = http.post(
                url + "/anthropic/v1/messages",
                json=MESSAGE,
                headers={name: token, "anthropic-version": "2023-06-01"},
            )
            assert response.status_code == 200, (name, response.text)
        mismatch = http.post(
            url + "/agents/personal/openai/v1/chat/completions",
            json=CHAT,
            headers={"x-api-key": token},
        )
        assert mismatch.status_code == 403
    report("isolation", refused_variants=len(refused), accepted_forms=3)


def test_client_tokens_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener's check goes through hmac.compare_digest (constant time), for right and
    wrong tokens alike."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(rules.hmac, "compare_digest", spy)
    proxy = Proxy.__new__(Proxy)
    proxy.listener = Listener(port=1, agent="work", client_token=Secret("right-token"))
    proxy._check_caller([(b"x-api-key", b"right-token")])
    with pytest.raises(CallerUnauthorized):
        proxy._check_caller([(b"authorization", b"Bearer wrong-token")])
    assert calls == [(b"right-token", b"right-token"), (b"wrong-token", b"right-token")]
