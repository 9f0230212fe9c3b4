"""The proxy: the ASGI app, routing and header rules (pure), forwarding and streaming (I/O)."""
