"""Legacy inputs (store spec §8): ``credentials/oauth.json`` and an agent's ``auth.json``, turned
into ``<provider>:default`` profiles the way OpenClaw imports them. Pure: documents in, fields out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sidecar.sources.openclaw.model import JSONObject

CREDENTIAL_KINDS = ("api_key", "token", "oauth")
_OAUTH_FIELDS = (
    "access",
    "refresh",
    "expires",
    "email",
    "accountId",
    "projectId",
    "enterpriseUrl",
    "idToken",
    "clientId",
    "chatgptPlanType",
)


def parse_legacy(data: bytes | None) -> Mapping[str, Any]:
    """A legacy document, or an empty one if missing or unreadable (it is only an input)."""
    if data is None:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, int too long
        return {}
    return doc if isinstance(doc, dict) else {}


def profiles_from_oauth_json(doc: Mapping[str, Any]) -> dict[str, JSONObject]:
    """``{"<provider>": {access, refresh, expires, ...}}`` -> ``<provider>:default`` oauth."""
    out: dict[str, JSONObject] = {}
    for provider, cred in doc.items():
        if isinstance(cred, dict) and isinstance(cred.get("access"), str):
            fields = {k: cred[k] for k in _OAUTH_FIELDS if k in cred}
            out[f"{provider.lower()}:default"] = {
                "type": "oauth",
                "provider": provider.lower(),
                **fields,
            }
    return out


def profiles_from_auth_json(doc: Mapping[str, Any]) -> dict[str, JSONObject]:
    """``{"<key>": {type, provider, key | access/refresh/expires | token}}`` ->
    ``<provider>:default``
    profiles. OpenClaw 2026.6.1 rejects an entry without its own ``provider`` field (the key is
    not used as the provider), so such entries are skipped here too."""
    out: dict[str, JSONObject] = {}
    for cred in doc.values():
        if not isinstance(cred, dict):
            continue
        provider, kind = cred.get("provider"), cred.get("type", cred.get("mode"))
        if not isinstance(provider, str) or not provider or kind not in CREDENTIAL_KINDS:
            continue
        fields = {k: v for k, v in cred.items() if k not in ("type", "mode", "provider")}
        out[f"{provider.lower()}:default"] = {"type": kind, "provider": provider.lower(), **fields}
    return out
