"""What recording usage costs a request: the tap's work per relayed chunk, the two calls at an
answer's start and end, and (off the request path) the writer's per-request work.

    .venv/bin/python -m bench.usage_tap [--rounds N]

Prints a markdown table (docs/benchmarks.md, "Usage recording"). One process, no network:
the cost is CPU in the proxy's own loop, so it is measured directly, the fastest of rounds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from sidecar.proxy.metrics import Metrics
from sidecar.usage.recorder import Recorder
from sidecar.usage.tap import NO_TAP, Tap
from sidecar.usage.tokens import model_of_request

SSE = [(b"content-type", b"text/event-stream; charset=utf-8")]
JSON = [(b"content-type", b"application/json")]
CHAT_BASE = {"id": "chatcmpl-0123456789", "object": "chat.completion.chunk", "created": 1800000000}
CHAT_CHUNK = (
    b"data: "
    + json.dumps(
        {
            **CHAT_BASE,
            "model": "gpt-bench",
            "choices": [{"index": 0, "delta": {"content": "token "}, "finish_reason": None}],
            "usage": None,  # what OpenAI sends with stream_options.include_usage
        },
        separators=(",", ":"),  # OpenAI's own spacing
    ).encode()
    + b"\n\n"
)
CHAT_LAST = (
    b"data: "
    + json.dumps(
        {**CHAT_BASE, "model": "gpt-bench", "choices": [], "usage": {"prompt_tokens": 900}}
    ).encode()
    + b"\n\n"
)
ANTHROPIC_CHUNK = (
    b"event: content_block_delta\ndata: "
    + json.dumps(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "t "}}
    ).encode()
    + b"\n\n"
)
RESPONSES_CHUNK = (
    b"event: response.output_text.delta\ndata: "
    + json.dumps(
        {
            "type": "response.output_text.delta",
            "sequence_number": 7,
            "item_id": "msg_0123456789",
            "output_index": 0,
            "content_index": 0,
            "delta": "token ",
            "logprobs": [],
        }
    ).encode()
    + b"\n\n"
)
ANSWER = json.dumps(
    {
        "object": "chat.completion",
        "model": "gpt-bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 700}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 100, "total_tokens": 1000},
    }
).encode()


@dataclass
class Kept:
    body: bytes
    replayable: bool = True

    def kept(self) -> bytes:
        return self.body


@dataclass
class Ended:
    agent: str = "main"
    owner: str | None = "main"
    profile: str | None = "openai:main"
    provider: str = "openai"
    status: int = 200
    error: str | None = None
    usage: Tap = NO_TAP


def per_call_ns(call: Callable[[], None], n: int, rounds: int) -> float:
    """The fastest of ``rounds`` of the time per call, in ns: on a shared machine the other
    rounds measure the neighbours too (as ``timeit`` advises)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(n):
            call()
        samples.append((time.perf_counter_ns() - start) / n)
    return min(samples)


def chunk_cost(chunk: bytes, rounds: int) -> tuple[float, float]:
    """(ns per chunk through the tap, ns per chunk through the no-op tap)."""
    tap = Tap(SSE, None, 0)
    return (
        per_call_ns(lambda: tap.feed(chunk), 20_000, rounds),
        per_call_ns(lambda: NO_TAP.feed(chunk), 20_000, rounds),
    )


def stream_cost(rounds: int) -> float:
    """µs for a whole 100-event chat stream with its final usage event, in 8 KiB chunks as a
    transport would hand them over (events cut at arbitrary places)."""
    data = CHAT_CHUNK * 100 + CHAT_LAST
    chunks = [data[i : i + 8192] for i in range(0, len(data), 8192)]

    def one() -> None:
        tap = Tap(SSE, None, 0)
        for c in chunks:
            tap.feed(c)
        assert tap.found().tokens is not None

    return per_call_ns(one, 500, rounds) / 1000


def ends_cost(path: Path, rounds: int) -> tuple[float, float, float]:
    """(µs for observe + feed of a JSON answer + record, reading it, after the answer; µs of
    writer work per request off the loop; rows per second the writer sustains)."""
    rec = Recorder(
        path, clock=lambda: int(time.time() * 1000), retention_ms=86_400_000, metrics=Metrics()
    )
    body = Kept(b'{"model": "gpt-bench", "messages": [' + b'{"role": "user"},' * 50 + b"{}]}")

    def request_path() -> None:
        tap = rec.observe(JSON, body)
        tap.feed(ANSWER)
        rec.record(Ended(usage=tap), 0.01)

    def timed() -> None:
        request_path()
        if len(rec._fresh.requests) >= 1_000:  # under MAX_PENDING, past which rows are dropped
            rec._fresh.requests.clear()

    on_path = per_call_ns(timed, 2_000, rounds) / 1000
    rec._fresh.requests.clear()
    n = 5_000
    for _ in range(n):
        request_path()
    started = time.perf_counter()
    anyio.run(rec.flush)
    writer = (time.perf_counter() - started) / n * 1e6
    rec.close()
    return on_path, writer, 1e6 / writer


def model_cost(rounds: int) -> tuple[float, float]:
    """(µs to find the model of a 512 KiB conversation, µs to parse the body instead)."""
    turn = {"role": "user", "content": "lorem ipsum dolor sit amet " * 40}
    body = json.dumps({"messages": [turn] * 460, "model": "claude-bench"}).encode()
    assert model_of_request(body) == "claude-bench"
    assert len(body) > 500_000
    return (
        per_call_ns(lambda: model_of_request(body), 20, rounds) / 1000,
        per_call_ns(lambda: json.loads(body), 20, rounds) / 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    print("| what | cost | without the tap |")
    print("|---|---|---|")
    for name, chunk in (
        ('OpenAI chat chunk (`"usage": null` in each)', CHAT_CHUNK),
        ("Anthropic `content_block_delta`", ANTHROPIC_CHUNK),
        ("Responses `output_text.delta`", RESPONSES_CHUNK),
    ):
        tapped, bare = chunk_cost(chunk, rounds)
        print(f"| one SSE event, {name}, {len(chunk)} B | {tapped:.0f} ns | {bare:.0f} ns |")
    print(
        f"| a 100-event chat stream + usage event, 8 KiB chunks | {stream_cost(rounds):.1f} µs | |"
    )
    with tempfile.TemporaryDirectory() as tmp:
        on_path, writer, rate = ends_cost(Path(tmp) / "usage.sqlite3", rounds)
    print(
        "| per request: observe + 1 KiB JSON answer + record (the answer read, windows, metrics;"
        f" after its last byte went out) | {on_path:.1f} µs | |"
    )
    print(
        "| writer thread, per request (the insert; off the loop)"
        f" | {writer:.1f} µs ({rate:,.0f} requests/s) | |"
    )
    search, parse = model_cost(rounds)
    print(
        f"| record: the model of a 512 KiB request body | {search:.0f} µs searched"
        f" | {parse:.0f} µs parsed |"
    )


if __name__ == "__main__":
    main()
