"""The root ``vaultkit`` click group; each command group is imported on first use."""

from __future__ import annotations

import importlib

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
