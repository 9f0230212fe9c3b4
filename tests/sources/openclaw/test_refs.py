"""SecretRefs (store spec §3): env, file (JSON pointer or single value) and exec providers;
failures name the ref and never the secret."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from sidecar.errors import StoreError
from sidecar.secret import Secret
from sidecar.sources.openclaw.model import SecretRef
from sidecar.sources.openclaw.refs import SecretRefError, resolve_ref

CANARY = "sk-CANARY-refs-7a1c9e0b3d5f"


def resolve(ref, providers=None, environ=None, home="/nonexistent-home"):
    from pathlib import Path

    return resolve_ref(ref, providers or {}, environ or {}, Path(home))


def test_env_ref():
    """An env ref reads the variable its id names."""
    assert resolve(
        SecretRef("env", "default", "OPENAI_API_KEY"), environ={"OPENAI_API_KEY": CANARY}
    ) == Secret(CANARY)


@pytest.mark.parametrize("environ", [{}, {"OPENAI_API_KEY": ""}], ids=["unset", "empty"])
def test_env_ref_missing(environ):
    """An unset or empty variable is an error naming the variable."""
    with pytest.raises(SecretRefError) as info:
        resolve(SecretRef("env", "default", "OPENAI_API_KEY"), environ=environ)
    assert ("OPENAI_API_KEY" in info.value.message, isinstance(info.value, StoreError)) == (
        True,
        True,
    )


SECRETS = {
    "openai": {"key": CANARY},
    "a/b": {"c~d": "escaped-" + CANARY},
    "list": ["zero", "one-" + CANARY],
    "num": 5,
}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/openai/key", CANARY),
        ("/a~1b/c~0d", "escaped-" + CANARY),
        ("/list/1", "one-" + CANARY),
    ],
    ids=["nested", "escapes", "array-index"],
)
def test_file_ref_json_pointer(tmp_path, pointer, value):
    """A file ref's id is an RFC 6901 pointer into the JSON file (~1 is '/', ~0 is '~')."""
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(SECRETS))
    providers = {"filemain": {"source": "file", "path": str(path)}}
    assert resolve(SecretRef("file", "filemain", pointer), providers) == Secret(value)


@pytest.mark.parametrize("how", ["singleValue", "id-value"])
def test_file_ref_single_value(tmp_path, how):
    """A plain file (mode singleValue, or id 'value') is the secret, without its newline."""
    path = tmp_path / "key.txt"
    path.write_text(CANARY + "\n")
    config = {"source": "file", "path": str(path)}
    if how == "singleValue":
        config["mode"] = "singleValue"
    ref = SecretRef("file", "plain", "value" if how == "id-value" else "/ignored")
    assert resolve(ref, {"plain": config}) == Secret(CANARY)


def test_file_ref_path_expands_tilde(tmp_path):
    """A '~/' path in the provider config is under OpenClaw's home."""
    (tmp_path / "key.txt").write_text(CANARY)
    providers = {"p": {"source": "file", "path": "~/key.txt", "mode": "singleValue"}}
    assert resolve(SecretRef("file", "p", "value"), providers, home=str(tmp_path)) == Secret(CANARY)


def assert_clean(info):
    assert (CANARY in str(info.value), CANARY in repr(info.value)) == (False, False)


@pytest.mark.parametrize(
    ("pointer", "content"),
    [
        ("/openai/missing", json.dumps(SECRETS)),
        ("/num", json.dumps(SECRETS)),
        ("/openai", json.dumps(SECRETS)),
        ("/list/9", json.dumps(SECRETS)),
        ("openai/key", json.dumps(SECRETS)),
        ("/openai/key", '{"openai": {"key": "' + CANARY + '"'),
    ],
    ids=["missing", "number", "object", "index-out-of-range", "not-a-pointer", "not-json"],
)
def test_file_ref_errors_do_not_leak(tmp_path, pointer, content):
    """A pointer that finds no string, or a file that is not JSON, is an error without secrets."""
    path = tmp_path / "secrets.json"
    path.write_text(content)
    with pytest.raises(SecretRefError) as info:
        resolve(SecretRef("file", "f", pointer), {"f": {"source": "file", "path": str(path)}})
    assert_clean(info)


@pytest.mark.parametrize(
    "providers",
    [{}, {"f": {"source": "file"}}, {"f": {"source": "file", "path": "/nonexistent/secrets.json"}}],
    ids=["no-provider", "no-path", "missing-file"],
)
def test_file_ref_misconfigured(providers):
    """A file ref without a readable file is an error naming the provider or file."""
    with pytest.raises(SecretRefError):
        resolve(SecretRef("file", "f", "/a"), providers)


def test_ref_source_must_match_the_provider():
    """A ref of source exec pointing at a file provider is refused."""
    with pytest.raises(SecretRefError):
        resolve(SecretRef("exec", "f", "x"), {"f": {"source": "file", "path": "/x"}})


@pytest.fixture
def script(tmp_path):
    """Write an executable ``#!/usr/bin/env python3`` script; PATH finds this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")

    def make(body: str):
        path = tmp_path / "resolver"
        path.write_text("#!/usr/bin/env python3\n" + textwrap.dedent(body))
        path.chmod(0o700)
        return path

    make.environ = {"PATH": str(bin_dir)}
    return make


PROTOCOL = f"""
import json, os, sys
request = json.load(sys.stdin)
with open(os.environ["SEEN"], "w") as f:
    json.dump(request, f)
print(json.dumps({{"protocolVersion": 1, "values": {{i: "{CANARY}" for i in request["ids"]}}}}))
"""


def test_exec_ref_speaks_the_protocol(script, tmp_path):
    """The command gets {protocolVersion, provider, ids} on stdin and answers with values."""
    command = script(PROTOCOL)
    seen = tmp_path / "seen.json"
    providers = {"vault": {"source": "exec", "command": str(command), "passEnv": ["PATH", "SEEN"]}}
    environ = {**script.environ, "SEEN": str(seen), "NOT_PASSED": "x"}
    got = resolve(SecretRef("exec", "vault", "openai/key"), providers, environ)
    assert (got, json.loads(seen.read_text())) == (
        Secret(CANARY),
        {"protocolVersion": 1, "provider": "vault", "ids": ["openai/key"]},
    )


def test_exec_ref_passes_only_pass_env(script):
    """The command's environment holds only the variables passEnv names."""
    command = script(
        """
        import json, os
        names = sorted(k for k in os.environ if k != "LC_CTYPE")
        print(json.dumps({"values": {"k": ",".join(names)}}))
        """
    )
    providers = {"v": {"source": "exec", "command": str(command), "passEnv": ["PATH", "KEEP"]}}
    environ = {**script.environ, "KEEP": "1", "DROP": "2"}
    assert resolve(SecretRef("exec", "v", "k"), providers, environ).reveal() == "KEEP,PATH"


def test_exec_ref_raw_output_when_not_json_only(script):
    """With jsonOnly false, plain stdout (trimmed) is the secret."""
    command = script(f'print("  {CANARY}  ")\n')
    providers = {
        "raw": {"source": "exec", "command": str(command), "jsonOnly": False, "passEnv": ["PATH"]}
    }
    assert resolve(SecretRef("exec", "raw", "anything"), providers, script.environ) == Secret(
        CANARY
    )


@pytest.mark.parametrize(
    ("body", "config"),
    [
        (f'print("{CANARY}")\n', {}),
        (f'import json\nprint(json.dumps({{"values": {{"other": "{CANARY}"}}}}))\n', {}),
        (f'import sys\nprint("{CANARY}", file=sys.stderr)\nprint("{CANARY}")\nsys.exit(3)\n', {}),
        ("import time\ntime.sleep(30)\n", {"timeoutMs": 300}),
        ('print("")\n', {"jsonOnly": False}),
    ],
    ids=["raw-but-json-only", "wrong-id", "exit-code", "timeout", "empty-output"],
)
def test_exec_ref_errors_do_not_leak(script, body, config):
    """A failing, silent, slow or off-protocol command is an error that shows no secret."""
    command = script(body)
    providers = {"v": {"source": "exec", "command": str(command), "passEnv": ["PATH"], **config}}
    with pytest.raises(SecretRefError) as info:
        resolve(SecretRef("exec", "v", "k"), providers, script.environ)
    assert_clean(info)


@pytest.mark.parametrize("command", [None, "vault", "./vault"], ids=["none", "bare", "relative"])
def test_exec_command_must_be_absolute(command):
    """No PATH lookup and no relative commands: the command is an absolute path."""
    config = {"source": "exec"} if command is None else {"source": "exec", "command": command}
    with pytest.raises(SecretRefError):
        resolve(SecretRef("exec", "v", "k"), {"v": config})
