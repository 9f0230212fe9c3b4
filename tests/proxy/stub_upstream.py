"""The proxy's side of ``Upstream`` for unit tests: ``send_parts`` builds an ``httpx.Request``
(``request``) and hands it to ``send``, which each fake defines."""

from __future__ import annotations

from typing import Any

import httpx


class StubUpstream:
    def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        content: Any,
        *,
        length: int | None = None,
    ) -> httpx.Request:
        return httpx.Request(method, url, headers=headers, content=content)

    async def send_parts(
        self,
        method: str,
        url: Any,
        headers: list[tuple[bytes, bytes]],
        content: Any,
        *,
        length: int | None = None,
    ) -> httpx.Response:
        return await self.send(self.request(method, str(url), headers, content, length=length))

    async def send(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError
