"""Properties over generated stores: dump∘parse is the identity, random bytes only ever fail as
StoreFormatError, a store over garbage never writes, and no agent id leads outside the state dir."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.errors import InvalidAgent, StoreError
from sidecar.sources.openclaw.layout import Layout
from sidecar.sources.openclaw.model import (
    StoreFormatError,
    dump_json,
    dump_profiles,
    dump_state,
    parse_profiles,
    parse_state,
    update_profile,
)
from sidecar.sources.openclaw_json import store as jsonstore
from sidecar.sources.openclaw_json.store import JsonStore

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
unknown = st.dictionaries(text.filter(lambda k: k not in KNOWN), json_values, max_size=3)
KNOWN = {
    "type",
    "mode",
    "provider",
    "key",
    "apiKey",
    "keyRef",
    "token",
    "tokenRef",
    "access",
    "refresh",
    "expires",
    "email",
}
providers = st.sampled_from(["openai", "openai-codex", "Anthropic", "ünïcode", "openrouter"])
ref = st.fixed_dictionaries(
    {"source": st.sampled_from(["env", "file", "exec"]), "provider": text, "id": text}
)


def profile(kind: str, fields: dict) -> st.SearchStrategy:
    return st.builds(
        lambda provider, extra, values: {"type": kind, "provider": provider, **extra, **values},
        providers,
        unknown,
        st.fixed_dictionaries({}, optional=fields),
    )


profiles = st.one_of(
    profile("api_key", {"key": text, "keyRef": ref, "email": text}),
    profile("token", {"token": text | ref, "expires": st.integers(0, 2**45)}),
    profile(
        "oauth",
        {"access": text, "refresh": text, "expires": st.integers(0, 2**45), "accountId": text},
    ),
)
invalid = st.one_of(
    st.builds(lambda extra: {"type": "api_key", **extra}, unknown),
    st.builds(
        lambda p, t: {"type": t, "provider": p},
        providers,
        text.filter(lambda t: t not in ("api_key", "token", "oauth")),
    ),
    st.builds(
        lambda p: {"type": "oauth", "provider": p, "access": {"source": "env", "id": "X"}},
        providers,
    ),
    st.lists(json_values, max_size=2),
    scalars,
)
stores = st.builds(
    lambda entries, top: {**top, "version": 1, "profiles": entries},
    st.dictionaries(text, profiles | invalid, max_size=6),
    st.dictionaries(
        text.filter(lambda k: k not in ("version", "profiles")), json_values, max_size=2
    ),
)
usage = st.fixed_dictionaries(
    {},
    optional={
        "lastUsed": st.integers(0, 2**45),
        "errorCount": st.integers(0, 9),
        "cooldownUntil": st.integers(0, 2**45),
        "x": json_values,
    },
)
states = st.fixed_dictionaries(
    {},
    optional={
        "order": st.dictionaries(
            text, st.lists(text, min_size=1, max_size=3), min_size=1, max_size=3
        ),
        "lastGood": st.dictionaries(text, text, min_size=1, max_size=3),
        "usageStats": st.dictionaries(text, usage, min_size=1, max_size=3),
    },
).map(
    lambda keys: {
        "version": 1,
        **{k: keys[k] for k in ("order", "lastGood", "usageStats") if k in keys},
    }
)


@FAST
@given(stores)
def test_dump_parse_is_identity_on_stores(doc):
    """Any store, with invalid entries, unknown fields and unicode, is written back as read."""
    data = dump_json(doc)
    assert dump_profiles(parse_profiles(data)) == data


@FAST
@given(states)
def test_dump_parse_is_identity_on_states(doc):
    """auth-state.json is written back as read."""
    data = dump_json(doc)
    assert dump_state(parse_state(data)) == data


@FAST
@given(stores, st.data())
def test_update_changes_only_the_updated_profile(doc, data):
    """Updating one entry leaves every other entry and top-level key exactly as it was."""
    if not doc["profiles"]:
        return
    pid = data.draw(st.sampled_from(sorted(doc["profiles"])))
    fields = data.draw(st.dictionaries(text, scalars.filter(lambda v: v is not None), max_size=3))
    updated = json.loads(dump_profiles(update_profile(parse_profiles(dump_json(doc)), pid, fields)))
    old = doc["profiles"][pid]
    merged = {**(old if isinstance(old, dict) else {}), **fields}
    want = {**doc, "profiles": {**doc["profiles"], pid: merged}}
    assert updated == want


@FAST
@given(st.binary(max_size=200) | stores.map(lambda d: dump_json(d)[: len(dump_json(d)) // 2]))
def test_random_bytes_only_fail_as_format_errors(data):
    """parse_profiles and parse_state raise nothing but StoreFormatError on arbitrary bytes."""
    for parse in (parse_profiles, parse_state):
        with contextlib.suppress(StoreFormatError):
            parse(data)


@FAST
@given(st.binary(min_size=1, max_size=120).filter(lambda b: _not_a_store(b)))
def test_store_over_random_bytes_never_writes(data):
    """A store file of garbage makes put_profile fail and stays byte for byte."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        path = state / "agents" / "main" / "agent" / "auth-profiles.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        store = JsonStore(Layout.from_env({"OPENCLAW_STATE_DIR": tmp}), home=state)
        with pytest.raises(StoreError):
            store.put_profile_sync("main", "openai:x", {"type": "api_key", "provider": "openai"})
        assert (path.read_bytes(), sorted(os.listdir(path.parent))) == (
            data,
            ["auth-profiles.json"],
        )


def _not_a_store(data: bytes) -> bool:
    try:
        parse_profiles(data)
    except StoreFormatError:
        return True
    return False


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch):
    monkeypatch.setattr(jsonstore.time, "sleep", lambda s: None)


@FAST
@given(st.text(max_size=70))
def test_no_agent_id_leads_outside_the_state_dir(agent):
    """Any id either is refused or names exactly <state>/agents/<id>/agent."""
    state = Path("/state")
    layout = Layout.from_env({"OPENCLAW_STATE_DIR": str(state)})
    try:
        folder = layout.agent_dir(agent)
    except InvalidAgent:
        return
    resolved = Path(os.path.normpath(folder))
    assert (resolved.parent.parent, resolved.parent.name, resolved.name) == (
        state / "agents",
        agent,
        "agent",
    )
