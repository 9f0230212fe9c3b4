"""OpenClaw's JSON store (eras A-C, up to 2026.6.1): ``auth-profiles.json``, ``auth-state.json``
and the legacy ``auth.json`` / ``oauth.json`` files, read and written under OpenClaw's locks."""
