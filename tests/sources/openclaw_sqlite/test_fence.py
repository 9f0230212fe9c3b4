"""OpenClaw 2026.9.x's refresh lock name and fence values, checked against values its own code
produced (node calling the functions in 2026.9.6's dist, docs/openclaw-findings.md f/g)."""

from __future__ import annotations

import json

import pytest

from sidecar.sources.openclaw_sqlite import fence

CLAIM = "88c73580aaa9d75871711e3f0c676928"
NOW = 1_767_225_600_000
CRED = {
    "type": "oauth",
    "provider": "anthropic",
    "access": "ACC-1",
    "refresh": "REF-1",
    "expires": 123,
    "email": "me@example.com",
    "idToken": "x",
    "extra": {"a": 1},
}
# createOAuthRefreshFence({profileId: "anthropic:default", credential: CRED}) in node, with its
# random claim id replaced by CLAIM.
NODE_FENCE = (
    '{"type":"oauth","provider":"anthropic","email":"me@example.com","extra":{"a":1},'
    '"access":"openclaw-oauth-refresh-fence:v1:88c73580aaa9d75871711e3f0c676928:access:'
    '94d99fe906950112b0fb80ce83507123b160beb05e809f2372b770cf9379584c",'
    '"refresh":"openclaw-oauth-refresh-fence:v1:88c73580aaa9d75871711e3f0c676928:refresh:'
    '99323a409361e9917dd7b1fed6127b3b38b2b05309990a39f366f32c6abd156a","expires":1}'
)


@pytest.mark.parametrize(
    ("provider", "profile_id", "digest"),
    [
        ("anthropic", "anthropic:default", "d86ff71f0416cea6738a705bf801262d"),
        ("openai", "openai:bob@example.com", "050eb4ca637e8f51c14f5a92cd33385a"),
        ("x", 'we"ird\né', "759ea5dbd1e21ab8e38c5b41071072cd"),
    ],
)
def test_lock_digest_matches_openclaw(provider: str, profile_id: str, digest: str) -> None:
    """The two-lane FNV digest of JSON.stringify([provider, profileId]) is OpenClaw's."""
    assert fence.lock_digest(provider, profile_id) == digest
    assert fence.lock_name(provider, profile_id) == f"lock-{digest}.lock"


def test_make_fence_is_byte_identical_to_openclaws() -> None:
    """Same keys, same order, same digests; idToken dropped, identity fields kept."""
    made = fence.make_fence("anthropic:default", CRED, CLAIM)
    assert json.dumps(made, separators=(",", ":"), ensure_ascii=False) == NODE_FENCE


def test_parse_pending_then_failed() -> None:
    """A fresh fence is pending; the failed form keeps claim and digests."""
    made = fence.make_fence("anthropic:default", CRED, CLAIM)
    pending = fence.parse_fence(made)
    failed = fence.failed_fence(made)
    assert pending is not None
    assert pending.state == "pending"
    assert pending.claim_id == CLAIM
    assert fence.parse_fence(failed) == fence.Fence(
        CLAIM, "failed", pending.access_digest, pending.refresh_digest
    )
    assert failed["access"].startswith(f"{fence.FENCE_PREFIX}{CLAIM}:failed:access:")
    assert (fence.is_pending_fence(made), fence.is_failed_fence(failed)) == (True, True)
    assert fence.failed_fence(failed) == failed


@pytest.mark.parametrize(
    "change",
    [
        {"expires": 2},
        {"type": "token"},
        {"access": "real-token"},
        {"refresh": f"{fence.FENCE_PREFIX}{'0' * 32}:refresh:{'a' * 64}"},  # other claim
    ],
)
def test_not_a_fence(change: dict[str, object]) -> None:
    """Only the exact v1 shape is a fence."""
    made = {**fence.make_fence("p:x", CRED, CLAIM), **change}
    assert fence.parse_fence(made) is None
    assert not fence.is_fence(made)


def test_generation_of_a_fence_is_its_credentials() -> None:
    """Restoring the fenced refresh token is refused; a new login is not."""
    made = fence.make_fence("anthropic:default", CRED, CLAIM)
    assert fence.generation_digest("anthropic:default", made) == fence.generation_digest(
        "anthropic:default", CRED
    )
    assert fence.restores_fenced_generation("anthropic:default", made, CRED)
    assert not fence.restores_fenced_generation(
        "anthropic:default", made, {**CRED, "refresh": "NEW"}
    )
    assert not fence.restores_fenced_generation("anthropic:default", CRED, CRED)


LIVE = {**CRED, "access": "A2", "refresh": "R2", "expires": NOW + 3_600_000}


@pytest.mark.parametrize(
    ("generation", "candidate", "safe"),
    [
        (CRED, LIVE, True),
        (CRED, {**LIVE, "email": "ME@example.com "}, True),  # emails compare trimmed, lowercased
        (CRED, {**LIVE, "email": "other@example.com"}, False),
        (CRED, {**LIVE, "expires": NOW + 60_000}, False),  # within the 5 min margin
        (CRED, {**LIVE, "provider": "openai"}, False),
        (CRED, fence.make_fence("p:x", LIVE, CLAIM), False),
        ({**CRED, "email": None}, {**LIVE, "email": None}, False),  # no identity: never adopted
        ({**CRED, "accountId": "acc"}, {**LIVE, "accountId": "acc", "email": "x@y"}, True),
        (CRED, None, False),
    ],
)
def test_safe_settlement(
    generation: dict[str, object], candidate: dict[str, object] | None, safe: bool
) -> None:
    """OpenClaw's rule for adopting what replaced a claimed credential."""
    assert fence.is_safe_settlement(generation, candidate, NOW) is safe
