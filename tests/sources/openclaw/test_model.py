"""``auth-profiles.json`` and ``auth-state.json`` (store spec §3, §4): types, aliases, invalid
entries, rewrites that keep what they do not understand, OpenClaw's byte format."""

from __future__ import annotations

import json

import pytest

from sidecar.secret import Secret
from sidecar.sources.openclaw.model import (
    ApiKeyCredential,
    AuthState,
    InvalidEntry,
    OAuthCredential,
    SecretRef,
    StoreFormatError,
    TokenCredential,
    UsageStats,
    dump_json,
    dump_profiles,
    dump_state,
    parse_profiles,
    parse_state,
    update_profile,
    with_profile,
)

NOW = 1_767_225_600_000
CANARY = "sk-CANARY-5f1e0c2a9b7d4e3f8a6b"
ENV_REF = {"source": "env", "provider": "default", "id": "ANTHROPIC_API_KEY"}
VAULT_REF = SecretRef("exec", "vault", "openai/key")


def parsed(entry: dict, pid: str = "p:x"):
    return parse_profiles(json.dumps({"version": 1, "profiles": {pid: entry}})).entries[pid]


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        (
            {"type": "api_key", "provider": "openai", "key": "sk-proj-1"},
            ApiKeyCredential("p:x", "openai", None, {}, key=Secret("sk-proj-1"), key_ref=None),
        ),
        (
            {"type": "api_key", "provider": "anthropic", "keyRef": ENV_REF},
            ApiKeyCredential(
                "p:x",
                "anthropic",
                None,
                {},
                key=None,
                key_ref=SecretRef("env", "default", "ANTHROPIC_API_KEY"),
            ),
        ),
        (
            {
                "type": "api_key",
                "provider": "openai",
                "key": "sk-1",
                "keyRef": {"source": "exec", "provider": "vault", "id": "openai/key"},
            },
            ApiKeyCredential("p:x", "openai", None, {}, key=Secret("sk-1"), key_ref=VAULT_REF),
        ),
        (
            {"mode": "api_key", "provider": "openai", "apiKey": "sk-alias"},
            ApiKeyCredential("p:x", "openai", None, {}, key=Secret("sk-alias"), key_ref=None),
        ),
        (
            {
                "type": "api_key",
                "provider": "openai",
                "key": {"source": "exec", "provider": "vault", "id": "openai/key"},
            },
            ApiKeyCredential("p:x", "openai", None, {}, key=None, key_ref=VAULT_REF),
        ),
        (
            {"type": "api_key", "provider": "openai", "key": "${OPENAI_API_KEY}"},
            ApiKeyCredential(
                "p:x",
                "openai",
                None,
                {},
                key=None,
                key_ref=SecretRef("env", "default", "OPENAI_API_KEY"),
            ),
        ),
        (
            {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-x", "expires": NOW},
            TokenCredential(
                "p:x",
                "anthropic",
                None,
                {},
                token=Secret("sk-ant-oat01-x"),
                token_ref=None,
                expires=NOW,
            ),
        ),
        (
            {"mode": "token", "provider": "anthropic", "token": ENV_REF},
            TokenCredential(
                "p:x",
                "anthropic",
                None,
                {},
                token=None,
                token_ref=SecretRef("env", "default", "ANTHROPIC_API_KEY"),
                expires=None,
            ),
        ),
        (
            {"type": "token", "provider": "anthropic", "tokenRef": ENV_REF},
            TokenCredential(
                "p:x",
                "anthropic",
                None,
                {},
                token=None,
                token_ref=SecretRef("env", "default", "ANTHROPIC_API_KEY"),
                expires=None,
            ),
        ),
        (
            {"type": "token", "provider": "anthropic", "token": "${CLAUDE_TOKEN}"},
            TokenCredential(
                "p:x",
                "anthropic",
                None,
                {},
                token=None,
                token_ref=SecretRef("env", "default", "CLAUDE_TOKEN"),
                expires=None,
            ),
        ),
        (
            {
                "type": "oauth",
                "provider": "openai-codex",
                "email": "alice@example.com",
                "access": "eyJ-a",
                "refresh": "rt_1",
                "accountId": "acc-1",
                "chatgptPlanType": "plus",
                "expires": NOW,
            },
            OAuthCredential(
                "p:x",
                "openai-codex",
                "alice@example.com",
                {},
                access=Secret("eyJ-a"),
                refresh=Secret("rt_1"),
                expires=NOW,
                account_id="acc-1",
            ),
        ),
        (
            {
                "type": "oauth",
                "provider": "openai",
                "access": "eyJ-b",
                "refresh": "rt_2",
                "expires": NOW,
            },
            OAuthCredential(
                "p:x",
                "openai",
                None,
                {},
                access=Secret("eyJ-b"),
                refresh=Secret("rt_2"),
                expires=NOW,
                account_id=None,
            ),
        ),
        (
            {
                "mode": "oauth",
                "provider": "Anthropic",
                "access": "a",
                "refresh": "r",
                "expires": NOW,
            },
            OAuthCredential(
                "p:x",
                "anthropic",
                None,
                {},
                access=Secret("a"),
                refresh=Secret("r"),
                expires=NOW,
                account_id=None,
            ),
        ),
        (
            {"type": "api_key", "provider": "OpenRouter", "key": "sk-or-1"},
            ApiKeyCredential("p:x", "openrouter", None, {}, key=Secret("sk-or-1"), key_ref=None),
        ),
    ],
    ids=[
        "api_key",
        "api_key-keyRef",
        "api_key-both",
        "alias-mode-apiKey",
        "ref-in-key",
        "env-template-key",
        "token",
        "ref-in-token",
        "tokenRef",
        "env-template-token",
        "oauth-openai-codex",
        "oauth-openai",
        "oauth-mode-provider-lowercased",
        "provider-lowercased",
    ],
)
def test_parse_entry(entry, want):
    """Each type, OpenClaw's load aliases, SecretRefs and lowercased providers."""
    assert parsed(entry) == want


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "api_key", "key": "sk-1"},
        {"type": "api_key", "provider": "", "key": "sk-1"},
        {"type": "api_key", "provider": 7, "key": "sk-1"},
        {"type": "password", "provider": "openai", "key": "sk-1"},
        {"provider": "openai", "key": "sk-1"},
        ["api_key", "openai"],
        "sk-1",
        None,
        {"type": "oauth", "provider": "openai", "access": ENV_REF, "refresh": "r", "expires": NOW},
        {"type": "oauth", "provider": "openai", "access": "a", "refresh": ENV_REF, "expires": NOW},
        {"type": "oauth", "provider": "openai", "keyRef": ENV_REF, "expires": NOW},
        {"type": "oauth", "provider": "openai", "tokenRef": ENV_REF, "expires": NOW},
    ],
    ids=[
        "no-provider",
        "empty-provider",
        "provider-not-string",
        "unknown-type",
        "no-type",
        "array",
        "string",
        "null",
        "oauth-access-ref",
        "oauth-refresh-ref",
        "oauth-keyRef",
        "oauth-tokenRef",
    ],
)
def test_invalid_entries_are_skipped(entry):
    """Entries OpenClaw would skip are reported as invalid and are not usable profiles."""
    doc = parse_profiles(json.dumps({"version": 1, "profiles": {"bad:x": entry, "ok:y": OK}}))
    assert (list(doc.profiles), [(e.id, type(e)) for e in doc.invalid]) == (
        ["ok:y"],
        [("bad:x", InvalidEntry)],
    )


OK = {"type": "api_key", "provider": "ok", "key": "sk-ok"}

ORIGINAL = {
    "zeta": "unknown top-level field first",
    "version": 1,
    "profiles": {
        "openai-codex:ålice@example.com": {
            "refresh": "rt_old",
            "type": "oauth",
            "provider": "openai-codex",
            "access": "eyJ-old",
            "expires": NOW,
            "accountId": "acc-1",
            "futureField": {"nested": [1, 2.5, None, True], "émoji": "🦀"},
        },
        "broken:no-provider": {"type": "api_key", "key": "sk-kept", "x": [3, 2, 1]},
        "weird:type": {"type": "password", "provider": "weird", "secret": "kept"},
        "array:entry": [1, "two", {"three": 3}],
        "anthropic:work": {"provider": "anthropic", "type": "token", "token": "sk-ant-oat01-t"},
    },
    "extra": {"b": 1, "a": 2},
}


def test_rewrite_keeps_unknown_fields_invalid_entries_and_key_order():
    """Updating one profile changes exactly its fields; all else survives byte for byte."""
    doc = parse_profiles(dump_json(ORIGINAL))
    updated = update_profile(
        doc, "openai-codex:ålice@example.com", {"access": "eyJ-new", "expires": NOW + 1}
    )
    want = json.loads(json.dumps(ORIGINAL))
    want["profiles"]["openai-codex:ålice@example.com"].update(access="eyJ-new", expires=NOW + 1)
    assert dump_profiles(updated) == dump_json(want)


def test_with_profile_appends_new_and_replaces_in_place():
    """A new profile goes last; a replaced one keeps its place in the file."""
    doc = parse_profiles(dump_json(ORIGINAL))
    doc = with_profile(doc, "new:one", {"type": "api_key", "provider": "new", "key": "k"})
    doc = with_profile(doc, "weird:type", {"type": "api_key", "provider": "weird", "key": "k2"})
    assert list(json.loads(dump_profiles(doc))["profiles"].items()) == [
        *[(k, v) for k, v in ORIGINAL["profiles"].items() if k != "weird:type"][:2],
        ("weird:type", {"type": "api_key", "provider": "weird", "key": "k2"}),
        *list(ORIGINAL["profiles"].items())[3:],
        ("new:one", {"type": "api_key", "provider": "new", "key": "k"}),
    ]


def test_merge_keeps_fields_the_update_does_not_name():
    """{...old, ...new}: a partial update keeps every other field; None deletes a field."""
    doc = parse_profiles(dump_json(ORIGINAL))
    updated = update_profile(doc, "anthropic:work", {"token": "sk-ant-oat01-u", "expires": None})
    assert json.loads(dump_profiles(updated))["profiles"]["anthropic:work"] == {
        "provider": "anthropic",
        "type": "token",
        "token": "sk-ant-oat01-u",
    }


def test_dump_is_openclaws_format_with_non_ascii_kept():
    """JSON.stringify(doc, null, 2) + newline: 2-space indent, raw UTF-8, trailing newline."""
    doc = {"version": 1, "profiles": {"x:é": {"email": "ålice@exämple.com", "n": [1, 2]}}}
    assert (
        dump_json(doc)
        == (
            '{\n  "version": 1,\n  "profiles": {\n    "x:é": {\n      "email": "ålice@exämple.com",'
            '\n      "n": [\n        1,\n        2\n      ]\n    }\n  }\n}\n'
        ).encode()
    )
    assert dump_json(doc) == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def test_parse_then_dump_is_identity():
    """A store in OpenClaw's format is written back exactly as read."""
    data = dump_json(ORIGINAL)
    assert dump_profiles(parse_profiles(data)) == data


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "api_key", "provider": "openai", "key": CANARY},
        {"type": "api_key", "provider": "openai", "apiKey": CANARY},
        {"type": "token", "provider": "anthropic", "token": CANARY},
        {
            "type": "oauth",
            "provider": "openai",
            "access": CANARY,
            "refresh": CANARY,
            "expires": 1,
            "idToken": CANARY,
        },
        {"type": "password", "provider": "openai", "secret": CANARY},
        {"provider": "openai", "key": CANARY},
    ],
    ids=["api_key", "apiKey-alias", "token", "oauth", "unknown-type", "no-type"],
)
def test_repr_never_shows_a_secret(entry):
    """Printing a parsed document or profile, in any way, shows no secret."""
    doc = parse_profiles(json.dumps({"version": 1, "profiles": {"p:x": entry}}))
    shown = [repr(doc), str(doc), repr(doc.entries), f"{doc.entries['p:x']}", repr(doc.profiles)]
    assert [CANARY in s for s in shown] == [False] * len(shown)


def test_secrets_are_secret_values():
    """Parsed secrets are ``Secret`` objects whose value is recovered by ``reveal``."""
    profile = parsed({"type": "oauth", "provider": "x", "access": "a1", "refresh": "r1"})
    assert (type(profile.access), profile.access.reveal(), profile.refresh.reveal()) == (
        Secret,
        "a1",
        "r1",
    )


@pytest.mark.parametrize(
    ("access", "expires", "usable"),
    [
        ("a", NOW + 300_001, True),
        ("a", NOW + 300_000, False),
        ("a", NOW - 1, False),
        ("", NOW + 3_600_000, False),
        ("a", None, False),
    ],
    ids=["fresh", "at-margin", "expired", "empty-access", "no-expiry"],
)
def test_oauth_usable(access, expires, usable):
    """Usable = non-empty access and more than 5 minutes before expiry (spec §6)."""
    entry = {"type": "oauth", "provider": "x", "access": access, "refresh": "r"}
    if expires is not None:
        entry["expires"] = expires
    assert parsed(entry).is_usable(NOW) is usable


@pytest.mark.parametrize(
    "data",
    [
        b'{"version": 1, "profiles": {"a": ',
        b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe garbage",
        b"\xff\xfe\xfd",
        b"[]",
        b'[{"version": 1, "profiles": {}}]',
        b'"profiles"',
        b"null",
        b"",
        b'{"version": 1}',
        b'{"version": 1, "profiles": []}',
        b'{"version": 1, "profiles": "x"}',
        b'{"version": 1, "profiles": null}',
        b"[" * 100_000,
        b'{"version": 1, "profiles": {}, "n": ' + b"9" * 5000 + b"}",
    ],
    ids=[
        "truncated",
        "binary",
        "not-utf8",
        "array",
        "array-of-store",
        "string",
        "null",
        "empty",
        "no-profiles",
        "profiles-array",
        "profiles-string",
        "profiles-null",
        "deep-nesting",
        "huge-int",
    ],
)
def test_not_a_store(data):
    """Anything that is not a JSON object with a "profiles" object is a StoreFormatError."""
    with pytest.raises(StoreFormatError):
        parse_profiles(data)


def test_format_error_never_quotes_the_document():
    """The parse error says where it failed, not what the file held."""
    with pytest.raises(StoreFormatError) as info:
        parse_profiles(b'{"profiles": {"a": {"key": "' + CANARY.encode() + b'"')
    assert CANARY not in str(info.value)


STATE = {
    "version": 1,
    "order": {"anthropic": ["anthropic:work", "anthropic:default"]},
    "lastGood": {"openai-codex": "openai-codex:alice@example.com"},
    "usageStats": {
        "anthropic:work": {
            "lastUsed": 1767200000000,
            "errorCount": 1,
            "cooldownUntil": 1767200030000,
            "cooldownReason": "rate_limit",
            "failureCounts": {"rate_limit": 1},
            "lastFailureAt": 1767200000000,
        }
    },
}


def test_parse_state():
    """order, lastGood and usageStats of auth-state.json as typed values."""
    assert parse_state(json.dumps(STATE)) == AuthState(
        order={"anthropic": ("anthropic:work", "anthropic:default")},
        last_good={"openai-codex": "openai-codex:alice@example.com"},
        usage={
            "anthropic:work": UsageStats(
                last_used=1767200000000, error_count=1, cooldown_until=1767200030000
            )
        },
    )


def test_state_dump_round_trip():
    """auth-state.json written back as read, unknown usage fields included."""
    data = dump_json(STATE)
    assert dump_state(parse_state(data)) == data


@pytest.mark.parametrize(
    ("usage", "until"),
    [
        ({}, 0),
        ({"cooldownUntil": 5}, 5),
        ({"cooldownUntil": 5, "disabledUntil": 9, "blockedUntil": 7}, 9),
        ({"blockedUntil": 11, "cooldownUntil": 3}, 11),
    ],
)
def test_unusable_until_is_the_latest_window(usage, until):
    """A profile is unusable until max(cooldownUntil, disabledUntil, blockedUntil)."""
    state = parse_state(json.dumps({"version": 1, "usageStats": {"p:x": usage}}))
    assert state.usage["p:x"].unusable_until() == until


@pytest.mark.parametrize(
    "data", [b"[]", b"{", b"\xff", b'"x"'], ids=["array", "truncated", "binary", "string"]
)
def test_state_not_an_object(data):
    """auth-state.json that is not a JSON object is a StoreFormatError."""
    with pytest.raises(StoreFormatError):
        parse_state(data)


def test_update_keeps_a_stored_null():
    """A null already in the file is an unknown field like any other: an update keeps it."""
    doc = parse_profiles(dump_json({"version": 1, "profiles": {"p:x": {**OK, "future": None}}}))
    updated = update_profile(doc, "p:x", {"key": "sk-2"})
    assert json.loads(dump_profiles(updated))["profiles"]["p:x"] == {
        **OK,
        "future": None,
        "key": "sk-2",
    }
