"""The request body as it streams upstream, kept aside up to a limit so a 401 can replay it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Final

from starlette.types import Receive

# A body up to this size (and the replay limit) is read before anything goes upstream and
# sent as bytes: it is in the server's buffer already (with its head, most often), and aiohttp
# then writes the upstream request's head and body at once, with no generator between
# (bench/). Larger bodies stream as they come.
HELD_BODY: Final = 64 * 1024


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


class RequestBody:
    def __init__(self, receive: Receive, replay_limit: int) -> None:
        self._receive = receive
        self._limit = replay_limit
        self._kept: list[bytes] = []
        self._size = 0
        self.complete = False
        self.started = False

    @property
    def replayable(self) -> bool:
        """Whether the whole body was seen and kept (it never exceeded the limit)."""
        return self.complete and self._size <= self._limit

    def kept(self) -> bytes:
        return b"".join(self._kept)

    def model(self) -> str | None:
        """The ``model`` of a whole JSON body kept aside (None: none, or not kept)."""
        if not self.replayable:
            return None
        try:
            doc = json.loads(self.kept())
        except (ValueError, RecursionError):
            return None
        model = doc.get("model") if isinstance(doc, dict) else None
        return model if isinstance(model, str) and model else None

    async def stream(self) -> AsyncIterator[bytes]:
        self.started = True
        while not self.complete:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            self.complete = not message.get("more_body", False)
            self._size += len(chunk)
            if self._size <= self._limit:
                self._kept.append(chunk)
            else:
                self._kept.clear()
            if chunk:
                yield chunk

    async def hold(self, length: int | None) -> None:
        """Read a body whose declared ``length`` fits the replay limit before anything is sent
        (it is then sent from what was kept); leave any other to stream."""
        if length is not None and length <= self._limit:
            await self.drain()

    async def drain(self) -> None:
        """Read whatever the client still sends, so the connection stays usable."""
        if not self.started:
            async for _ in self.stream():
                pass
