"""``vaultkit run -- CMD ARGS``: start a command with its secrets in the environment.

The child is started with :mod:`subprocess` (not ``execve``) so vaultkit can
stay in between: it forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
SIGUSR2 and SIGWINCH to the child and exits with the child's status (128+N
when the child was killed by signal N, as a shell reports it).

vaultkit's own credentials (``VAULT_TOKEN``, ``BAO_TOKEN``, the AppRole
secret id variable, ``VAULTKIT_VAULT_TOKEN``) are removed from the child's
environment unless ``--keep-credentials``: the child gets its secrets, not
the key to every other secret. ``--pristine`` starts from an empty
environment (the secrets only, plus ``PATH`` so the command can be found).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from types import FrameType

import click

from ..errors import ConfigError
from ._common import EXIT_USAGE, handle_errors, load_config
from .secrets import read_spec, with_spec_options

CREDENTIAL_VARS = ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_APPROLE_SECRET_ID", "VAULTKIT_VAULT_TOKEN",
                   "VAULTKIT_VAULT_SECRET_ID_ENV")
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def child_environment(secrets: dict[str, str], *, pristine: bool, keep_credentials: bool,
                      secret_id_env: str | None = None,
                      base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the child (exposed for tests and library users)."""
    parent = dict(os.environ if base is None else base)
    env = {"PATH": parent["PATH"]} if pristine and "PATH" in parent else (
        {} if pristine else parent)
    if not keep_credentials:
        for var in (*CREDENTIAL_VARS, secret_id_env or ""):
            env.pop(var, None)
    env.update(secrets)
    return env


@click.command(context_settings={"ignore_unknown_options": False})
@with_spec_options
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Pass only these secrets (repeatable).")
@click.option("--pristine", is_flag=True, help="Start the child with only the secrets (+PATH).")
@click.option("--keep-credentials", is_flag=True,
              help="Do not strip VAULT_TOKEN and other vaultkit credentials from the child.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@handle_errors
def run(spec_file: str | None, pairs: tuple[str, ...], deadline: float, only: tuple[str, ...],
        pristine: bool, keep_credentials: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND with its secrets in the environment: vaultkit run [OPTIONS] -- CMD ARGS."""
    from ..secrets import load_secrets

    config = load_config()
    spec = read_spec(spec_file, pairs)
    if spec is None:
        from ..secrets.loader import spec_from_config

        spec = spec_from_config(config)[0]
    if only:
        unknown = sorted(set(only) - set(spec))
        if unknown:
            raise ConfigError(f"--only names not in the spec: {', '.join(unknown)}")
        spec = {n: spec[n] for n in only}
    loaded = load_secrets(spec, deadline=deadline, config=config)
    env = child_environment(loaded.as_env(), pristine=pristine,
                            keep_credentials=keep_credentials,
                            secret_id_env=config.vault.secret_id_env)
    program = shutil.which(command[0], path=os.environ.get("PATH")) or command[0]
    try:
        child = subprocess.Popen([program, *command[1:]], env=env)  # noqa: S603 - user's command
    except OSError as exc:
        click.echo(f"vaultkit: cannot start {command[0]!r}: {exc.strerror}", err=True)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else EXIT_USAGE)

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {}
    for name in FORWARDED:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, forward)
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.exit(status if status >= 0 else 128 - status)
