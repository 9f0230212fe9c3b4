"""The view cache: a view stands while its signature holds, is looked at again after the check
interval or an invalidation, and is merged again when inheritance may turn."""

from __future__ import annotations

from sidecar.sources.openclaw.era import Era
from sidecar.sources.openclaw.model import parse_entry
from sidecar.sources.openclaw.viewcache import NEVER, ViewCache, recheck_at
from sidecar.sources.openclaw.views import AgentView, ProfileView

NOW = 1_767_225_600_000
HOUR = 3_600_000


def view(agent: str, expires: int | None = None, owner: str | None = None) -> AgentView:
    profiles = {}
    if expires is not None:
        profile = parse_entry(
            "c:x",
            {
                "type": "oauth",
                "provider": "openai-codex",
                "access": "a",
                "refresh": "r",
                "expires": expires,
            },
        )
        profiles["c:x"] = ProfileView(profile, owner or agent, "f")  # type: ignore[arg-type]
    return AgentView(agent=agent, profiles=profiles, state=None, era=Era.JSON)  # type: ignore[arg-type]


def test_a_view_stands_while_its_signature_holds() -> None:
    """Within the interval it is fresh; after an invalidation only a matching signature keeps it."""
    cache = ViewCache(3600, lambda: NOW)
    v = cache.put("w", ("sig", 1), view("w"))
    assert (cache.fresh("w"), cache.matching("w", ("sig", 1))) == (v, v)
    cache.invalidate()
    assert (cache.fresh("w"), cache.matching("w", ("sig", 2))) == (None, None)


def test_a_zero_interval_always_looks_at_the_files() -> None:
    """check_interval_s = 0: never fresh, but a matching signature still avoids a rebuild."""
    cache = ViewCache(0, lambda: NOW)
    v = cache.put("w", "sig", view("w"))
    assert (cache.fresh("w"), cache.matching("w", "sig")) == (None, v)


def test_recheck_at_is_when_an_own_oauth_copy_stops_being_usable() -> None:
    """Only a non-main agent's own, still usable OAuth copy sets a moment to merge again."""
    assert [
        recheck_at(view("w", NOW + HOUR), NOW),
        recheck_at(view("w", NOW + HOUR, owner="main"), NOW),
        recheck_at(view("main", NOW + HOUR), NOW),
        recheck_at(view("w", NOW - HOUR), NOW),
        recheck_at(view("w"), NOW),
    ] == [NOW + HOUR - 300_000, NEVER, NEVER, NEVER, NEVER]
