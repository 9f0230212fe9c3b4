"""The wall clock in epoch milliseconds, the unit of every time OpenClaw stores. Sources and
commands take it as a parameter (``clock=``) so tests pass a fake one."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
