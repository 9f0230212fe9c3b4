"""A model call as the request quirks of ``providers/quirks.py`` read it: which API it is (from
its path), and from a body the proxy holds, the model it asks for and its turns in order. Pure.

A body the proxy does not hold (over ``refresh.replay_body_limit_bytes``, or chunked) or that is
not a JSON object reads as a call with no model and no turns: an empty conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from sidecar.providers.answers import json_object, string

Api = Literal["chat", "responses", "messages"]
# The three model APIs OpenClaw's Copilot and xAI wrappers handle (openai-completions,
# openai-responses, anthropic-messages), by the path a client sends them to.
_APIS: Final[tuple[tuple[str, Api], ...]] = (
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/messages", "messages"),
)
# Where a part's nested parts are: OpenClaw's internal messages keep them in ``content``; on the
# wire a Responses tool result keeps them in ``output``.
_NESTED: Final = ("content", "output")


@dataclass(frozen=True)
class ModelCall:
    api: Api
    model: str | None  # the body's ``model``, None when there is none or no body was read
    turns: tuple[object, ...]  # ``messages`` (chat, messages) or ``input`` items (responses)


def model_call(path: str, body: bytes | None) -> ModelCall | None:
    """The model call a request to ``path`` is, None for any other request (a model listing,
    embeddings, a file upload)."""
    api = next((name for suffix, name in _APIS if path.endswith(suffix)), None)
    if api is None:
        return None
    doc = json_object(body) if body else None
    if doc is None:
        return ModelCall(api, None, ())
    return ModelCall(api, string(doc, "model"), _turns(doc, api))


def _turns(doc: dict[str, object], api: Api) -> tuple[object, ...]:
    if api == "responses":
        items = doc.get("input")
        if isinstance(items, str):  # Responses' shorthand for one user message
            return ({"role": "user", "content": items},)
    else:
        items = doc.get("messages")
    return tuple(items) if isinstance(items, list) else ()


def role_of(turn: object) -> object:
    """A turn's ``role`` (None for a Responses item that has none, e.g. a tool's output)."""
    return turn.get("role") if isinstance(turn, Mapping) else None


def contains_type(value: object, types: frozenset[str]) -> bool:
    """Whether ``value``, or a part nested in it (in lists, ``content`` and ``output``), has a
    ``type`` among ``types``: OpenClaw's ``containsContentType`` in its nested mode. Walked
    without recursion, since the body is the client's."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, Mapping):
            kind = item.get("type")
            if isinstance(kind, str) and kind in types:
                return True
            pending.extend(item[key] for key in _NESTED if key in item)
    return False
