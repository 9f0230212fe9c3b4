"""OpenClaw's SQLite store (era D, 2026.6.5 and later): the database cells (``db``), the
source (``store``), and refresh under OpenClaw's fences (``refresh``, ``fence``, ``claims``)."""
