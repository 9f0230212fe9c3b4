"""What an upstream's answer means for the request and its profile, read before a byte of it
reaches the client: an error answer's body is read (up to a limit) and classified the way
OpenClaw 2026.9.6 reads a provider error (``sidecar.auth.failover``). The answer handed back
replays the bytes read, so the client still gets it unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import httpx

from sidecar.auth import failover
from sidecar.auth.error_messages import Reason
from sidecar.providers.ratelimits import Reset, reset_of
from sidecar.sources.openclaw.usage import Failure, FailureReason

# Provider error bodies are a few hundred bytes; one larger than this is relayed as it is,
# without a failover (it cannot be kept aside to be the answer if no other profile succeeds).
ERROR_BODY_LIMIT: Final = 64 * 1024
_TEXT_LIMIT: Final = 16 * 1024  # what the classifier's patterns look at


@dataclass(frozen=True)
class Verdict:
    status: int
    reason: Reason | None = None  # OpenClaw's failover reason, None for no failure it knows
    buffered: bool = False  # the whole body was read: the answer may wait while others try
    reset: Reset | None = None  # when the provider says the account may be used again
    at_ms: int = 0  # when the answer was read

    @property
    def success(self) -> bool:
        return self.status < 400

    @property
    def failure(self) -> FailureReason | None:
        """What the answer counts against its profile."""
        return failover.profile_failure(self.reason)

    def failure_of(self, model: str | None) -> Failure | None:
        """The failure to record for a request for ``model``, with the provider's reset."""
        reason = self.failure
        if reason is None:
            return None
        reset = self.reset
        return Failure(reason, model, reset.at_ms if reset else None, bool(reset and reset.window))

    @property
    def fails_over(self) -> bool:
        """Whether the request may go on to the next profile (the body was read whole)."""
        return self.buffered and failover.fails_over(self.reason)


async def judge(
    response: httpx.Response, provider: str, method: str, now_ms: int
) -> tuple[httpx.Response, Verdict]:
    """The answer to relay (the same bytes) and what it means. Only an error answer with a
    body is read, and only up to ``ERROR_BODY_LIMIT``."""
    status = response.status_code
    if status < 400:
        return response, Verdict(status, at_ms=now_ms)
    if method == "HEAD":
        return response, _verdict(response, "", provider, now_ms, buffered=False)
    head, complete = await _read_upto(response, ERROR_BODY_LIMIT)
    if not complete:
        return _replaying(response, head), _verdict(response, "", provider, now_ms, False)
    await response.aclose()
    text = _text(status, response.headers, head)
    return _replaying(response, head), _verdict(response, text, provider, now_ms, True)


def _verdict(
    response: httpx.Response, text: str, provider: str, now_ms: int, buffered: bool
) -> Verdict:
    status = response.status_code
    reason = failover.classify(status, text, provider)
    reset = reset_of(response.headers, text, now_ms) if reason is not None else None
    return Verdict(status, reason, buffered, reset, now_ms)


async def _read_upto(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The raw body up to ``limit`` bytes, and whether that was all of it."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
    return b"".join(chunks), True


def _replaying(response: httpx.Response, head: bytes) -> httpx.Response:
    """A response with ``response``'s status and headers whose raw body is ``head`` followed by
    whatever ``response`` has not yet given."""
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=_Rest(head, response),
        extensions=response.extensions,  # the reason phrase, when the transport kept it
    )


class _Rest(httpx.AsyncByteStream):
    def __init__(self, head: bytes, response: httpx.Response) -> None:
        self.head = head
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        if not self.response.is_closed:
            async for chunk in self.response.aiter_raw():
                yield chunk

    async def aclose(self) -> None:
        await self.response.aclose()


def _text(status: int, headers: httpx.Headers, raw: bytes) -> str:
    """The body as text, decoded per its Content-Encoding (never raises)."""
    try:
        decoded = httpx.Response(status, headers=headers, content=raw)
        return decoded.text[:_TEXT_LIMIT]
    except (httpx.DecodingError, LookupError, ValueError):
        return ""
