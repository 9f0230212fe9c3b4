"""nginx configs from the templates in bench/nginx/: the JSON upstream and the nginx target."""

from __future__ import annotations

import json
from pathlib import Path

from bench.procs import Child, Children

TEMPLATES = Path(__file__).with_name("nginx")


def completion_body(size: int = 1024) -> str:
    """A chat completion padded to ``size`` bytes, the shape an OpenAI SDK parses."""
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
    }
    pad = size - len(json.dumps(doc, separators=(",", ":")))
    doc["choices"][0]["message"]["content"] = "lorem ipsum " * (pad // 12) + "x" * (pad % 12)  # type: ignore[index]
    return json.dumps(doc, separators=(",", ":"))


def request_body(size: int = 1024) -> str:
    doc = {"model": "gpt-bench", "messages": [{"role": "user", "content": ""}], "stream": False}
    pad = size - len(json.dumps(doc, separators=(",", ":")))
    doc["messages"][0]["content"] = "x" * pad  # type: ignore[index]
    return json.dumps(doc, separators=(",", ":"))


def render(template: str, workdir: Path, name: str, **values: object) -> Path:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / f"{name}-tmp" / sub).mkdir(parents=True, exist_ok=True)
    text = (TEMPLATES / template).read_text().format(workdir=workdir, name=name, **values)
    path = workdir / f"{name}.conf"
    path.write_text(text)
    return path


def start(group: Children, template: str, name: str, *, cpu: str, **values: object) -> Child:
    conf = render(template, group.workdir, name, **values)
    return group.start(name, ["nginx", "-p", str(group.workdir), "-c", str(conf)], cpu=cpu)
