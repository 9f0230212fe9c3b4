"""``python -m sidecar``: the same as the ``openclaw-sidecar`` command."""

from sidecar.cli import main

raise SystemExit(main())
