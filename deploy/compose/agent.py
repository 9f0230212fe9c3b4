"""An example agent: one OpenAI-style chat completion through its own sidecar port.

It holds no API key, only the client token of its port (a compose secret). Standard library
only, so it runs in any image with Python 3. With the ``openai`` SDK it would be:

    client = openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=token)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])

Environment: OPENAI_BASE_URL (e.g. http://sidecar:18802/openai/v1), OPENCLAW_CLIENT_TOKEN_FILE
(default /run/secrets/client-token; empty = send no token), MODEL, PROMPT, WAIT_SECONDS.
Prints the HTTP status and the reply (or the sidecar's error) as one JSON line; exits 0 on 200.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def wait_for_sidecar(base_url: str, seconds: float) -> None:
    """Polls the sidecar's /healthz (no token needed) until it answers or time runs out."""
    parts = urllib.parse.urlsplit(base_url)
    health = f"{parts.scheme}://{parts.netloc}/healthz"
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(health, timeout=2):  # noqa: S310 -- http(s) only
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> int:
    base_url = os.environ["OPENAI_BASE_URL"].rstrip("/")
    token_file = os.environ.get("OPENCLAW_CLIENT_TOKEN_FILE", "/run/secrets/client-token")
    wait_for_sidecar(base_url, float(os.environ.get("WAIT_SECONDS", "60")))
    headers = {"Content-Type": "application/json"}
    if token_file:
        with open(token_file, encoding="utf-8") as file:
            headers["Authorization"] = f"Bearer {file.read().strip()}"
    body = {
        "model": os.environ.get("MODEL", "gpt-4o-mini"),
        "messages": [{"role": "user", "content": os.environ.get("PROMPT", "Say hello.")}],
    }
    request = urllib.request.Request(  # noqa: S310 -- http(s) only
        f"{base_url}/chat/completions", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            doc = json.load(response)
            result = {"status": response.status, "reply": doc["choices"][0]["message"]["content"]}
    except urllib.error.HTTPError as exc:
        result = {
            "status": exc.code,
            "sidecar_error": exc.headers.get("X-OpenClaw-Sidecar-Error"),
            "error": json.loads(exc.read() or b"null"),
        }
    print(json.dumps(result), flush=True)
    return 0 if result["status"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
