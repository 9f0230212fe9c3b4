"""The command line's contract, for every command: usage errors are one line on stderr with a
non-zero exit, every option says what it is for, and ``--version`` answers."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Iterator

import pytest

from sidecar.cli import build_parser, main


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every sub-command's parser, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from parsers(sub)


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """The parser's options, positionals and sub-commands that have no help text."""
    missing = []
    for action in parser._actions:
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
        if isinstance(action, argparse._SubParsersAction):
            names = {choice.dest: choice.help for choice in action._choices_actions}
            missing += [f"{parser.prog} {name}" for name in action.choices if not names.get(name)]
    return missing


def test_every_option_has_help() -> None:
    """Each option, positional and sub-command of every command has a help text."""
    assert [name for p in parsers(build_parser()) for name in undocumented(p)] == []


def test_the_parser_walk_sees_every_command() -> None:
    """The walk above reaches the sub-commands, the fleet actions included."""
    progs = {p.prog for p in parsers(build_parser())}
    assert {"openclaw-sidecar paste-api-key", "openclaw-sidecar fleet push"} <= progs


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["status", "--bogus"], "unrecognized arguments: --bogus"),
        (["serve", "--port", "http"], "argument --port: invalid int value: 'http'"),
        (["paste-api-key"], "the following arguments are required: --provider"),
        (["fleet", "push"], "the following arguments are required: --profile-id"),
        (["import", "gemini-cli"], "invalid choice: 'gemini-cli'"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A usage error is one line on stderr naming the problem and where help is; exit 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("openclaw-sidecar")
    assert names in err
    assert err.rstrip().endswith("--help`)")
    assert "usage:" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints the installed version on stdout and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    version = importlib.metadata.version("openclaw-sidecar")
    assert (exited.value.code, capsys.readouterr()) == (0, (f"openclaw-sidecar {version}\n", ""))
