"""The root ``vaultkit`` click group; each command group is imported on first use.

Group options go where people type them. ``vault`` and ``step`` accept flags after the
subcommand, so every option of a group (``--config`` on the root, ``--home`` on ``ca``, and
any option a group adds later) is also accepted by each command below it, with the same
meaning: ``vaultkit --config f secrets check`` and ``vaultkit secrets check --config f`` are
the same, and when both are given the later one wins. When a group is loaded, the root
walks its tree once and gives each command a copy of the options of the groups above it
(:func:`inherit_group_options`). The convention the copies rely on: a group's callback keeps
its option in the root context's ``obj`` under ``<group>_<option>`` (``ca_home``), the
root's under the option's own name (``config_path``); a copy given on the command line
writes the same key, after the group's callback ran.

Errors leave through one door. A :class:`~vaultkit.errors.VaultkitError` that a command did
not convert already is turned into its documented exit code here, and with ``--json``
click's own usage errors become a JSON object on stderr as well.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from typing import IO, Any, cast

import click
from click.core import ParameterSource

from .. import __version__
from ..errors import VaultkitError

# ._common (and through it the config loader) is imported on the error paths only, so that
# `vaultkit --help` stays as light as it was.
EXIT_USAGE = 2

#: name -> "module:attribute" of each command or group, imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("vaultkit.cli.doctor:doctor", "Report which config, Vault, AWS and keys are reachable."),
    "keys": ("vaultkit.cli.keys:keys", "Key providers: create a local key, check a round trip."),
    "secrets": ("vaultkit.cli.secrets:secrets", "Check, plan and read the secrets a service boots with."),
    "run": ("vaultkit.cli.run:run", "Run a command with its secrets in the environment."),
    "field": ("vaultkit.cli.field:field", "Field encryption: keysets and online re-encryption."),
    "ca": ("vaultkit.cli.ca:ca", "The offline root and the intermediate that issues mTLS certs."),
    "archive": ("vaultkit.cli.archive:archive", "Encrypted zips and expiring share links."),
    "config": ("vaultkit.cli.config:config", "Show the effective settings and where each one comes from."),
}

#: Whether this invocation's argv (before any ``--``) holds ``--json``; click's usage errors
#: happen before the command's parameters exist, so the raw arguments are all there is.
_JSON_ARGV: ContextVar[bool] = ContextVar("vaultkit_json_argv", default=False)


class _InheritedOption(click.Option):
    """A copy of a group's option on a command below it (see the module docstring)."""

    obj_key: str

    @classmethod
    def of(cls, original: click.Option, obj_key: str) -> _InheritedOption:
        option = cast(_InheritedOption, copy.copy(original))
        option.__class__ = cls
        option.obj_key = obj_key
        option.name = f"inherited_{obj_key}"
        # No default, no envvar, no prompt: only a value typed here may override what the
        # group already has (from its own option, its envvar or its default).
        option.envvar = None
        option.default = None
        option.required = False
        option.prompt = None
        option.expose_value = False
        option.callback = option._store
        return option

    def _store(self, ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            root = ctx.find_root()
            obj = dict(root.obj or {})
            obj[self.obj_key] = value
            obj.pop("config", None)  # a cached Config was read with the earlier value
            root.obj = obj


def _group_options(group: click.Group, *, is_root: bool) -> list[tuple[str, click.Option]]:
    own = []
    for param in group.params:
        if (isinstance(param, click.Option) and not isinstance(param, _InheritedOption)
                and not param.is_eager and param.expose_value and param.name):
            own.append((param.name if is_root else f"{group.name}_{param.name}", param))
    return own


def inherit_group_options(command: click.Command,
                          inherited: Sequence[tuple[str, click.Option]]) -> None:
    """Give ``command`` (and, for a group, everything below it) copies of ``inherited``
    and of its own group options. Idempotent."""
    have = {p.name for p in command.params}
    taken = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for key, original in inherited:
        name = f"inherited_{key}"
        if name in have or taken & {*original.opts, *original.secondary_opts}:
            continue
        command.params.append(_InheritedOption.of(original, key))
    if isinstance(command, click.Group):
        below = [*inherited, *_group_options(command, is_root=False)]
        for sub in command.commands.values():
            inherit_group_options(sub, below)


def _argv_wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    if "--" in args:
        args = args[:args.index("--")]
    return "--json" in args


class _JsonUsageError(click.UsageError):
    """A click usage error under ``--json``: one ``{"error": {...}}`` object on stderr."""

    def __init__(self, original: click.UsageError) -> None:
        super().__init__(original.format_message(), ctx=original.ctx)
        self.original = original
        # A command may report usage with its own code (vaultkit run: 122).
        object.__setattr__(self, "exit_code", getattr(original, "exit_code", EXIT_USAGE))

    def show(self, file: IO[Any] | None = None) -> None:
        from ._common import error_document

        click.echo(json.dumps(error_document(self.original, self.exit_code), sort_keys=True),
                   err=True)


class LazyGroup(click.Group):
    """The root group: lazy subcommands, inherited group options, one error exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        inherit_group_options(command, _group_options(self, is_root=True))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args: Sequence[str] | None = None, *pargs: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        token = _JSON_ARGV.set(_argv_wants_json(argv))
        try:
            return super().main(argv, *pargs, **kwargs)
        finally:
            _JSON_ARGV.reset(token)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise self._converted(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise self._converted(exc) from exc
        except VaultkitError as exc:
            # The safety net: a command without @handle_errors still exits with its code.
            from ._common import VaultkitClickError

            raise VaultkitClickError(exc, as_json=_JSON_ARGV.get()) from exc

    @staticmethod
    def _converted(exc: click.UsageError) -> click.UsageError:
        if _JSON_ARGV.get() and not isinstance(exc, _JsonUsageError):
            return _JsonUsageError(exc)
        return exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vaultkit")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="VAULTKIT_CONFIG", help="Config file (default: ./vaultkit.toml or "
              "[tool.vaultkit] in ./pyproject.toml; env VAULTKIT_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """vaultkit: secrets at boot, field encryption, an offline CA and expiring exports."""
    ctx.obj = {**(ctx.obj or {}), "config_path": config_path}
