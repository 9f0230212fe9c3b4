"""What OpenClaw's JSON and SQLite layouts share: the state dir's paths (``layout``), the typed
profile model (``model``), agent views and order (``views``), usage and cooldowns (``usage``),
secret refs (``refs``), ``openclaw.json`` (``config``), atomic files and OpenClaw's locks."""
