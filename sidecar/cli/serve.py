"""``serve``: validate the configuration completely, then run the proxy."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TextIO

import anyio

from sidecar import log, server
from sidecar.cli.common import settings_of


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    settings = settings_of(args)  # validated completely before any socket is bound
    log.configure(settings.log.level)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(server.serve, settings, os.environ)
    return 0
