"""Driving a refresh flow (``sidecar.providers.flows``) by hand: each request it yields is
recorded and answered from a list, as the refresher would with real calls."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from sidecar.providers.grants import Answer, Grant, RefreshFlow, TokenRequest

NOW = 1_767_225_600_000


def jwt(payload: object) -> str:
    """A compact JWS with ``payload`` and a meaningless signature."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{encoded}.c2ln"


def answer(status: int = 200, now_ms: int = NOW, **fields: object) -> Answer:
    """A JSON answer."""
    return Answer(status, json.dumps(fields).encode(), now_ms)


def drive(flow: RefreshFlow, answers: Sequence[Answer]) -> tuple[list[TokenRequest], Grant]:
    """Every request the flow made and the Grant it returned; fails if it wants more answers
    than given (or stops before using them all)."""
    requests = [next(flow)]
    for index, given in enumerate(answers):
        try:
            requests.append(flow.send(given))
        except StopIteration as done:
            assert index == len(answers) - 1, "the flow stopped before its last answer"
            return requests, done.value
    raise AssertionError(f"the flow wants more than {len(answers)} answers: {requests[-1]!r}")
