"""Requests that ended, accounted for together: each request's line in the log, its metrics and
its usage row are written by one callback that runs once the event loop has run what was
ready, for every request that ended meanwhile.

A request is accounted for after its answer's last byte went out, so nothing here delays an
answer. Done one request at a time, between other requests' work, the same calls ran with cold
caches and cost ~95 us a request at 32 connections; settled together they cost less (bench/:
CPU per request 423 -> 382 us, req/s +11 %), and a request that arrives meanwhile is not queued
behind the one before's accounting.

``settle`` also runs before ``/metrics`` is read and before ``serve`` writes its last usage
batch, so neither misses a request that has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sidecar.log import get_logger, together

log = get_logger("sidecar.proxy")

Entry = tuple[Callable[[Any, float], None], Any, float]


class Ledger:
    def __init__(self) -> None:
        self._ended: list[Entry] = []

    def add(self, account: Callable[[Any, float], None], ended: Any, seconds: float) -> None:
        """``account(ended, seconds)`` once the loop has run what is ready now."""
        self._ended.append((account, ended, seconds))
        if len(self._ended) == 1:
            asyncio.get_running_loop().call_soon(self.settle)

    def settle(self) -> None:
        """Accounts for every request that ended and is not accounted for yet."""
        ended, self._ended = self._ended, []
        with together():  # their log lines in one write
            for account, exchange, seconds in ended:
                try:
                    account(exchange, seconds)
                except Exception:  # one request's accounting must not lose the others'
                    log.exception("accounting_failed")

    def __len__(self) -> int:
        return len(self._ended)
