"""Comfy Cloud's key inside a workflow submission, where OpenClaw puts it besides the
``X-API-Key`` header: 2026.6.1 ``workflow-runtime-*.js`` ``runComfyWorkflow`` (the 2026.9.6
external plugin's ``extensions/comfy/workflow-runtime.ts`` the same) posts ``{prompt: workflow,
extra_data: {api_key_comfy_org: <key>}}`` to ``<base>/api/prompt`` in cloud mode, and ComfyUI
hands ``extra_data.api_key_comfy_org`` to the workflow's API nodes (partner nodes billed to
the account). A client behind the sidecar holds no key, so the sidecar writes it there. Pure.
"""

from __future__ import annotations

import json
from typing import Final

from sidecar.providers.answers import json_object

SUBMIT_PATH: Final = "/api/prompt"  # cloud mode's submission; local ComfyUI's /prompt has no key
KEY_FIELD: Final = "api_key_comfy_org"


def submission_with_key(path: str, body: bytes | None, key: str) -> bytes | None:
    """A workflow submission's body with ``extra_data.api_key_comfy_org`` set to ``key`` (a
    value the client sent there, a placeholder, is replaced; every other field stays); None,
    to send the body as it came, for another path, a body the proxy does not hold, or one
    that is not a JSON object whose ``extra_data`` is an object or absent.

    The new body is the same document written as compact JSON; one that could not be written
    back as it was read (a NaN or an infinity, text that is not UTF-8) is sent as it came."""
    if body is None or not path.endswith(SUBMIT_PATH):
        return None
    doc = json_object(body)
    if doc is None:
        return None
    extra = doc.get("extra_data")
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        return None
    doc["extra_data"] = {**extra, KEY_FIELD: key}
    try:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")
    except ValueError:  # a NaN or infinity, or a lone surrogate (UnicodeEncodeError)
        return None
