"""Where OpenClaw keeps things (store spec §2): state dir, config and oauth overrides, agent dirs,
lock paths, and agent ids that can never lead outside the state dir."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sidecar.errors import InvalidAgent
from sidecar.sources.openclaw.layout import (
    Layout,
    check_agent_id,
    is_valid_agent_id,
    resolve_state_dir,
)

VALID_IDS = ["main", "a", "0", "work", "a-b_c", "9lives", "a" * 64]
INVALID_IDS = [
    "",
    ".",
    "..",
    "../main",
    "a/b",
    "/etc",
    "a\\b",
    "a\0b",
    "Main",
    "MAIN",
    "-a",
    "_a",
    " a",
    "a b",
    "main\n",
    "\nmain",
    "main/",
    "a" * 65,
    "ｍａｉｎ",  # fullwidth look-alikes
    "mаin",  # Cyrillic а
    "maın",  # dotless ı
    "٣",  # Arabic-Indic digit three
    "main.",
]


@pytest.mark.parametrize(
    ("env", "existing", "expected"),
    [
        ({"OPENCLAW_STATE_DIR": "/srv/oc"}, [".openclaw"], "/srv/oc"),
        ({"OPENCLAW_STATE_DIR": "~/custom"}, [], "{oc_home}/custom"),
        ({"OPENCLAW_STATE_DIR": "~"}, [], "{oc_home}"),
        ({"OPENCLAW_STATE_DIR": "~/custom", "OPENCLAW_HOME": None}, [], "{home}/custom"),
        ({}, [".openclaw", ".clawdbot"], "{oc_home}/.openclaw"),
        ({}, [".clawdbot"], "{oc_home}/.clawdbot"),
        ({}, [], "{oc_home}/.openclaw"),
        ({"OPENCLAW_HOME": None}, [".clawdbot"], "{home}/.clawdbot"),
        ({"OPENCLAW_HOME": None}, [], "{home}/.openclaw"),
    ],
    ids=[
        "explicit",
        "tilde-uses-openclaw-home",
        "bare-tilde",
        "tilde-uses-home",
        "openclaw-preferred",
        "clawdbot-fallback",
        "default",
        "clawdbot-under-home",
        "default-under-home",
    ],
)
def test_state_dir_resolution(tmp_path, env, existing, expected):
    """$OPENCLAW_STATE_DIR (~ = $OPENCLAW_HOME, else $HOME), else ~/.openclaw, ~/.clawdbot."""
    home, oc_home = tmp_path / "home", tmp_path / "ochome"
    environ = {"HOME": str(home), "OPENCLAW_HOME": str(oc_home)}
    for key, value in env.items():
        if value is None:
            del environ[key]
        else:
            environ[key] = value
    base = oc_home if "OPENCLAW_HOME" in environ else home
    for name in existing:
        (base / name).mkdir(parents=True)
    want = Path(expected.format(home=home, oc_home=oc_home))
    assert resolve_state_dir(environ) == want


def test_clawdbot_under_home_ignored_when_openclaw_home_is_set(tmp_path):
    """Home is $OPENCLAW_HOME when set: a ~/.clawdbot under $HOME is not looked at."""
    (tmp_path / "home" / ".clawdbot").mkdir(parents=True)
    environ = {"HOME": str(tmp_path / "home"), "OPENCLAW_HOME": str(tmp_path / "oc")}
    assert resolve_state_dir(environ) == tmp_path / "oc" / ".openclaw"


@pytest.mark.parametrize(
    ("extra", "config", "oauth_dir"),
    [
        ({}, "{state}/openclaw.json", "{state}/credentials"),
        (
            {"OPENCLAW_CONFIG_PATH": "/etc/oc/config.json5", "OPENCLAW_OAUTH_DIR": "/var/oauth"},
            "/etc/oc/config.json5",
            "/var/oauth",
        ),
        (
            {"OPENCLAW_CONFIG_PATH": "~/oc.json", "OPENCLAW_OAUTH_DIR": "~/creds"},
            "{home}/oc.json",
            "{home}/creds",
        ),
    ],
    ids=["defaults", "absolute-overrides", "tilde-overrides"],
)
def test_config_and_oauth_overrides(tmp_path, extra, config, oauth_dir):
    """$OPENCLAW_CONFIG_PATH and $OPENCLAW_OAUTH_DIR replace the default locations."""
    state, home = tmp_path / "state", tmp_path / "home"
    environ = {"HOME": str(home), "OPENCLAW_STATE_DIR": str(state), **extra}
    layout = Layout.from_env(environ)
    assert layout == Layout(
        state_dir=state,
        config_path=Path(config.format(state=state, home=home)),
        oauth_dir=Path(oauth_dir.format(state=state, home=home)),
        agent_dir_overrides={},
    )
    assert layout.legacy_oauth_path() == Path(oauth_dir.format(state=state, home=home)) / (
        "oauth.json"
    )


def test_agent_paths(sd):
    """Each agent's files live in <state>/agents/<id>/agent/."""
    layout = sd.layout
    agent = sd.path / "agents" / "work" / "agent"
    assert [
        layout.agent_dir("work"),
        layout.profiles_path("work"),
        layout.state_path("work"),
        layout.legacy_auth_path("work"),
        layout.agent_sqlite_path("work"),
        layout.state_sqlite_path(),
    ] == [
        agent,
        agent / "auth-profiles.json",
        agent / "auth-state.json",
        agent / "auth.json",
        agent / "openclaw-agent.sqlite",
        sd.path / "state" / "openclaw.sqlite",
    ]


def test_main_is_always_the_default_path(sd, tmp_path):
    """An agentDir override for main is ignored: main is the store every agent inherits from."""
    layout = sd.layout.with_agent_dirs({"main": tmp_path / "elsewhere", "w": tmp_path / "w"})
    assert (layout.agent_dir("main"), layout.agent_dir("w")) == (
        sd.path / "agents" / "main" / "agent",
        tmp_path / "w",
    )


def test_store_lock_is_under_the_realpath_of_the_agent_dir(sd, tmp_path):
    """A symlinked agent dir shares the lock of its target."""
    target = tmp_path / "real-agent"
    target.mkdir()
    sd.agent_dir("w").parent.mkdir(parents=True)
    os.symlink(target, sd.agent_dir("w"))
    assert sd.layout.store_lock_path("w") == target / "auth-profiles.json.lock"


def test_refresh_lock_path(sd):
    """<state>/locks/oauth-refresh/sha256-<sha256(provider NUL profileId)>.lock."""
    digest = hashlib.sha256(b"openai-codex\x00openai-codex:alice@example.com").hexdigest()
    assert sd.layout.refresh_lock_path("openai-codex", "openai-codex:alice@example.com") == (
        sd.path / "locks" / "oauth-refresh" / f"sha256-{digest}.lock"
    )


@pytest.mark.parametrize("agent", VALID_IDS)
def test_valid_agent_ids(sd, agent):
    """Ids of 1-64 [a-z0-9_-] starting with a letter or digit map to agents/<id>/agent."""
    assert (is_valid_agent_id(agent), check_agent_id(agent), sd.layout.agent_dir(agent)) == (
        True,
        agent,
        sd.path / "agents" / agent / "agent",
    )


@pytest.mark.parametrize("agent", INVALID_IDS, ids=repr)
def test_invalid_agent_ids_derive_no_path(sd, agent):
    """Every path method refuses a bad id instead of building a path from it."""
    assert not is_valid_agent_id(agent)
    methods = [
        sd.layout.agent_dir,
        sd.layout.default_agent_dir,
        sd.layout.profiles_path,
        sd.layout.state_path,
        sd.layout.legacy_auth_path,
        sd.layout.store_lock_path,
        sd.layout.agent_sqlite_path,
    ]
    for method in methods:
        with pytest.raises(InvalidAgent):
            method(agent)


@pytest.mark.parametrize("agent", ["..", "../../etc", "Main", "a\0b", "main\n"], ids=repr)
def test_store_rejects_invalid_agent_ids_before_touching_disk(sd, agent):
    """JsonStore reads and writes refuse a bad id and create nothing."""
    store = sd.store()
    before = sorted(p for p in sd.path.parent.rglob("*"))
    with pytest.raises(InvalidAgent):
        store.view_sync(agent)
    with pytest.raises(InvalidAgent):
        store.put_profile_sync(agent, "openai:x", {"type": "api_key", "provider": "openai"})
    with pytest.raises(InvalidAgent):
        store.update_state_sync(agent, lambda state: state)
    assert sorted(p for p in sd.path.parent.rglob("*")) == before


def test_invalid_agent_error_message_is_bounded(sd):
    """The error quotes a bad id cut short, so a huge id does not flood a log."""
    with pytest.raises(InvalidAgent) as info:
        check_agent_id("x" * 10_000)
    assert len(info.value.message) < 300
