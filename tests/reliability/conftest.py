"""The reliability suite: registers its marker (until pyproject.toml does) and marks every
test in this folder with it."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The sidecar runs on asyncio."""
    return "asyncio"
