"""The OpenClaw credential store: layout, typed model, atomic files, OpenClaw's lock protocol.

This package never imports httpx: talking to token endpoints is the job of ``sidecar.auth``.
"""
