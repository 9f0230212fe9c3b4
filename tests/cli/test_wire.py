"""`openclaw-sidecar wire`: which listener, agent, provider and profile a recipe is for, what it
prints, and what --apply writes (in-process; the real clients: tests/e2e/test_wire_clients.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import log
from sidecar.cli import main
from sidecar.cli.wire import choose_listener, origin_of
from sidecar.config import Settings
from sidecar.config.settings import Listener
from sidecar.errors import SidecarError

KEY = "sk-test-" + "k" * 32


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("OPENCLAW_SIDECAR_CONFIG", "CODEX_HOME", "CLAUDE_CONFIG_DIR",
                 "OPENCLAW_CONFIG_PATH", "OPENCLAW_HOME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    # main() configures structlog for the process: that would outlive the test.
    monkeypatch.setattr(log, "configure", lambda *args, **kwargs: None)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENCLAW_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def store(home: Path, agent: str, profiles: dict[str, dict[str, Any]]) -> None:
    path = home / "state" / "agents" / agent / "agent" / "auth-profiles.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "profiles": profiles}))


def api_key(provider: str) -> dict[str, Any]:
    return {"type": "api_key", "provider": provider, "key": KEY}


def wire(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["wire", *args])
    out, err = capsys.readouterr()
    assert KEY not in out + err
    return code, out, err


LISTENERS = Settings(
    listeners=(
        Listener(port=18801),
        Listener(port=18803, agent="work"),
        Listener(host="0.0.0.0", port=18443, agent="ci"),
    )
)


@pytest.mark.parametrize(
    ("agent", "port", "expected"),
    [
        ("main", None, 18801),
        ("personal", None, 18801),
        ("work", None, 18803),
        ("work", 18801, 18801),
        ("main", 9000, 9000),
        ("ci", None, 18443),
    ],
)
def test_choose_listener(agent: str, port: int | None, expected: int) -> None:
    """--port's listener (or the first one on that port, as `serve --port`), else the one bound
    to the agent, else the first shared one."""
    assert choose_listener(LISTENERS, agent, port)[1] == expected


def test_choose_listener_refuses_another_agents_port() -> None:
    """A listener bound to another agent cannot serve this one."""
    with pytest.raises(SidecarError, match="serves only agent 'work'; pass --agent work"):
        choose_listener(LISTENERS, "main", 18803)
    only_bound = Settings(listeners=(Listener(port=1, agent="a"),))
    with pytest.raises(SidecarError, match="no listener serves agent 'b'"):
        choose_listener(only_bound, "b", None)


def test_origin_of() -> None:
    """A wildcard address is reached on loopback; TLS makes it https."""
    assert origin_of(Listener(host="0.0.0.0", port=1), 1) == "http://127.0.0.1:1"
    assert origin_of(Listener(host="::1", port=2), 2) == "http://[::1]:2"
    tls = Listener(port=3, tls_cert_file=Path("c"), tls_key_file=Path("k"))
    assert origin_of(tls, 3) == "https://127.0.0.1:3"


def test_codex_apply_writes_config_toml(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wire codex --agent work --apply`: the recipe, then config.toml written with a backup,
    the user's own settings kept."""
    store(home, "work", {"openai:work": api_key("openai")})
    config = home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text('model = "o3"\n')
    code, out, _ = wire(capsys, "codex", "--agent", "work", "--apply")
    assert code == 0
    assert "Codex CLI with an API key, as agent work (provider openai)" in out
    assert "warning" not in out
    assert f"Wrote {config} (the old one is {config}.bak-" in out
    assert "  model_provider (was (new))\n" in out
    assert config.read_text() == (
        'model = "o3"\nmodel_provider = "openclaw-sidecar"\n\n'
        '[model_providers.openclaw-sidecar]\nname = "OpenClaw sidecar"\n'
        'base_url = "http://127.0.0.1:18801/agents/work/openai/v1"\nwire_api = "responses"\n'
    )


def test_codex_with_only_a_chatgpt_login(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An agent whose only OpenAI profile is a ChatGPT login (2026.6.1+: provider openai,
    oauth) gets Codex's ChatGPT route."""
    oauth = {"type": "oauth", "provider": "openai", "access": "a", "refresh": "r",
             "expires": 4_000_000_000_000}  # fmt: skip
    store(home, "main", {"openai:me@example.com": oauth})
    code, out, _ = wire(capsys, "codex")
    assert code == 0
    assert "Codex CLI with a ChatGPT login, as agent main (provider openai-codex)" in out
    assert 'base_url = "http://127.0.0.1:18801/openai-codex"' in out


def test_a_pinned_profile(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--profile pins it in the URL and chooses its provider; an unknown one is refused."""
    store(home, "main", {"anthropic:work": api_key("anthropic")})
    code, out, _ = wire(capsys, "claude-code", "--profile", "anthropic:work")
    assert code == 0
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:18801/anthropic@anthropic:work" in out
    code, _, err = wire(capsys, "claude-code", "--profile", "anthropic:nope")
    assert code == 2
    assert "agent 'main' has no profile 'anthropic:nope'" in err


def test_a_missing_profile_is_a_warning(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No profile for the route yet: the recipe still prints, with the command that adds one."""
    code, out, _ = wire(capsys, "anthropic-sdk", "--agent", "work")
    assert code == 0
    assert "warning: agent 'work' has no anthropic profile yet: add one with " in out
    assert "`openclaw-sidecar paste-api-key --provider anthropic --agent work" in out


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["claude-code", "--provider", "openai"], "claude-code cannot use provider openai"),
        (["openclaw", "--provider", "openai-codex"], "openclaw cannot use provider openai-codex"),
        (["codex", "--provider", "nope"], "provider 'nope' is not one the sidecar knows"),
        (["openai-sdk", "--apply"], "--apply has no file to write"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_usage_errors(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    """What cannot be wired is one line on stderr, exit 2."""
    try:
        code, _, err = wire(capsys, *args)
    except SystemExit as exc:  # argparse's own
        code, err = int(str(exc.code)), capsys.readouterr().err
    assert code == 2
    assert problem in err


def test_env_prints_only_shell(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """wire env's stdout is lines to eval (the agent's providers only); warnings go to stderr."""
    store(home, "work", {"anthropic:work": api_key("anthropic")})
    code, out, err = wire(capsys, "env", "--agent", "work")
    assert code == 0
    assert [line for line in out.splitlines() if not line.startswith("#")] == [
        "export ANTHROPIC_BASE_URL=http://127.0.0.1:18801/agents/work/anthropic",
        "export ANTHROPIC_API_KEY=openclaw-sidecar-placeholder",
    ]
    assert '# eval "$(openclaw-sidecar wire env --agent work)"' in out
    assert err == ""


def test_openclaw_apply_with_path(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--path names OpenClaw's openclaw.json; its other settings stay; a JSON5 one is refused
    (the batch command shown works on it)."""
    store(home, "main", {"openai:main": api_key("openai")})
    config = home / "oc" / "openclaw.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"gateway": {"port": 1}, "models": {"providers": {}}}))
    code, out, _ = wire(capsys, "openclaw", "--apply", "--path", str(config))
    assert code == 0
    assert json.loads(config.read_text()) == {
        "gateway": {"port": 1},
        "models": {
            "providers": {
                "openai": {
                    "baseUrl": "http://127.0.0.1:18801/openai/v1",
                    "apiKey": "openclaw-sidecar-placeholder",
                }
            }
        },
    }
    config.write_text("{ // mine\n gateway: {port: 1},\n}\n")
    code, out, err = wire(capsys, "openclaw", "--apply", "--path", str(config))
    assert code == 1
    assert "openclaw config set --batch-json" in out
    assert "is JSON5 (comments or trailing commas) that rewriting would lose" in err


def test_apply_refuses_to_replace_a_real_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real key in Claude Code's settings is not replaced (nor copied into a backup)."""
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"env": {"ANTHROPIC_API_KEY": KEY}}))
    code, _, err = wire(capsys, "claude-code", "--apply")
    assert code == 1
    assert "env.ANTHROPIC_API_KEY holds what looks like a real credential" in err
    assert [p.name for p in settings.parent.iterdir()] == ["settings.json"]


def test_openclaw_json_in_the_sidecars_state_dir_is_named(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OpenClaw's openclaw.json found by its own rule in the sidecar's state dir (the sidecar's
    $OPENCLAW_STATE_DIR): a warning says when that is right, and --path for when it is not."""
    store(home, "main", {"openai:main": api_key("openai")})
    code, out, _ = wire(capsys, "openclaw")
    assert code == 0
    assert (
        f"warning: {home / 'state' / 'openclaw.json'} is in the sidecar's own state dir: right "
        "when OpenClaw shares it" in out
    )
    code, out, _ = wire(capsys, "openclaw", "--path", str(home / ".openclaw" / "openclaw.json"))
    assert "warning" not in out
