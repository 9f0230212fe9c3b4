"""Credential sources: where profiles and their credentials live, behind one interface
(``interface.CredentialSource``), and which source serves an install (``choice``).

- ``openclaw``: what OpenClaw's two layouts share (paths, typed model, views, order and usage
  state, secret refs, atomic files and OpenClaw's lock protocol)
- ``openclaw_json``: OpenClaw's JSON files (up to 2026.6.1)
- ``openclaw_sqlite``: OpenClaw's SQLite store and its refresh fences (2026.6.5 and later)
- ``fleet``: profiles shared by many hosts through Redis, and the composite with a local store

Nothing here imports httpx: talking to token endpoints is the job of ``sidecar.auth``.
"""
