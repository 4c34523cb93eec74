"""The ``vaultkit`` command: a thin, lazily loaded layer over the library.

Each command group lives in its own module and is imported only when it is
invoked, so ``vaultkit --help`` stays fast and imports no SDK.

Exit codes (documented in ``docs/cli.md``):

== ===============================================================
0  success
1  the operation failed (a check failed, a secret could not load)
2  usage error (bad flags or arguments; click's own code)
3  configuration error (bad config, malformed reference)
4  backend error (not found, access denied, unavailable, auth)
5  cryptographic failure (decryption, key unwrap, insecure key file)
== ===============================================================
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__

#: name -> "module:attribute" of each command or group, imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("vaultkit.cli.doctor:doctor", "Report which config, Vault, AWS and keys are reachable."),
    "keys": ("vaultkit.cli.keys:keys", "Key providers: create a local key, check a round trip."),
    "secrets": ("vaultkit.cli.secrets:secrets", "Check, plan and read the secrets a service boots with."),
    "run": ("vaultkit.cli.run:run", "Run a command with its secrets in the environment."),
    "field": ("vaultkit.cli.field:field", "Field encryption: keysets and online re-encryption."),
    "ca": ("vaultkit.cli.ca:ca", "The offline root and the intermediate that issues mTLS certs."),
    "archive": ("vaultkit.cli.archive:archive", "Encrypted zips and expiring share links."),
}


def register(name: str, target: str, help_text: str) -> None:
    """Add a lazily imported command (used by capability modules' CLI registration)."""
    COMMANDS[name] = (target, help_text)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vaultkit")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="VAULTKIT_CONFIG", help="Config file (default: ./vaultkit.toml or "
              "[tool.vaultkit] in ./pyproject.toml).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """vaultkit: secrets at boot, field encryption, an offline CA and expiring exports."""
    ctx.obj = {"config_path": config_path}


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="vaultkit")
