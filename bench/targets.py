"""The targets: how each starts on the proxy CPU in front of one upstream, and the path prefix
a client puts before ``/v1/chat/completions``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import litellm_peer, nginx_conf, oauth, store
from bench.procs import PROXY_CPU, PYTHON, Child, Children, free_port, wait_port


@dataclass(frozen=True)
class Target:
    name: str
    prefix: str  # before /v1/...
    start: Callable[[Children, int, str], Child | None]  # (group, port, upstream origin)
    is_sidecar: bool = False


@dataclass
class Running:
    target: Target
    port: int
    child: Child | None  # None: the upstream itself

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def path(self, agent: str | None = None) -> str:
        if agent is not None and self.target.is_sidecar:
            return f"/agents/{agent}{self.target.prefix}/v1/chat/completions"
        return f"{self.target.prefix}/v1/chat/completions"


def _nginx(group: Children, port: int, upstream: str) -> Child:
    upstream_port = int(upstream.rsplit(":", 1)[1])
    return nginx_conf.start(
        group,
        "proxy.conf.template",
        f"nginx-{port}",
        cpu=PROXY_CPU,
        port=port,
        upstream_port=upstream_port,
    )


def _ref(module: str) -> Callable[[Children, int, str], Child]:
    def start(group: Children, port: int, upstream: str) -> Child:
        argv = [PYTHON, "-m", f"bench.{module}", "--port", str(port), "--upstream", upstream]
        return group.start(f"{module}-{port}", argv, cpu=PROXY_CPU)

    return start


def _litellm(group: Children, port: int, upstream: str) -> Child:
    """LiteLLM's proxy from its own venv, one pass-through route (bench/litellm_peer.py)."""
    if not litellm_peer.available():
        raise RuntimeError(f"{litellm_peer.EXE} is missing: see bench/litellm_peer.py")
    config = litellm_peer.write_config(group.workdir / f"litellm-{port}.yaml", upstream)
    argv = litellm_peer.argv(config, port)
    child = group.start(f"litellm-{port}", argv, cpu=PROXY_CPU, env=litellm_peer.ENV)
    wait_port(port, 90, child.proc)  # its imports take 5-15 s, past start_all's 20 s wait
    return child


def sidecar(
    transport: str = "aiohttp",
    log_level: str = "info",
    *,
    profiles: int = 1,
    agents: int = 1,
    usage: bool = True,
) -> Callable[[Children, int, str], Child]:
    """``openclaw-sidecar serve`` with a real config and store; ``transport`` is the config's
    ``[upstream] transport``."""

    def start(group: Children, port: int, upstream: str) -> Child:
        state = group.workdir / f"state-{port}"
        store.write_state(state, profiles=profiles, agents=agents)
        config = store.write_config(
            group.workdir / f"sidecar-{port}.toml",
            state_dir=state,
            port=port,
            upstream=upstream,
            log_level=log_level,
            transport=transport,
            usage=usage,
        )
        argv = [PYTHON, "-m", "sidecar", "serve", "--config", str(config)]
        return group.start(f"sidecar-{port}", argv, cpu=PROXY_CPU)

    return start


_REDIS: dict[int, oauth.FleetFiles] = {}


def oauth_sidecar(*, fleet: bool) -> Callable[[Children, int, str], Child]:
    """``serve`` with one valid Codex OAuth profile: in its file store, or (``fleet``) pushed to
    a Redis of the run's own with ``fleet push``, the local store left empty."""

    def start(group: Children, port: int, upstream: str) -> Child:
        entry = oauth.oauth_entry("at-bench-" + "0" * 40, "rt-bench-" + "0" * 40, 86_400)
        state = group.workdir / f"state-{port}"
        files = None
        if fleet:
            if id(group) not in _REDIS:
                _REDIS[id(group)] = oauth.start_redis(group)[1]
            files = _REDIS[id(group)]
            oauth.fleet_push(group, files, entry)
            state.mkdir(parents=True)
        else:
            oauth.write_store(state, entry)
        config = oauth.config(
            group.workdir / f"sidecar-{port}.toml",
            state_dir=state,
            port=port,
            upstream=upstream,
            fleet=files,
        )
        argv = [PYTHON, "-m", "sidecar", "serve", "--config", str(config)]
        return group.start(f"sidecar-{port}", argv, cpu=PROXY_CPU)

    return start


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("direct", "", lambda group, port, upstream: None),
        Target("nginx", "", _nginx),
        Target("ref_httpx", "", _ref("ref_httpx")),
        Target("ref_aiohttp", "", _ref("ref_aiohttp")),
        Target("litellm", litellm_peer.PREFIX, _litellm),
        Target("sidecar", "/openai", sidecar(), is_sidecar=True),
        Target("sidecar_nolog", "/openai", sidecar(log_level="warning"), is_sidecar=True),
        Target("sidecar_nousage", "/openai", sidecar(usage=False), is_sidecar=True),
        Target("sidecar_httpx", "/openai", sidecar("httpx"), is_sidecar=True),
        Target("sidecar_oauth", "/openai-codex", oauth_sidecar(fleet=False), is_sidecar=True),
        Target("sidecar_fleet", "/openai-codex", oauth_sidecar(fleet=True), is_sidecar=True),
    )
}
# The fleet pair is measured by its own scenario ("fleet"), not with every JSON run.
DEFAULT = [
    name for name in TARGETS if name not in ("sidecar_oauth", "sidecar_fleet", "sidecar_nousage")
]
# LiteLLM is a peer reported only, from /opt/bench-litellm when installed: opt-in (--targets).
DEFAULT.remove("litellm")
FLEET = ["direct", "sidecar_oauth", "sidecar_fleet"]


def start_all(
    group: Children, names: list[str], upstream_port: int, targets: dict[str, Target] | None = None
) -> dict[str, Running]:
    table = targets or TARGETS
    running: dict[str, Running] = {}
    for name in names:
        target = table[name]
        if target.name == "direct":
            running[name] = Running(target, upstream_port, None)
            continue
        port = free_port()
        running[name] = Running(
            target, port, target.start(group, port, f"http://127.0.0.1:{upstream_port}")
        )
    for run in running.values():
        wait_port(run.port, proc=run.child.proc if run.child else None)
    return running
