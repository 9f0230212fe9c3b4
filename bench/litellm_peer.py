"""The ``litellm`` peer: LiteLLM's proxy (``litellm[proxy]`` 1.108.7 when added, in its own venv
at /opt/bench-litellm, never the project's) with one pass-through endpoint from its config:
``/passthrough/v1/chat/completions`` forwarded to the upstream's ``/v1/chat/completions`` with
one ``Authorization`` header set. Reported only: it is not a target of issue #10.

Its pass-through route does not translate the call (no model routing, no OpenAI client), but it
is not a byte pipe either: LiteLLM reads the whole request body, parses the JSON and sends it
again with httpx's ``json=`` (re-serialised, compact); the answer is relayed as it comes.

Install (about 2.5 minutes, ~130 packages; no database, no network at run time)::

    python3 -m venv /opt/bench-litellm && /opt/bench-litellm/bin/pip install 'litellm[proxy]'
"""

from __future__ import annotations

import json
from pathlib import Path

VENV = Path("/opt/bench-litellm")
EXE = VENV / "bin" / "litellm"
PREFIX = "/passthrough"
PATH = "/v1/chat/completions"
KEY = "sk-bench-litellm-" + "0" * 32
MASTER_KEY = "sk-bench-litellm-master-" + "1" * 32

# No cost-map download at import, no .env loading, no UI/docs routes; LiteLLM's old anonymous
# telemetry is a no-op in current releases. No DATABASE_URL: no Prisma, no migrations.
ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "NO_REDOC": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "LITELLM_LOG": "ERROR",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def available() -> bool:
    return EXE.exists()


def write_config(path: Path, upstream: str) -> Path:
    """YAML is a superset of JSON: the config is written as JSON.

    One exact path: with ``include_subpath`` (``/passthrough`` and all below it) LiteLLM
    1.108.7 answers subpaths 500 (its key check runs there despite ``auth: False``)."""
    config = {
        "model_list": [],
        # LiteLLM refuses to start without a master key. The route has ``auth: False``: no
        # LiteLLM key is checked, the client's headers are not forwarded (no
        # ``forward_headers``), and the upstream sees the one header set here.
        "general_settings": {
            "master_key": MASTER_KEY,
            "pass_through_endpoints": [
                {
                    "path": f"{PREFIX}{PATH}",
                    "target": f"{upstream}{PATH}",
                    "auth": False,
                    "headers": {"Authorization": f"Bearer {KEY}"},
                }
            ],
        },
        "litellm_settings": {"success_callback": [], "callbacks": []},
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def argv(config: Path, port: int) -> list[str]:
    return [
        str(EXE),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
