"""Test fakes: a fake OAuth token server and a fake model API, both real HTTP servers.

- `tests.fakes.token_server.FakeTokenServer` / `TokenRegistry`
- `tests.fakes.upstream.FakeUpstream`
- `tests.fakes.server`: run an ASGI app on uvicorn in a thread (`serve_in_thread`) or as a
  child process (`spawn`).
"""
