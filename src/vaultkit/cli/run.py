"""``vaultkit run -- CMD ARGS``: start a command with its secrets, and keep them fresh.

When something needs looking after (a lease to renew, a secret to re-read every
``--refresh`` seconds), vaultkit stays as the child's parent and supervises it
(:mod:`vaultkit.secrets.supervisor`): renewals, restarts or a signal when a
value changes, crash restarts with backoff, a graceful stop that revokes the
leases. When nothing does, it ``exec``\\ s the command, so no parent is left
holding credentials.

Exit codes: the child's own code passes through (0-119, and 128+N when it was
killed by signal N). ``run``'s own failures are the common table's code plus
120: 121 no spec, 122 usage, 123 configuration / bad reference, 124 backend
(and a lease that went stale), 125 crypto, 126 command not executable, 127
command not found. See ``docs/cli.md``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from ..errors import ConfigError, VaultkitError
from ..secrets.child_env import CREDENTIAL_VARS, child_environment
from ._common import EXIT_BACKEND, EXIT_CONFIG, EXIT_CRYPTO, exit_code_for, load_config
from .secrets import resolve_spec, with_spec_options

#: run's own failures: the common code + 120, clear of the codes children usually use.
RUN_OFFSET = 120
EXIT_NO_SPEC = 121
EXIT_RUN_USAGE = 122
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

DEFAULTS = {"refresh": 300.0, "on_change": "restart", "grace": 10.0, "max_restarts": 5,
            "restart_backoff": 1.0, "max_staleness": 3600.0}

F = TypeVar("F", bound=Callable[..., Any])
#: A number of seconds: a negative one is a usage error (exit 122), not a surprise.
_SECONDS = click.FloatRange(min=0)

__all__ = ["CREDENTIAL_VARS", "child_environment", "run", "run_exit_code"]


def run_exit_code(exc: VaultkitError) -> int:
    """120 + the common table's code (3, 4 or 5); any other failure of run's own is 124."""
    from ..secrets.discovery import SpecNotFoundError

    if isinstance(exc, SpecNotFoundError):
        return EXIT_NO_SPEC
    code = exit_code_for(exc)
    # 1 ("the operation failed") + 120 would read as "no spec": report it as a backend failure.
    return RUN_OFFSET + (code if code in (EXIT_CONFIG, EXIT_BACKEND, EXIT_CRYPTO)
                         else EXIT_BACKEND)


def _run_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VaultkitError as exc:
            click.echo(f"vaultkit: error: {exc}", err=True)
            sys.exit(run_exit_code(exc))

    return cast(F, wrapper)


class _RunCommand(click.Command):
    """Usage errors in run's own options exit 122, not 2 (which a child may use)."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            # click declares exit_code as a ClassVar; this instance needs its own.
            object.__setattr__(exc, "exit_code", EXIT_RUN_USAGE)
            raise


def _setting(value: Any, table: Any, key: str) -> Any:
    if value is not None:
        return value
    if key in table:
        return table[key]
    return DEFAULTS[key]


@click.command(cls=_RunCommand)
@with_spec_options
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Pass only these secrets (repeatable).")
@click.option("--pristine", is_flag=True, help="Start the child with only the secrets (+PATH).")
@click.option("--keep-credentials", is_flag=True,
              help="Do not strip vaultkit's Vault/AWS credentials and passphrases from the child.")
@click.option("--refresh", type=_SECONDS, default=None, metavar="SECONDS",
              help="Re-read static secrets this often; 0 = never ([run] refresh, default 300).")
@click.option("--on-change", default=None, metavar="restart|signal:NAME|none",
              help="When a value the child got changes ([run] on_change, default restart).")
@click.option("--grace", type=_SECONDS, default=None, metavar="SECONDS",
              help="Between SIGTERM and SIGKILL when stopping the child (default 10).")
@click.option("--no-restart", is_flag=True,
              help="Exit with the child's code when it fails instead of restarting it.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=None,
              help="Crash restarts in a row before giving up (default 5).")
@click.option("--restart-backoff", type=_SECONDS, default=None, metavar="SECONDS",
              help="First pause before a crash restart; doubles, capped at 30 s (default 1).")
@click.option("--max-staleness", type=_SECONDS, default=None, metavar="SECONDS",
              help="Stop the child when a value could not be refreshed this long; 0 = never "
                   "(default 3600).")
@click.option("--keep-leases", is_flag=True, help="Do not revoke the leases when vaultkit ends.")
@click.option("--supervise", is_flag=True,
              help="Stay as the child's parent even with nothing to renew (crash restarts).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@_run_errors
def run(spec_file: str | None, pairs: tuple[str, ...], deadline: float, only: tuple[str, ...],
        pristine: bool, keep_credentials: bool, refresh: float | None, on_change: str | None,
        grace: float | None, no_restart: bool, max_restarts: int | None,
        restart_backoff: float | None, max_staleness: float | None, keep_leases: bool,
        supervise: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND with its secrets in the environment: vaultkit run [OPTIONS] -- CMD ARGS."""
    from ..secrets import load_secrets
    from ..secrets.supervisor import (
        Supervisor,
        SupervisorPolicy,
        needs_supervision,
        parse_on_change,
        resolve_command,
    )

    load_config()  # a broken --config is a configuration error (123) before anything else
    spec, options, config, _ = resolve_spec(spec_file, pairs)
    table = config.section("run")
    policy = SupervisorPolicy(
        on_change=str(_setting(on_change, table, "on_change")),
        grace=float(_setting(grace, table, "grace")),
        refresh=float(_setting(refresh, table, "refresh")) or None,
        max_staleness=float(_setting(max_staleness, table, "max_staleness")) or None,
        restart_on_crash=not no_restart,
        max_restarts=int(_setting(max_restarts, table, "max_restarts")),
        backoff=float(_setting(restart_backoff, table, "restart_backoff")),
        keep_leases=keep_leases,
    )
    parse_on_change(policy.on_change)  # a bad --on-change fails before anything is fetched
    if only:
        unknown = sorted(set(only) - set(spec))
        if unknown:
            raise ConfigError(f"--only names not in the spec: {', '.join(unknown)}")
        spec = {n: spec[n] for n in only}
    loaded = load_secrets(spec, deadline=deadline, config=config, options=options)

    def environment(values: dict[str, str]) -> dict[str, str]:
        return child_environment(values, pristine=pristine, keep_credentials=keep_credentials,
                                 secret_id_env=config.vault.secret_id_env)

    first_env = environment(loaded.as_env())
    try:
        program = resolve_command(command, first_env)
    except FileNotFoundError:
        click.echo(f"vaultkit: {command[0]}: command not found", err=True)
        sys.exit(EXIT_NOT_FOUND)
    if not os.access(program, os.X_OK) or os.path.isdir(program):
        if not os.path.exists(program):
            click.echo(f"vaultkit: {command[0]}: command not found", err=True)
            sys.exit(EXIT_NOT_FOUND)
        click.echo(f"vaultkit: {command[0]}: cannot execute (permission denied)", err=True)
        sys.exit(EXIT_NOT_EXECUTABLE)
    argv = [program, *command[1:]]
    if not supervise and not needs_supervision(loaded, policy):
        _exec(argv, first_env)
    from ..secrets.child_env import make_non_dumpable

    make_non_dumpable()
    leases = len(loaded.leases)
    click.echo(f"vaultkit: supervising {command[0]}: {len(loaded)} secret(s), {leases} "
               f"lease(s), refresh {policy.refresh or 0:g}s, on change: {policy.on_change}",
               err=True)
    supervisor = Supervisor(loaded, argv, policy, environment=environment)
    try:
        code = supervisor.run()
    except OSError as exc:  # the command vanished or lost its x bit between restarts
        click.echo(f"vaultkit: cannot start {command[0]!r}: {exc.strerror}", err=True)
        code = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE
    sys.exit(code)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    """Replace vaultkit by the command: nothing left to supervise, no parent holding tokens."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, env)  # noqa: S606 - the user's command, by design
    except OSError as exc:
        click.echo(f"vaultkit: cannot execute {argv[0]!r}: {exc.strerror}", err=True)
        sys.exit(EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE)
