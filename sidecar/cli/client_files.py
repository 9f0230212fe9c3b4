"""The client files ``wire --apply`` edits: Codex's config.toml, Claude Code's settings.json and
OpenClaw's openclaw.json. The edits are pure (every other setting, comment and key order kept);
``apply`` then writes once, atomically, after a timestamped backup. No secret is ever written,
and a value that looks like a real credential is never replaced (it would end up in the backup).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import json5
import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from sidecar.cli.recipes import PLACEHOLDER, Edit, FileKind
from sidecar.errors import SidecarError
from sidecar.sources.openclaw.files import atomic_write, read_bytes

_PREFIXES = ("sk-", "sk_", "rk-", "sess-", "eyJ", "ghp_", "gho_", "github_pat_", "xai-", "gsk_")
_NOT_SECRET = re.compile(r"placeholder|dummy|unused|fake|example|changeme", re.IGNORECASE)
_TOKENISH = re.compile(r"[A-Za-z0-9._~+/=-]{24,}")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*|\$\{[A-Z][A-Z0-9_]*\}")
NEW_FILE_MODE = 0o600


class ClientFileRefused(SidecarError):
    """``--apply`` will not write this file: it holds a real credential, or cannot be kept."""

    code = "client_file_refused"
    status = 409


@dataclass(frozen=True)
class Change:
    key: str  # dotted
    old: object  # None: not set before


@dataclass(frozen=True)
class Applied:
    path: Path
    backup: Path | None  # None: a new file, or nothing changed
    changes: tuple[Change, ...]


def looks_like_secret(value: object) -> bool:
    """Whether a value looks like a real API key or token (the placeholder, an environment
    variable's name or ``${NAME}``, URLs and words do not)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not text or text == PLACEHOLDER or _NOT_SECRET.search(text) or _ENV_NAME.fullmatch(text):
        return False
    if text.startswith(_PREFIXES) and len(text) >= 12:
        return True
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    return mixed and _TOKENISH.fullmatch(text) is not None


def edit_json(text: str | None, edits: Sequence[Edit], *, name: str) -> tuple[str, list[Change]]:
    """``text`` (a JSON object, or None for a new file) with ``edits`` made; indent 2 and a
    final newline, as OpenClaw and Claude Code write theirs."""
    doc = _json_object(text, name)
    changes = _edit(doc, edits, name)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n", changes


def edit_toml(text: str | None, edits: Sequence[Edit], *, name: str) -> tuple[str, list[Change]]:
    """``text`` (TOML, or None for a new file) with ``edits`` made; comments and layout kept."""
    try:
        doc = tomlkit.parse(text or "")
    except tomlkit.exceptions.ParseError as exc:
        raise ClientFileRefused(f"{name} is not valid TOML ({exc}); fix it first") from exc
    changes = _edit(doc, edits, name)
    return tomlkit.dumps(doc), changes


def _json_object(text: str | None, name: str) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            json5.loads(text)
        except ValueError:
            raise ClientFileRefused(f"{name} is not valid JSON; fix it first") from None
        raise ClientFileRefused(
            f"{name} is JSON5 (comments or trailing commas) that rewriting would lose: set it "
            "with the client's own command shown above instead"
        ) from None
    if not isinstance(doc, dict):
        raise ClientFileRefused(f"{name} does not hold a JSON object; fix it first")
    return doc


def _edit(doc: MutableMapping[str, Any], edits: Sequence[Edit], name: str) -> list[Change]:
    changes: list[Change] = []
    for edit in edits:
        dotted = ".".join(edit.key)
        if looks_like_secret(edit.value):  # a recipe never writes one; this keeps it so
            raise ClientFileRefused(f"refusing to write what looks like a secret at {dotted}")
        parent = _parent(doc, edit.key, name, create=edit.value is not None)
        old = None if parent is None else _plain(parent.get(edit.key[-1]))
        if edit.credential and looks_like_secret(old):
            raise ClientFileRefused(
                f"{name}: {dotted} holds what looks like a real credential; store it in the "
                "sidecar (`openclaw-sidecar paste-api-key` / `paste-token`, from stdin), remove "
                "it from the file, and run this again"
            )
        if parent is None or old == edit.value:
            continue
        if edit.value is None:
            del parent[edit.key[-1]]
        else:
            parent[edit.key[-1]] = edit.value
        changes.append(Change(dotted, old))
    return changes


def _parent(
    doc: MutableMapping[str, Any], key: tuple[str, ...], name: str, *, create: bool
) -> MutableMapping[str, Any] | None:
    """The mapping that holds ``key``'s last part (made on the way when ``create``)."""
    node = doc
    for depth, part in enumerate(key[:-1]):
        child = node.get(part)
        if child is None:
            if not create:
                return None
            super_table = isinstance(doc, tomlkit.TOMLDocument) and depth < len(key) - 2
            child = _new_table(doc, super_table)
            node[part] = child
        if not isinstance(child, MutableMapping):
            where = ".".join(key[: depth + 1])
            raise ClientFileRefused(f"{name}: {where} is not a table/object; fix it first")
        node = child
    return node


def _new_table(doc: MutableMapping[str, Any], super_table: bool) -> MutableMapping[str, Any]:
    if isinstance(doc, tomlkit.TOMLDocument):
        table: Table = tomlkit.table(is_super_table=super_table)
        return table
    return {}


def _plain(value: object) -> object:
    """A tomlkit item as the plain value it stands for."""
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def edited(
    kind: FileKind, text: str | None, edits: Sequence[Edit], name: str
) -> tuple[str, list[Change]]:
    if kind == "codex-config":
        return edit_toml(text, edits, name=name)
    return edit_json(text, edits, name=name)


def apply(path: Path, kind: FileKind, edits: Sequence[Edit], now: datetime) -> Applied:
    """Edit ``path``: a backup ``<name>.bak-<UTC time>`` of what was there (same mode), then the
    new content written atomically with the file's mode (0600 for a new file)."""
    raw = read_bytes(path)
    text = None if raw is None else raw.decode("utf-8")
    new, changes = edited(kind, text, edits, str(path))
    if not changes:
        return Applied(path, None, ())
    mode = NEW_FILE_MODE if raw is None else path.stat().st_mode & 0o777
    backup = None
    if raw is not None:
        backup = path.with_name(f"{path.name}.bak-{now.strftime('%Y%m%dT%H%M%SZ')}")
        _write_backup(backup, raw, mode)
    atomic_write(path, new.encode("utf-8"), mode)
    return Applied(path, backup, tuple(changes))


def _write_backup(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise ClientFileRefused(f"{path} exists already; run again in a second") from None
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, mode)  # the umask narrows what os.open gives
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def shown(changes: Sequence[Change]) -> Mapping[str, str]:
    """What each change replaced, for the report (a credential as "(a value)")."""
    return {c.key: "(new)" if c.old is None else _short(c.old) for c in changes}


def _short(value: object) -> str:
    if looks_like_secret(value) or not isinstance(value, str | int | float | bool):
        return "(a value)"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "…"
