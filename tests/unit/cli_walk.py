"""Helpers for the CLI-wide tests (no tests here): the command tree, walked the way a user
reaches it (lazily, through the root group), arguments that get past click's parser, and
the JSON schema of a ``--json`` failure."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from click.testing import CliRunner, Result

from vaultkit.cli import cli

#: ``{"error": {...}}`` on stderr: the documented shape, nothing else.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "category", "message", "reference", "exit_code"],
        "properties": {
            "type": {"type": "string", "minLength": 1},
            "category": {"type": "string", "minLength": 1},
            "message": {"type": "string", "minLength": 1},
            "reference": {"type": ["string", "null"]},
            "exit_code": {"type": "integer", "minimum": 1, "maximum": 255},
        },
    }},
}

#: ``vaultkit run`` reports its own failures as the common code + 120 (docs/cli.md).
CODE_OFFSET: dict[str, int] = {"run": 120}


def expected(path: Sequence[str], code: int) -> int:
    return code + CODE_OFFSET.get(path[0], 0)


def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder and vaultkit home; local keys in files; no AWS identity
    (``doctor`` must not ask the real AWS who we are)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULTKIT_HOME", str(tmp_path / "vk-home"))
    monkeypatch.setenv("VAULTKIT_LOCAL_KEYS_STORE", "file")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    return tmp_path


def walk(group: click.Group = cli, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command below ``group`` (groups included), loading each lazily."""
    ctx = click.Context(group, info_name=path[-1] if path else "vaultkit")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


def leaves() -> list[tuple[str, ...]]:
    return [p for p, c in walk() if not isinstance(c, click.Group)]


def groups() -> list[tuple[str, ...]]:
    return [p for p, c in walk() if isinstance(c, click.Group)]


def command_at(path: Sequence[str]) -> click.Command:
    return dict(walk())[tuple(path)]


def takes_json(path: Sequence[str]) -> bool:
    return any(p.name == "as_json" for p in command_at(path).params)


def _value_for(param: click.Parameter, work: Path) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        return str(kind.min if kind.min is not None else 1)
    if isinstance(kind, click.Path):
        if kind.exists:
            target = work / ("input-dir" if not kind.file_okay else "input.json")
            return str(target)
        return str(work / ("out-dir" if not kind.file_okay else f"out-{param.name}.bin"))
    if param.name == "command":  # vaultkit run's child
        return "true"
    if param.name in ("uri", "kek"):
        return "memory://walk"
    if param.name in ("store_uri",):
        return f"file://{work / 'store'}"
    if param.name == "columns":
        return "users.email"
    return "00000001" if param.name in ("key_id",) else "walk"


def minimal_args(path: Sequence[str], work: Path) -> list[str]:
    """Required options, then ``--``, then required arguments: enough for click to parse."""
    (work / "input-dir").mkdir(exist_ok=True)
    (work / "input.json").write_text(json.dumps({"A": "x"}))
    options: list[str] = []
    arguments: list[str] = []
    for param in command_at(path).params:
        if not param.required:
            continue
        if isinstance(param, click.Option):
            options += [param.opts[0]] if param.is_flag else [param.opts[0],
                                                             _value_for(param, work)]
        else:
            arguments.append(_value_for(param, work))
    return [*options, "--", *arguments] if arguments else options


def invoke(args: Sequence[str], *, env: Mapping[str, str | None] | None = None,
           input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def json_error(result: Result) -> dict[str, Any]:
    """The one JSON object a ``--json`` failure prints on stderr, checked against the schema."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    doc = json.loads(lines[0])
    jsonschema.validate(doc, ERROR_SCHEMA)
    assert doc["error"]["exit_code"] == result.exit_code, doc
    return doc


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
