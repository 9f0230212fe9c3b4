"""``serve``: validate the configuration completely, then run the proxy."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
from typing import TextIO

import anyio

from sidecar import log, server
from sidecar.cli.common import settings_of

UVLOOP = importlib.util.find_spec("uvloop") is not None


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)  # validated completely before any socket is bound
    log.configure(settings.log.level)
    with contextlib.suppress(KeyboardInterrupt):
        # uvloop: the event loop uvicorn[standard] runs on (libuv), where installed.
        anyio.run(server.serve, settings, os.environ, backend_options={"use_uvloop": UVLOOP})
    return 0
