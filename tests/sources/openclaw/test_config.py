"""``openclaw.json`` (JSON5): agent dirs, auth.order, auth.profiles and secret providers;
agentDir overrides applied by the store, except for main."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.errors import StoreError
from sidecar.sources.openclaw.config import (
    ConfiguredProfile,
    OpenClawConfig,
    load_openclaw_config,
    parse_openclaw_config,
)

PLAIN = """{
  "agents": {"list": [
    {"id": "main", "default": true},
    {"id": "work", "name": "Work", "agentDir": "/srv/work-agent"},
    {"id": "home", "agentDir": "~/agents/home"},
    {"id": "rel", "agentDir": "agents-rel/rel"},
    {"id": "../evil", "agentDir": "/tmp/evil"},
    {"id": "Bad", "agentDir": "/tmp/bad"},
    "not an object"
  ]},
  "auth": {
    "profiles": {
      "anthropic:work": {"provider": "Anthropic", "mode": "token"},
      "openai:odd": {"provider": 7, "mode": "api_key"}, "x": "junk"
    },
    "order": {"Anthropic": ["anthropic:work", "anthropic:default"], "openai": "junk"}
  },
  "secrets": {"providers": {"vault": {"source": "exec", "command": "/bin/vault"}, "x": 3}}
}
"""

JSON5 = """// OpenClaw config, hand edited
{
  agents: {
    list: [
      { id: 'main' },
      { id: 'work', agentDir: '/srv/work-agent', },  // trailing comma
      /* block comment */
      { id: "home", agentDir: "~/agents/home" },
      { id: "rel", agentDir: "agents-rel/rel" },
      { id: "../evil", agentDir: "/tmp/evil" },
      { id: "Bad", agentDir: "/tmp/bad" },
    ],
  },
  auth: {
    profiles: { 'anthropic:work': { provider: 'Anthropic', mode: 'token' }, x: 'junk' },
    order: { Anthropic: ['anthropic:work', 'anthropic:default'], openai: 'junk' },
  },
  secrets: { providers: { vault: { source: 'exec', command: '/bin/vault' }, x: 3 } },
}
"""


def expected(config: Path, home: Path) -> OpenClawConfig:
    return OpenClawConfig(
        agent_dirs={
            "work": Path("/srv/work-agent"),
            "home": home / "agents" / "home",
            "rel": config.parent / "agents-rel" / "rel",
        },
        agents=("main", "work", "home", "rel"),
        auth_order={"anthropic": ("anthropic:work", "anthropic:default")},
        auth_profiles={"anthropic:work": ConfiguredProfile("anthropic", "token")},
        secret_providers={"vault": {"source": "exec", "command": "/bin/vault"}},
    )


@pytest.mark.parametrize("text", [PLAIN, JSON5], ids=["json", "json5"])
def test_parse_config(tmp_path, text):
    """Agent dirs (~ and relative paths resolved), valid agent ids only, lowercased order keys
    and providers of auth.profiles (entries without a provider and a mode skipped)."""
    path, home = tmp_path / "openclaw.json", tmp_path / "home"
    assert parse_openclaw_config(text, path=path, home=home) == expected(path, home)


def test_missing_config_is_empty(tmp_path):
    """No openclaw.json: no overrides, no order, no secret providers."""
    assert load_openclaw_config(tmp_path / "openclaw.json", tmp_path) == OpenClawConfig()


@pytest.mark.parametrize(
    "text", ["{ agents: [", "[1, 2]", '"text"', "{'a': }"], ids=["truncated", "array", "str", "bad"]
)
def test_broken_config_names_the_file(tmp_path, text):
    """A config that does not parse to an object is a StoreError naming the file."""
    path = tmp_path / "openclaw.json"
    path.write_text(text)
    with pytest.raises(StoreError) as info:
        load_openclaw_config(path, tmp_path)
    assert str(path) in info.value.message


@pytest.mark.parametrize("text", [PLAIN, JSON5], ids=["json", "json5"])
def test_store_reads_agent_dir_from_config(sd, tmp_path, text):
    """The store finds agent 'work' in the agentDir openclaw.json names."""
    custom = tmp_path / "srv-work"
    sd.write_config(text.replace("/srv/work-agent", str(custom)))
    sd.write(
        custom / "auth-profiles.json",
        {"version": 1, "profiles": {"openai:w": {"type": "api_key", "provider": "openai"}}},
    )
    view = sd.store().view_sync("work")
    assert {pid: (v.owner, v.origin) for pid, v in view.profiles.items()} == {
        "openai:w": ("work", custom / "auth-profiles.json")
    }


def test_store_ignores_agent_dir_override_for_main(sd, tmp_path):
    """main's store stays at <state>/agents/main/agent even if openclaw.json moves it."""
    elsewhere = tmp_path / "main-elsewhere"
    sd.write_config({"agents": {"list": [{"id": "main", "agentDir": str(elsewhere)}]}})
    store = sd.store()
    path = store.put_profile_sync("main", "openai:m", {"type": "api_key", "provider": "openai"})
    assert (path, path.exists(), elsewhere.exists()) == (sd.profiles_path("main"), True, False)


def test_store_honours_config_path_override(tmp_path):
    """$OPENCLAW_CONFIG_PATH is where agentDir overrides are read from."""
    from sidecar.sources.openclaw.layout import Layout
    from sidecar.sources.openclaw_json.store import JsonStore

    config, custom = tmp_path / "etc" / "oc.json", tmp_path / "custom-work"
    config.parent.mkdir()
    config.write_text(f'{{"agents": {{"list": [{{"id": "work", "agentDir": "{custom}"}}]}}}}')
    environ = {
        "HOME": str(tmp_path),
        "OPENCLAW_STATE_DIR": str(tmp_path / "state"),
        "OPENCLAW_CONFIG_PATH": str(config),
    }
    store = JsonStore(Layout.from_env(environ), home=tmp_path)
    path = store.put_profile_sync("work", "openai:w", {"type": "api_key", "provider": "openai"})
    assert path == custom / "auth-profiles.json"
