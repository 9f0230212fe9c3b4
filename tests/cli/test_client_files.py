"""sidecar.cli.client_files: edits that keep every other setting, the refusals, and the write
with its backup."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidecar.cli.client_files import (
    Change,
    ClientFileRefused,
    apply,
    edit_json,
    edit_toml,
    looks_like_secret,
    shown,
)
from sidecar.cli.recipes import PLACEHOLDER, Edit

NOW = datetime(2026, 12, 5, 6, 30, 0, tzinfo=UTC)
CODEX_EDITS = (
    Edit(("model_provider",), "openclaw-sidecar"),
    Edit(("model_providers", "openclaw-sidecar", "base_url"), "http://127.0.0.1:18801/openai/v1"),
    Edit(("model_providers", "openclaw-sidecar", "env_key"), None),
)
CLAUDE_EDITS = (
    Edit(("env", "ANTHROPIC_BASE_URL"), "http://127.0.0.1:18801/anthropic"),
    Edit(("env", "ANTHROPIC_API_KEY"), PLACEHOLDER, credential=True),
)
REAL = "sk-ant-api03-" + "Ab3" * 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (REAL, True),
        ("sk-proj-abcdefgh1234", True),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.sig", True),
        ("a1B2c3D4e5F6g7H8i9J0k1L2m3", True),
        (PLACEHOLDER, False),
        ("sk-ant-placeholder-0123456789", False),
        ("sk-dummy", False),
        ("unused", False),
        ("OPENAI_API_KEY", False),
        ("${OPENAI_API_KEY}", False),
        ("http://127.0.0.1:18801/openai/v1", False),
        ("openclaw-sidecar", False),
        ("abcdefghijklmnopqrstuvwxyz", False),
        ("", False),
        ({"source": "env", "id": "OPENAI_API_KEY"}, False),
        (None, False),
    ],
)
def test_looks_like_secret(value: object, expected: bool) -> None:
    """Keys and tokens look like secrets; the placeholder, variable names, URLs and words not."""
    assert looks_like_secret(value) is expected


def test_toml_keeps_every_other_setting_and_comment() -> None:
    """Codex's config.toml: the edits land, everything else stays byte for byte."""
    before = (
        '# mine\nmodel = "o3"  # keep\nmodel_provider = "ollama"\n\n'
        '[model_providers.ollama]\nname = "Ollama"\n\n'
        '[model_providers.openclaw-sidecar]\nenv_key = "OLD"\nhttp_headers = { a = "b" }\n'
    )
    after, changes = edit_toml(before, CODEX_EDITS, name="config.toml")
    assert after == (
        '# mine\nmodel = "o3"  # keep\nmodel_provider = "openclaw-sidecar"\n\n'
        '[model_providers.ollama]\nname = "Ollama"\n\n'
        '[model_providers.openclaw-sidecar]\nhttp_headers = { a = "b" }\n'
        'base_url = "http://127.0.0.1:18801/openai/v1"\n'
    )
    assert changes == [
        Change("model_provider", "ollama"),
        Change("model_providers.openclaw-sidecar.base_url", None),
        Change("model_providers.openclaw-sidecar.env_key", "OLD"),
    ]


def test_toml_new_file() -> None:
    """No config.toml yet: just the recipe's settings."""
    after, _ = edit_toml(None, CODEX_EDITS, name="config.toml")
    assert after == (
        'model_provider = "openclaw-sidecar"\n\n[model_providers.openclaw-sidecar]\n'
        'base_url = "http://127.0.0.1:18801/openai/v1"\n'
    )


def test_json_keeps_every_other_setting() -> None:
    """Claude Code's settings.json: other keys and other env variables stay, in their order."""
    before = json.dumps({"theme": "dark", "env": {"FOO": "1", "ANTHROPIC_API_KEY": "unused"}})
    after, changes = edit_json(before, CLAUDE_EDITS, name="settings.json")
    assert json.loads(after) == {
        "theme": "dark",
        "env": {
            "FOO": "1",
            "ANTHROPIC_API_KEY": PLACEHOLDER,
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:18801/anthropic",
        },
    }
    assert after.startswith('{\n  "theme": "dark",\n')
    assert after.endswith("}\n")
    assert [c.key for c in changes] == ["env.ANTHROPIC_BASE_URL", "env.ANTHROPIC_API_KEY"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (json.dumps({"env": {"ANTHROPIC_API_KEY": REAL}}), "looks like a real credential"),
        ('{"env": {}, // a comment\n}', "JSON5"),
        ("{not json", "not valid JSON"),
        ("[1]", "does not hold a JSON object"),
        ('{"env": "x"}', "env is not a table/object"),
    ],
)
def test_json_refusals(text: str, problem: str) -> None:
    """A real key in the way, JSON5 that a rewrite would lose, and shapes that are not the
    client's are refused, naming the problem."""
    with pytest.raises(ClientFileRefused) as caught:
        edit_json(text, CLAUDE_EDITS, name="settings.json")
    assert problem in caught.value.message
    assert REAL not in caught.value.message


def test_a_secret_is_never_written() -> None:
    """An edit whose value looks like a secret is refused whatever it replaces."""
    with pytest.raises(ClientFileRefused, match=r"looks like a secret at env\.X"):
        edit_json(None, [Edit(("env", "X"), REAL)], name="settings.json")


def test_apply_backs_up_and_keeps_the_mode(tmp_path: Path) -> None:
    """The old file is kept as <name>.bak-<UTC time> with its mode; the new one is written
    atomically with the same mode; a second run changes nothing and writes nothing."""
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"theme": "dark"}')
    os.chmod(path, 0o640)
    done = apply(path, "claude-settings", CLAUDE_EDITS, NOW)
    backup = tmp_path / ".claude" / "settings.json.bak-20261205T063000Z"
    assert done.backup == backup
    assert backup.read_text() == '{"theme": "dark"}'
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert json.loads(path.read_text())["env"]["ANTHROPIC_API_KEY"] == PLACEHOLDER
    assert shown(done.changes) == {
        "env.ANTHROPIC_BASE_URL": "(new)",
        "env.ANTHROPIC_API_KEY": "(new)",
    }
    again = apply(path, "claude-settings", CLAUDE_EDITS, NOW)
    assert (again.backup, again.changes) == (None, ())
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, backup.name]


def test_apply_new_file(tmp_path: Path) -> None:
    """A client file that does not exist yet is made (its folder too), 0600, with no backup."""
    path = tmp_path / ".codex" / "config.toml"
    done = apply(path, "codex-config", CODEX_EDITS, NOW)
    assert done.backup is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith('model_provider = "openclaw-sidecar"\n')


def test_apply_refused_leaves_the_file_alone(tmp_path: Path) -> None:
    """A refusal writes nothing: no backup (it would copy the secret), no change."""
    path = tmp_path / "settings.json"
    before = json.dumps({"env": {"ANTHROPIC_API_KEY": REAL}})
    path.write_text(before)
    with pytest.raises(ClientFileRefused):
        apply(path, "claude-settings", CLAUDE_EDITS, NOW)
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert path.read_text() == before


def test_shown_masks_what_looks_like_a_secret() -> None:
    """The report of what was replaced never shows a secret."""
    assert shown([Change("a", REAL), Change("b", "ollama"), Change("c", None)]) == {
        "a": "(a value)",
        "b": '"ollama"',
        "c": "(new)",
    }
