"""A recipe as the text ``wire`` prints: for a person, or (``env``) as a shell snippet to eval."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from sidecar.cli.client_files import edited
from sidecar.cli.recipes import URL_RULE, EnvVar, Recipe

_FILE_NAMES = {
    "codex-config": "Codex's config.toml",
    "claude-settings": "Claude Code's settings.json",
    "openclaw-json": "OpenClaw's openclaw.json",
}


def export_line(var: EnvVar) -> str:
    value = var.value if var.from_file else shlex.quote(var.value)
    return f"export {var.name}={value}"


def _indented(lines: Sequence[str], prefix: str = "  ") -> list[str]:
    return [prefix + line if line else "" for line in lines]


def _numbered(items: Sequence[str]) -> list[str]:
    return [f"  {i}. {item}" for i, item in enumerate(items, 1)]


def _same(recipe: Recipe) -> bool:
    """Whether the file carries every variable of the environment (they are alternatives)."""
    in_file = {edit.key[-1] for edit in recipe.file.edits} if recipe.file else set()
    return all(var.name in in_file for var in recipe.env)


def render(recipe: Recipe, *, origin: str, file_path: Path | None, warnings: Sequence[str]) -> str:
    """The recipe for a person: what to set (environment, file, or the client's own command),
    how to check it, and the client URL rule."""
    lines = [f"{recipe.title}, through the sidecar at {origin}", ""]
    lines += [f"warning: {w}" for w in warnings] + ([""] if warnings else [])
    if recipe.env:
        where = "In the environment of the client" + (
            ", or in the file below" if _same(recipe) else ""
        )
        lines += [f"{where}:", *_indented([export_line(v) for v in recipe.env]), ""]
    if recipe.file is not None:
        snippet, _ = edited(recipe.file.kind, None, recipe.file.edits, "snippet")
        name = _FILE_NAMES[recipe.file.kind]
        lines += [
            f"In {name}, {file_path} (--apply writes it there, keeping every other setting, "
            "after a backup):",
            "",
            *_indented(snippet.rstrip("\n").splitlines()),
            "",
        ]
    if recipe.commands:
        lines += ["Or:", *_indented(recipe.commands), ""]
    lines += ["Then check:", *_numbered(recipe.checks), ""]
    lines += [*[f"- {note}" for note in recipe.notes], "", URL_RULE]
    return "\n".join(lines) + "\n"


def render_shell(recipe: Recipe, *, origin: str, command: str) -> str:
    """``env``: lines to ``eval``; everything but the exports is a comment."""
    lines = [f"# {recipe.title}, through the sidecar at {origin}", f'# eval "$({command})"']
    lines += [export_line(v) for v in recipe.env]
    lines += [f"# check: {check}" for check in recipe.checks]
    lines += [f"# {note}" for note in recipe.notes] + [f"# {URL_RULE}"]
    return "\n".join(lines) + "\n"
