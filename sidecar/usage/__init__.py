"""Usage: what each request through the sidecar cost (tokens read from the answers as they pass)
and how close each profile is to its provider's limits (windows read from the answers' headers),
kept in the sidecar's own SQLite database. Pure parsers, the per-answer tap, the recorder that
writes off the request path, and the queries the commands and the page ask."""
