"""Tests for sidecar.providers.comfy: Comfy Cloud's key written into a workflow submission, as
OpenClaw writes it (``extra_data.api_key_comfy_org``), and nothing else changed."""

from __future__ import annotations

import json

import pytest

from sidecar.providers.comfy import submission_with_key

KEY = "comfyui-0123456789abcdef"
WORKFLOW = {"3": {"class_type": "KSampler", "inputs": {"seed": 5, "cfg": 7.5, "text": "猫"}}}
KEYED = {"prompt": WORKFLOW, "extra_data": {"api_key_comfy_org": KEY}}
PNGINFO = {"extra_pnginfo": {"workflow": {"nodes": []}}}


def submission(**fields: object) -> bytes:
    return json.dumps({"prompt": WORKFLOW, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # OpenClaw's own submission shape: {prompt, extra_data: {api_key_comfy_org}}.
        (submission(), KEYED),
        (submission(extra_data=None), KEYED),
        # The client's placeholder is replaced; its other fields stay, in order.
        (
            submission(client_id="c1", extra_data={"api_key_comfy_org": "placeholder", "x": 1}),
            {"prompt": WORKFLOW, "client_id": "c1",
             "extra_data": {"api_key_comfy_org": KEY, "x": 1}},
        ),
        (
            submission(extra_data=PNGINFO),
            {"prompt": WORKFLOW, "extra_data": {**PNGINFO, "api_key_comfy_org": KEY}},
        ),
    ],
)  # fmt: skip
def test_the_key_goes_into_extra_data(body: bytes, expected: dict[str, object]) -> None:
    """extra_data.api_key_comfy_org holds the key; the rest of the document is as sent."""
    written = submission_with_key("/api/prompt", body, KEY)
    assert written is not None
    assert json.loads(written) == expected
    assert written.decode("utf-8").count(KEY) == 1


def test_the_document_is_written_back_compactly_as_utf_8() -> None:
    """The same document, compact: non-ASCII text stays as UTF-8, numbers as they were."""
    expected = (
        '{"prompt":{"3":{"class_type":"KSampler","inputs":{"seed":5,"cfg":7.5,"text":"猫"}}},'
        f'"extra_data":{{"api_key_comfy_org":"{KEY}"}}}}'
    )
    assert submission_with_key("/api/prompt", submission(), KEY) == expected.encode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # Another endpoint: uploads, the queue, the history, a local ComfyUI's /prompt.
        ("/api/upload/image", submission()),
        ("/api/history_v2/p1", None),
        ("/prompt", submission()),
        # A body the proxy does not hold, or one that is not a submission it can write back.
        ("/api/prompt", None),
        ("/api/prompt", b"not json"),
        ("/api/prompt", b"[1, 2]"),
        ("/api/prompt", submission(extra_data="nope")),
        ("/api/prompt", b'{"prompt": {}, "seed": NaN}'),
        ("/api/prompt", b'{"prompt": {}, "seed": 1e400}'),
        ("/api/prompt", b'{"prompt": {"t": "\\ud800"}}'),
    ],
)
def test_anything_else_is_sent_as_it_came(path: str, body: bytes | None) -> None:
    """Only a workflow submission's body is rewritten, and only one that can be written back
    faithfully; anything else goes as it came (None)."""
    assert submission_with_key(path, body, KEY) is None
