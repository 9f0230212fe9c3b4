"""Resolving SecretRefs (``env``, ``file``, ``exec``) of ``api_key`` and ``token`` profiles,
with the ``secrets.providers`` of ``openclaw.json``. OAuth profiles never take a ref."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sidecar.errors import StoreError
from sidecar.secret import Secret
from sidecar.sources.openclaw.layout import expand_user
from sidecar.sources.openclaw.model import SecretRef

EXEC_TIMEOUT_S = 10.0
MAX_OUTPUT = 64 * 1024


class SecretRefError(StoreError):
    code = "secret_ref_unresolved"
    status = 500


def resolve_ref(
    ref: SecretRef,
    providers: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    home: Path,
) -> Secret:
    """The secret a ref points at; ``SecretRefError`` names the ref, never a value."""
    config = providers.get(ref.provider, {})
    if config and config.get("source") not in (None, ref.source):
        raise SecretRefError(f"secret provider {ref.provider!r} is not of source {ref.source!r}")
    if ref.source == "env":
        return _from_env(ref, environ)
    if ref.source == "file":
        return _from_file(ref, config, home)
    return _from_exec(ref, config, environ)


def _from_env(ref: SecretRef, environ: Mapping[str, str]) -> Secret:
    value = environ.get(ref.id)
    if not value:
        raise SecretRefError(f"environment variable {ref.id} is not set or empty")
    return Secret(value)


def _from_file(ref: SecretRef, config: Mapping[str, Any], home: Path) -> Secret:
    raw_path = config.get("path")
    if not isinstance(raw_path, str):
        raise SecretRefError(f"secrets.providers.{ref.provider}.path is not set in openclaw.json")
    path = expand_user(raw_path, home)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretRefError(f"cannot read secret file {path}: {type(exc).__name__}") from None
    if config.get("mode") == "singleValue" or ref.id == "value":
        return _non_empty(text.strip(), f"secret file {path}")
    return _non_empty(_pointer(_json(text, str(path)), ref.id, str(path)), f"{path}#{ref.id}")


def _from_exec(ref: SecretRef, config: Mapping[str, Any], environ: Mapping[str, str]) -> Secret:
    command = config.get("command")
    if not isinstance(command, str) or not os.path.isabs(command):
        raise SecretRefError(f"secrets.providers.{ref.provider}.command must be an absolute path")
    args = [a for a in config.get("args", []) if isinstance(a, str)]
    pass_env = [e for e in config.get("passEnv", []) if isinstance(e, str)]
    timeout = _timeout_s(config)
    request = json.dumps({"protocolVersion": 1, "provider": ref.provider, "ids": [ref.id]})
    try:
        done = subprocess.run(  # no shell: argv as configured
            [command, *args],
            input=request.encode(),
            capture_output=True,
            timeout=timeout,
            env={k: environ[k] for k in pass_env if k in environ},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SecretRefError(f"secret command {command} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise SecretRefError(f"cannot run secret command {command}: {exc.strerror}") from None
    if done.returncode != 0:
        raise SecretRefError(f"secret command {command} exited with {done.returncode}")
    return _exec_value(ref, done.stdout[:MAX_OUTPUT], bool(config.get("jsonOnly", True)), command)


def _exec_value(ref: SecretRef, stdout: bytes, json_only: bool, command: str) -> Secret:
    text = stdout.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("values"), dict):
        value = doc["values"].get(ref.id)
        if isinstance(value, str) and value:
            return Secret(value)
        raise SecretRefError(f"secret command {command} returned no value for {ref.id!r}")
    if json_only:
        raise SecretRefError(f"secret command {command} did not answer with protocol JSON")
    return _non_empty(text.strip(), f"secret command {command}")


def _timeout_s(config: Mapping[str, Any]) -> float:
    ms = config.get("timeoutMs")
    return ms / 1000 if isinstance(ms, int | float) and ms > 0 else EXEC_TIMEOUT_S


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise SecretRefError(f"secret file {where} is not JSON") from None


def _pointer(doc: Any, pointer: str, where: str) -> str:
    """RFC 6901 JSON pointer."""
    if not pointer.startswith("/"):
        raise SecretRefError(f"secret id {pointer!r} for {where} is not a JSON pointer")
    node = doc
    for part in pointer[1:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise SecretRefError(f"{where} has nothing at {pointer}")
    if not isinstance(node, str):
        raise SecretRefError(f"{where} at {pointer} is not a string")
    return node


def _non_empty(value: str, where: str) -> Secret:
    if not value:
        raise SecretRefError(f"{where} is empty")
    return Secret(value)
