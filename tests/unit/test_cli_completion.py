"""Shell completion is click's: ``_VAULTKIT_COMPLETE=bash_source vaultkit`` prints the script
(docs/cli.md); here the completion protocol itself answers for the lazily loaded groups."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from unit.test_ca_support import vaultkit_cmd
from vaultkit.cli import COMMANDS, cli


def _complete(words: str, shell: str = "bash") -> list[str]:
    env = {"_VAULTKIT_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    result = CliRunner().invoke(cli, [], prog_name="vaultkit", env=env)
    assert result.exit_code == 0, result.output
    # bash_complete answers one "type,value" line per candidate.
    return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]


def test_top_level_commands_complete() -> None:
    assert sorted(_complete("vaultkit ")) == sorted(COMMANDS)
    assert _complete("vaultkit se") == ["secrets"]


def test_subcommands_and_group_options_complete() -> None:
    assert "intermediate" in _complete("vaultkit ca ")
    assert {"create", "revoke", "sign"} <= set(_complete("vaultkit ca intermediate "))
    options = _complete("vaultkit ca issue --")
    assert {"--home", "--config", "--json", "--san"} <= set(options)


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"),
                                           ("zsh", "#compdef vaultkit"),
                                           ("fish", "complete --no-files --command vaultkit")])
def test_the_installed_script_prints_each_shells_source(shell: str, marker: str) -> None:
    proc = subprocess.run(vaultkit_cmd(), env={"_VAULTKIT_COMPLETE": f"{shell}_source",
                                               "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout
