"""End-to-end fixtures: the real ``openclaw-sidecar serve`` process in front of the fakes, its
store seeded through the CLI with canary secrets, and a guard that fails a test when a canary
shows up anywhere a client or an operator could see it.

The profiles are stored once per session with the real CLI (``paste-api-key`` / ``paste-token``,
secrets on stdin) and every sidecar starts on a copy of that store; canaries are unique to the
session (client tokens unique to a sidecar). A module reuses one sidecar; the guard checks after
every test (and once more after the process stopped) that no canary is in any response a client
received or in any log line.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from sidecar.providers.catalog import BUILTIN_PROVIDERS
from tests.e2e.sidecar import (
    Sidecar,
    cli_env,
    free_port,
    render_config,
    run_cli,
    start_sidecar,
)
from tests.fakes.token_server import FakeTokenServer
from tests.fakes.upstream import FakeUpstream

# Where each provider lives on the one fake upstream: distinct prefixes, so a request that
# reached the wrong provider's base URL is visible in the recorded path.
PREFIXES: Mapping[str, str] = {
    "openai": "/oa",
    "anthropic": "/an",
    "openrouter": "/or/api",
    "my-llm": "/my/v1",
}
CUSTOM_AUTH_HEADER = "X-Custom-Key"


def canary(kind: str) -> str:
    """A secret that is unique in the whole suite and easy to search for."""
    return f"{kind}-CANARY-{uuid.uuid4().hex}"


def anthropic_setup_token() -> str:
    """An Anthropic setup token as OpenClaw accepts it (sk-ant-oat01-, at least 80 chars)."""
    return f"sk-ant-oat01-CANARY-{uuid.uuid4().hex}{uuid.uuid4().hex}-AA"


@dataclass
class Canaries:
    """The secrets one sidecar was seeded with, by name."""

    keys: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> str:
        self.keys[name] = value
        return value

    def found_in(self, text: str | bytes) -> list[str]:
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        return sorted(name for name, value in self.keys.items() if value.encode() in data)


class Leaks:
    """What the clients received that held a canary; checked after every test."""

    def __init__(self) -> None:
        self.canaries: list[Canaries] = []
        self.found: list[str] = []

    def scan(self, where: str, data: str | bytes) -> None:
        for group in self.canaries:
            for name in group.found_in(data):
                self.found.append(f"{name} in {where}")


@dataclass
class Sent:
    """What a client put on the wire for one request (as httpx built it)."""

    method: str
    url: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


def _guarded_transport(lib: Any, leaks: Leaks, sent: list[Sent]) -> Any:
    """A real-socket transport of ``lib`` (httpx, or httpx2 that the SDKs use) that scans every
    response for canaries and remembers what was sent, for comparison with the upstream's view."""

    class ScanningStream(lib.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, where: str) -> None:
            self.inner, self.where = inner, where

        def __iter__(self) -> Iterator[bytes]:
            tail = b""
            for chunk in self.inner:
                leaks.scan(self.where, tail + chunk)
                tail = (tail + chunk)[-256:]
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class GuardedTransport(lib.BaseTransport):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            # Plain http on loopback only: skipping the CA bundle saves ~0.1 s per client.
            self.inner = lib.HTTPTransport(verify=False)

        def handle_request(self, request: Any) -> Any:
            try:
                body = request.content
            except lib.RequestNotRead:  # a streamed upload: the test knows what it sent
                body = b""
            headers = [(k.decode().lower(), v.decode("latin-1")) for k, v in request.headers.raw]
            query = request.url.query.decode()
            sent.append(Sent(request.method, str(request.url), query, headers, body))
            response = self.inner.handle_request(request)
            where = f"{request.method} {request.url.path}"
            leaks.scan(f"response headers of {where}", repr(response.headers.raw))
            response.stream = ScanningStream(response.stream, f"response body of {where}")
            return response

        def close(self) -> None:
            self.inner.close()

    return GuardedTransport()


class Wire:
    """This test's clients: ``http`` (httpx) and ``sdk_http`` (httpx2, for the SDKs), both
    scanned for canaries; ``sent`` is what they sent, in order."""

    def __init__(self, leaks: Leaks) -> None:
        self.leaks = leaks
        self.sent: list[Sent] = []
        self.http = httpx.Client(transport=_guarded_transport(httpx, leaks, self.sent), timeout=10)
        self.sdk_http = httpx2.Client(
            transport=_guarded_transport(httpx2, leaks, self.sent), timeout=10
        )

    def raw(
        self,
        base_url: str,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> RawResponse:
        """One request with ``target`` sent exactly as given (no URL normalisation: ``..`` and
        percent-escapes stay, absolute-form is possible) and only ``headers`` (plus a Host
        header naming ``base_url`` unless ``headers`` has one); the response is scanned."""
        url = httpx.URL(base_url)
        connection = HTTPConnection(url.host, url.port, timeout=10)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            if not any(name.lower() == "host" for name, _ in headers):
                connection.putheader("Host", f"{url.host}:{url.port}")
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            result = RawResponse(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()
        self.leaks.scan(f"response headers of {method} {target}", repr(result.headers))
        self.leaks.scan(f"response body of {method} {target}", result.body)
        return result

    def close(self) -> None:
        self.http.close()
        self.sdk_http.close()


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="session")
def leaks() -> Leaks:
    """Every canary of the session and whatever leaked of them."""
    return Leaks()


@pytest.fixture
def wire(leaks: Leaks) -> Iterator[Wire]:
    """This test's canary-scanned clients."""
    clients = Wire(leaks)
    yield clients
    clients.close()


@pytest.fixture
def http(wire: Wire) -> httpx.Client:
    """An httpx client over real sockets, every response scanned for canaries."""
    return wire.http


@pytest.fixture(scope="module")
def e2e_token_server() -> Iterator[FakeTokenServer]:
    """One fake token server per module."""
    with FakeTokenServer() as server:
        yield server


@pytest.fixture(scope="module")
def fake(e2e_token_server: FakeTokenServer) -> Iterator[FakeUpstream]:
    """One fake upstream per module (the sidecars of the module point at it)."""
    with FakeUpstream(tokens=e2e_token_server) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    """Each test starts with an upstream that has recorded nothing and behaves normally."""
    if "fake" in request.fixturenames:
        upstream: FakeUpstream = request.getfixturevalue("fake")
        upstream.reset()


@dataclass
class Profile:
    """A profile to seed through the CLI: ``paste-api-key`` or ``paste-token`` on stdin."""

    agent: str
    provider: str
    profile_id: str
    secret: str
    kind: str = "api_key"  # or "token"


def provider_tables(upstream_url: str, **overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every provider pointed at its own prefix of the fake upstream, plus ``my-llm``."""
    tables: dict[str, Any] = {
        name: {"base_url": upstream_url + prefix} for name, prefix in PREFIXES.items()
    }
    tables["my-llm"]["auth"] = f"header:{CUSTOM_AUTH_HEADER}"
    for name, table in overrides.items():
        tables[name] = {**tables.get(name, {}), **table}
    return tables


def standard_profiles(canaries: Canaries) -> list[Profile]:
    """main: API keys (openai, anthropic, my-llm); personal and work: tokens (openai and an
    Anthropic setup token). A token outranks an API key (OpenClaw: oauth < token < api_key),
    so an agent that also inherits main's keys still picks its own profile first."""
    profiles = [
        Profile("main", "openai", "openai:main", canaries.add("openai:main", canary("sk"))),
        Profile(
            "main",
            "anthropic",
            "anthropic:main",
            canaries.add("anthropic:main", canary("sk-ant-api03")),
        ),
        Profile("main", "my-llm", "my-llm:main", canaries.add("my-llm:main", canary("custom"))),
    ]
    for agent in ("personal", "work"):
        openai_token = canaries.add(f"openai:{agent}", canary("tok"))
        anthropic_token = canaries.add(f"anthropic:{agent}", anthropic_setup_token())
        profiles += [
            Profile(agent, "openai", f"openai:{agent}", openai_token, kind="token"),
            Profile(agent, "anthropic", f"anthropic:{agent}", anthropic_token, kind="token"),
        ]
    return profiles


def seed(env: Mapping[str, str], profile: Profile) -> None:
    """Store one profile with the real CLI, the secret on stdin."""
    command = "paste-api-key" if profile.kind == "api_key" else "paste-token"
    args = [command, "--provider", profile.provider, "--agent", profile.agent]
    if profile.provider not in BUILTIN_PROVIDERS:  # my-llm: only the sidecar's config knows it
        args.append("--force")
    done = run_cli([*args, "--profile-id", profile.profile_id], env, stdin=profile.secret + "\n")
    assert done.returncode == 0, done.stderr
    assert profile.secret not in done.stdout + done.stderr


def seed_all(env: Mapping[str, str], profiles: Sequence[Profile]) -> None:
    """Seed each agent's profiles in order, the agents in parallel (they are separate files)."""
    by_agent: dict[str, list[Profile]] = {}
    for profile in profiles:
        by_agent.setdefault(profile.agent, []).append(profile)

    def seed_agent(agent_profiles: list[Profile]) -> None:
        for profile in agent_profiles:
            seed(env, profile)

    with ThreadPoolExecutor(max_workers=len(by_agent) or 1) as pool:
        list(pool.map(seed_agent, by_agent.values()))


@dataclass
class Running:
    """A started sidecar with its canaries and the files it was given."""

    sidecar: Sidecar
    canaries: Canaries
    workdir: Path
    listeners: list[dict[str, Any]]

    def url(self, index: int = 0) -> str:
        return self.sidecar.url(index)

    @property
    def state_dir(self) -> Path:
        return self.sidecar.state_dir

    @property
    def env(self) -> dict[str, str]:
        return self.sidecar.env


@dataclass(frozen=True)
class SeededStore:
    """A state dir seeded once per session through the CLI; sidecars start on copies of it."""

    state_dir: Path
    canaries: Canaries


class SidecarFactory:
    """Starts sidecars for a module and stops them (then scans their logs) at its end."""

    def __init__(self, root: Path, leaks: Leaks, seeded: SeededStore) -> None:
        self.root = root
        self.leaks = leaks
        self.seeded = seeded
        self.running: list[Running] = []

    def start(
        self,
        listeners: Sequence[Mapping[str, Any]],
        providers: Mapping[str, Mapping[str, Any]],
        *,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        client_tokens: Mapping[int, str] | None = None,
        extra_profiles: Sequence[Profile] = (),
        prepare: Callable[[Path, Canaries], None] | None = None,
    ) -> Running:
        """``listeners`` without ports (they are picked here); ``client_tokens`` maps a
        listener's index to the name of a canary token written to a 0600 file for it. The
        store is a copy of the session's seeded one (its canaries are the session's), plus
        ``extra_profiles`` stored with the CLI before the start, then whatever ``prepare``
        writes into the state dir (registering its secrets as canaries)."""
        workdir = self.root / f"sidecar-{len(self.running)}"
        state_dir = workdir / "state"
        shutil.copytree(self.seeded.state_dir, state_dir)
        canaries = Canaries(dict(self.seeded.canaries.keys))
        self.leaks.canaries.append(canaries)
        for profile in extra_profiles:
            canaries.add(profile.profile_id, profile.secret)
        seed_all(cli_env(state_dir, workdir), extra_profiles)
        if prepare is not None:
            prepare(state_dir, canaries)
        tables = [dict(listener, port=free_port()) for listener in listeners]
        for index, name in (client_tokens or {}).items():
            path = workdir / f"{name}.token"
            path.write_text(canaries.add(name, canary("client")) + "\n")
            os.chmod(path, 0o600)
            tables[index]["client_token_file"] = str(path)
        sidecar = start_sidecar(
            render_config(tables, providers, extra),
            [t["port"] for t in tables],
            state_dir=state_dir,
            workdir=workdir,
        )
        running = Running(sidecar, canaries, workdir, tables)
        self.running.append(running)
        return running

    def check_logs(self) -> list[str]:
        return [
            f"{name} in the log of {run.sidecar.log_path.name}"
            for run in self.running
            for name in run.canaries.found_in(run.sidecar.logs())
        ]

    def stop_all(self) -> None:
        for run in self.running:
            run.sidecar.stop()


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> SeededStore:
    """The standard profiles, stored once per session with the real CLI (secrets on stdin)."""
    root = tmp_path_factory.mktemp("seeded")
    state_dir = root / "state"
    state_dir.mkdir()
    canaries = Canaries()
    seed_all(cli_env(state_dir, root), standard_profiles(canaries))
    return SeededStore(state_dir, canaries)


@pytest.fixture(scope="module")
def sidecar_factory(
    tmp_path_factory: pytest.TempPathFactory, leaks: Leaks, seeded_store: SeededStore
) -> Iterator[SidecarFactory]:
    """Starts real sidecars; at the module's end stops them and fails on a canary in a log."""
    factory = SidecarFactory(tmp_path_factory.mktemp("e2e"), leaks, seeded_store)
    yield factory
    factory.stop_all()
    found = factory.check_logs()
    assert found == [], f"canary secrets leaked: {found}"


@pytest.fixture(autouse=True)
def _no_canary_leaks(request: pytest.FixtureRequest, leaks: Leaks) -> Iterator[None]:
    """After each test: nothing a client received, and no log line so far, holds a canary."""
    leaks.found.clear()
    yield
    found = list(leaks.found)
    if "sidecar_factory" in request.fixturenames:
        factory: SidecarFactory = request.getfixturevalue("sidecar_factory")
        found += factory.check_logs()
    assert found == [], f"canary secrets leaked: {found}"


def sidecar_error(response: httpx.Response | RawResponse) -> tuple[int, str, Any]:
    """(status, X-OpenClaw-Sidecar-Error, body with the message replaced by "<message>"), so
    a test compares the whole error while the wording stays free to improve."""
    status = response.status_code if isinstance(response, httpx.Response) else response.status
    body = response.json()
    inner = body["error"]
    assert isinstance(inner.get("message"), str)
    assert inner["message"]
    body = {**body, "error": {**inner, "message": "<message>"}}
    return status, response.headers.get("x-openclaw-sidecar-error", "<none>"), body


def openai_style(status: int, code: str, kind: str) -> tuple[int, str, Any]:
    """What ``sidecar_error`` gives for an OpenAI-style sidecar error."""
    return status, code, {"error": {"message": "<message>", "type": kind, "code": code}}


def anthropic_style(status: int, code: str, kind: str) -> tuple[int, str, Any]:
    """What ``sidecar_error`` gives for an Anthropic-style sidecar error."""
    return status, code, {"type": "error", "error": {"type": kind, "message": "<message>"}}
