"""`openclaw-sidecar login` as a subprocess: the test plays the browser against the fake
authorization server on loopback, and the sidecar's own callback server."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.fakes.token_server import FakeTokenServer, decode_jwt

REPO = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"^\s+(https?://\S+)$")
SAFETY_S = 20  # a safety net for a hung child, never an ordering wait
CONSOLE_REDIRECT = "https://console.example/oauth/code/callback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Env:
    """A temporary HOME and state dir, a config naming the fake, the callback port."""

    root: Path
    config: Path
    port: int
    fake: FakeTokenServer

    @property
    def state(self) -> Path:
        return self.root / "state"

    def profiles_path(self, agent: str = "main") -> Path:
        return self.state / "agents" / agent / "agent" / "auth-profiles.json"

    def profiles(self, agent: str = "main") -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.profiles_path(agent).read_text())["profiles"]
        return doc

    def environ(self) -> dict[str, str]:
        drop = {"OPENCLAW_HOME", "OPENCLAW_SIDECAR_CONFIG", "OPENCLAW_AGENT_DIR", "CODEX_HOME"}
        base = {k: v for k, v in os.environ.items() if k not in drop}
        return {**base, "HOME": str(self.root), "OPENCLAW_STATE_DIR": str(self.state)}


@pytest.fixture
def env(tmp_path: Path, token_server: FakeTokenServer) -> Env:
    """Codex and Anthropic logins pointed at the fake; Codex's callback on a free port."""
    port = free_port()
    config = tmp_path / "sidecar.toml"
    config.write_text(
        "[providers.openai-codex]\n"
        f'authorize_url = "{token_server.authorize_url}"\n'
        f'token_url = "{token_server.openai_token_url}"\n'
        f'redirect_uri = "http://localhost:{port}/auth/callback"\n'
        "[providers.anthropic]\n"
        f'authorize_url = "{token_server.authorize_url}"\n'
        f'token_url = "{token_server.anthropic_token_url}"\n'
        f'redirect_uri = "{CONSOLE_REDIRECT}"\n'
    )
    return Env(tmp_path, config, port, token_server)


class Login:
    """A running ``login`` child: stderr read line by line by a thread, stdin held open."""

    def __init__(self, env: Env, *args: str) -> None:
        command = [sys.executable, "-m", "sidecar", "login", "--no-browser"]
        self.proc = subprocess.Popen(
            [*command, "--config", str(env.config), *args],
            cwd=REPO,
            env=env.environ(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stderr,), daemon=True).start()

    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def authorize_url(self) -> str:
        """The URL the login prints for the user to open."""
        while (line := self.lines.get(timeout=SAFETY_S)) is not None:
            self.seen.append(line)
            if match := URL_LINE.match(line):
                return match.group(1)
        raise AssertionError(f"no authorize URL in {''.join(self.seen)!r}")

    def finish(self, paste: str | None = None) -> tuple[int, str, str]:
        """Paste ``paste`` (if any), close stdin, wait; (exit code, stdout, all of stderr)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if paste is not None:
            self.proc.stdin.write(paste)
            self.proc.stdin.flush()
        code = self.proc.wait(timeout=SAFETY_S)
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        while (line := self.lines.get(timeout=SAFETY_S)) is not None:
            self.seen.append(line)
        return code, out, "".join(self.seen)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


Starter = Callable[..., Login]


@pytest.fixture
def start(env: Env) -> Iterator[Starter]:
    """Starts ``login`` children and kills any still running at the end."""
    started: list[Login] = []

    def run(*args: str) -> Login:
        login = Login(env, *args)
        started.append(login)
        return login

    yield run
    for login in started:
        login.kill()
        for pipe in (login.proc.stdin, login.proc.stdout, login.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def authorize(url: str) -> str:
    """Plays the user signing in: the fake's 302 Location back to the callback."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302
    return response.headers["location"]


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | params
    return urlunsplit(parts._replace(query=urlencode(query)))


def stored_login(env: Env, profile_id: str, before_ms: int, agent: str = "main") -> dict[str, Any]:
    """The stored profile minus ``expires`` (checked to be an hour after the login) and
    ``idToken`` (checked to be the fake's id token for the login's account)."""
    profile = dict(env.profiles(agent)[profile_id])
    lifetime_ms = env.fake.registry.access_lifetime * 1000
    assert before_ms + lifetime_ms <= profile.pop("expires") <= now_ms() + lifetime_ms
    if "idToken" in profile:
        assert decode_jwt(profile.pop("idToken"))["email"] == "login@example.com"
    return profile


def issued(env: Env) -> dict[str, str]:
    """The access and refresh token of the fake's last successful exchange."""
    exchange = env.fake.exchanges[-1]
    return {"access": exchange["issued_access"], "refresh": exchange["issued_refresh"]}


def codex_fields(env: Env) -> dict[str, Any]:
    return {
        "type": "oauth",
        "provider": "openai-codex",
        **issued(env),
        "accountId": "acct_fake_login",
        "chatgptPlanType": "plus",
        "email": "login@example.com",
    }


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_no_secret(env: Env, *texts: str) -> None:
    for secret in issued(env).values():
        assert all(secret not in text for text in texts)


def last_line(stderr: str) -> str:
    return stderr.rstrip("\n").splitlines()[-1]


# --- the callback path -----------------------------------------------------------------------


def test_login_by_callback_stores_the_codex_profile(env: Env, start: Starter) -> None:
    """Authorize at the fake, follow its redirect to the callback: the login is stored 0600."""
    before = now_ms()
    login = start("--provider", "openai-codex", "--timeout", "30")
    url = login.authorize_url()
    location = authorize(url)
    page = httpx.get(location)
    code, out, err = login.finish()
    assert (code, page.status_code) == (0, 200)
    assert "Sign-in received" in page.text
    assert parse_qs(urlsplit(location).query)["code"][0] not in page.text
    assert stored_login(env, "openai-codex:login@example.com", before) == codex_fields(env)
    assert stat.S_IMODE(env.profiles_path().stat().st_mode) == 0o600
    assert out == (
        "Stored openai-codex:login@example.com (oauth, provider openai-codex) "
        f"for agent main in {env.profiles_path()}\n"
    )
    assert f"Waiting for the callback on http://localhost:{env.port}/auth/callback" in err
    assert_no_secret(env, out, err)


def test_login_sends_pkce_s256_and_the_verifier(env: Env, start: Starter) -> None:
    """The authorize request carries an S256 challenge; the exchange sends its verifier."""
    login = start("--provider", "openai-codex")
    url = login.authorize_url()
    httpx.get(authorize(url))
    code, _, _ = login.finish()
    query = parse_qs(urlsplit(url).query)
    params = env.fake.exchanges[-1]["params"]
    assert code == 0
    assert env.fake.exchanges[-1]["status"] == 200  # the fake checks S256(verifier)
    assert (query["code_challenge_method"], len(query["state"][0])) == (["S256"], 32)
    assert params["grant_type"] == "authorization_code"
    assert params["redirect_uri"] == f"http://localhost:{env.port}/auth/callback"


def test_login_refuses_a_callback_with_another_state(env: Env, start: Starter) -> None:
    """A callback whose state is not the login's: failure page, exit 1, nothing exchanged."""
    login = start("--provider", "openai-codex")
    page = httpx.get(with_query(authorize(login.authorize_url()), state="forged"))
    code, out, err = login.finish()
    assert (code, out, page.status_code) == (1, "", 400)
    assert "Sign-in failed" in page.text
    assert last_line(err) == (
        "openclaw-sidecar: the redirect's state does not match this login; start the login again"
    )
    assert env.fake.calls == 0
    assert not env.profiles_path().exists()


def test_login_reports_access_denied(env: Env, start: Starter) -> None:
    """The provider's ``error=access_denied`` ends the login with that reason."""
    login = start("--provider", "openai-codex")
    state = parse_qs(urlsplit(login.authorize_url()).query)["state"][0]
    callback = f"http://localhost:{env.port}/auth/callback"
    page = httpx.get(callback, params={"error": "access_denied", "state": state})
    code, _, err = login.finish()
    assert (code, page.status_code) == (1, 400)
    assert last_line(err) == (
        "openclaw-sidecar: the provider refused the login (access_denied); start the login again"
    )
    assert not env.profiles_path().exists()


def test_login_ignores_other_paths_on_the_callback_port(env: Env, start: Starter) -> None:
    """A favicon request gets a 404 and the login still finishes by its callback."""
    login = start("--provider", "openai-codex")
    url = login.authorize_url()
    stray = httpx.get(f"http://localhost:{env.port}/favicon.ico")
    httpx.get(authorize(url))
    code, _, _ = login.finish()
    assert (stray.status_code, code) == (404, 0)


def test_login_times_out_cleanly(env: Env, start: Starter) -> None:
    """With no callback and nothing pasted, ``--timeout 2`` ends the login with exit 1."""
    login = start("--provider", "openai-codex", "--timeout", "2")
    login.authorize_url()
    code, out, err = login.finish()
    assert (code, out) == (1, "")
    assert last_line(err) == (
        "openclaw-sidecar: no callback and nothing pasted within 2 s; run the login again "
        "(--timeout sets how long to wait)"
    )
    assert not env.profiles_path().exists()


def test_login_refuses_a_busy_callback_port(env: Env, start: Starter) -> None:
    """Another process on the callback port: one clear line, before any URL is shown."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", env.port))
        busy.listen()
        code, out, err = start("--provider", "openai-codex").finish()
    assert (code, out) == (1, "")
    assert err.startswith(f"openclaw-sidecar: cannot listen on 127.0.0.1:{env.port} ")
    assert len(err.splitlines()) == 1


def test_login_reports_a_refused_exchange(env: Env, start: Starter) -> None:
    """The token endpoint refusing the code: the provider's reason, nothing stored."""
    env.fake.set_mode("reject")
    login = start("--provider", "openai-codex")
    httpx.get(authorize(login.authorize_url()))
    code, _, err = login.finish()
    assert code == 1
    assert last_line(err) == (
        "openclaw-sidecar: openai-codex refused the sign-in (invalid_grant); sign in again "
        "with: openclaw-sidecar login --provider openai-codex"
    )
    assert not env.profiles_path().exists()


# --- the paste path --------------------------------------------------------------------------


def test_login_by_pasted_redirect_url(env: Env, start: Starter) -> None:
    """The redirect URL pasted on stdin finishes the login as the callback would."""
    before = now_ms()
    login = start("--provider", "openai-codex", "--agent", "work")
    location = authorize(login.authorize_url())
    code, out, err = login.finish(paste=f"\n{location}\n")
    assert code == 0
    stored = stored_login(env, "openai-codex:login@example.com", before, agent="work")
    assert stored == codex_fields(env)
    assert out.endswith(f"for agent work in {env.profiles_path('work')}\n")
    assert_no_secret(env, out, err)


def test_login_openai_alias_with_code_and_state(env: Env, start: Starter) -> None:
    """``--provider openai`` stores the Codex login; ``code#state`` and --profile-id work."""
    login = start("--provider", "openai", "--profile-id", "openai-codex:work")
    query = parse_qs(urlsplit(authorize(login.authorize_url())).query)
    code, out, err = login.finish(paste=f"{query['code'][0]}#{query['state'][0]}\n")
    assert code == 0
    assert env.profiles()["openai-codex:work"]["provider"] == "openai-codex"
    assert out.startswith("Stored openai-codex:work (oauth, provider openai-codex) ")
    assert "storing the ChatGPT login as provider openai-codex" in err


def test_login_refuses_a_pasted_url_of_another_login(env: Env, start: Starter) -> None:
    """A pasted redirect with a foreign state is refused; nothing is exchanged or stored."""
    login = start("--provider", "openai-codex")
    location = with_query(authorize(login.authorize_url()), state="forged")
    code, _, err = login.finish(paste=location + "\n")
    assert code == 1
    assert last_line(err).startswith("openclaw-sidecar: the redirect's state does not match")
    assert (env.fake.calls, env.profiles_path().exists()) == (0, False)


def test_login_anthropic_by_pasted_code(env: Env, start: Starter) -> None:
    """Anthropic: the console page's ``code#state`` pasted; a JSON exchange with the state."""
    before = now_ms()
    login = start("--provider", "anthropic")
    url = login.authorize_url()
    query = parse_qs(urlsplit(authorize(url)).query)
    code, out, err = login.finish(paste=f"{query['code'][0]}#{query['state'][0]}\n")
    assert code == 0
    assert parse_qs(urlsplit(url).query)["code"] == ["true"]
    assert "the page shows a code (code#state)" in err
    assert env.fake.exchanges[-1]["body_format"] == "json"
    assert env.fake.exchanges[-1]["params"]["state"] == query["state"][0]
    profile = dict(env.profiles()["anthropic:login@example.com"])
    lifetime_ms = env.fake.registry.access_lifetime * 1000 - 300_000
    assert before + lifetime_ms <= profile.pop("expires") <= now_ms() + lifetime_ms
    assert profile == {
        "type": "oauth",
        "provider": "anthropic",
        **issued(env),
        "email": "login@example.com",
    }
    assert_no_secret(env, out, err)


# --- refusals before any wait ----------------------------------------------------------------


def run_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        cwd=REPO,
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=SAFETY_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--provider", "openrouter"],
            2,
            "--provider openrouter: it has no browser login; add one with `openclaw-sidecar "
            "paste-api-key --provider openrouter --config {config} --state-dir {state}`",
        ),
        (
            ["--provider", "my-llm", "--agent", "work"],
            2,
            "--provider my-llm: not a provider the sidecar knows (`openclaw-sidecar providers` "
            "lists them); add [providers.my-llm] to the config and pass --config",
        ),
        (
            ["--provider", "openai-codex", "--profile-id", "work"],
            2,
            "--profile-id 'work': use <provider>:<name>",
        ),
        (
            ["--provider", "openai-codex", "--timeout", "0"],
            2,
            "--timeout 0: give seconds above 0, at most 3600",
        ),
        (["--provider", "openai-codex", "--agent", "Bad/Agent"], 1, None),
    ],
)
def test_login_refuses_bad_arguments(
    env: Env, args: list[str], code: int, message: str | None
) -> None:
    """Bad arguments: one line on stderr and a non-zero exit, before any URL is printed."""
    result = run_cli(env, "login", "--config", str(env.config), *args)
    assert (result.returncode, result.stdout) == (code, "")
    assert len(result.stderr.splitlines()) == 1
    if message is not None:
        shown = message.format(config=env.config, state=env.state)
        assert result.stderr == f"openclaw-sidecar: {shown}\n"


def test_login_help_has_examples(env: Env) -> None:
    """``login --help`` explains the flow and shows examples."""
    result = run_cli(env, "login", "--help")
    assert result.returncode == 0
    assert "examples:\n  openclaw-sidecar login --provider openai-codex\n" in result.stdout
    assert "--state-dir" in result.stdout
