"""Group options where people type them: before or after the subcommand, the later one
winning, with their environment variables, and in every subcommand's ``--help``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from unit.cli_walk import invoke, walk


def _opts(command: click.Command) -> set[str]:
    return {o for p in command.params for o in p.opts}


def test_every_command_accepts_its_groups_options() -> None:
    """Walk the tree: each command takes the options of every group above it."""
    for path, command in walk():
        assert "--config" in _opts(command), path
        if path[0] == "ca":
            assert "--home" in _opts(command), path


@pytest.mark.parametrize("path", [("secrets", "check"), ("ca", "intermediate", "sign"),
                                  ("config", "show")], ids=" ".join)
def test_help_of_a_subcommand_shows_the_group_options(path: tuple[str, ...]) -> None:
    result = invoke([*path, "--help"])
    assert result.exit_code == 0
    assert "--config FILE" in result.output and "VAULTKIT_CONFIG" in result.output
    assert ("--home DIRECTORY" in result.output) == (path[0] == "ca")


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[field]\nkeyset = "file://a.json"\n')
    b.write_text('[field]\nkeyset = "file://b.json"\n')
    return a, b


def _file_of(args: list[str], env: dict[str, str] | None = None) -> str:
    result = invoke([*args], env=env)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["file"])


def test_config_before_or_after_and_the_later_wins(files: tuple[Path, Path]) -> None:
    a, b = (str(f) for f in files)
    assert _file_of(["--config", a, "config", "show", "--json"]) == a
    assert _file_of(["config", "show", "--json", "--config", a]) == a
    assert _file_of(["config", "--config", a, "show", "--json"]) == a
    assert _file_of(["--config", a, "config", "show", "--config", b, "--json"]) == b
    assert _file_of(["--config", b, "config", "--config", a, "show", "--json"]) == a


def test_vaultkit_config_variable_and_the_command_line_over_it(files: tuple[Path, Path]
                                                              ) -> None:
    a, b = (str(f) for f in files)
    assert _file_of(["config", "show", "--json"], env={"VAULTKIT_CONFIG": a}) == a
    assert _file_of(["config", "show", "--json", "--config", b],
                    env={"VAULTKIT_CONFIG": a}) == b
    # The file named on the command line is the one that is read, not only reported.
    shown = invoke(["config", "show", "--config", b], env={"VAULTKIT_CONFIG": a}).stdout
    assert "field.keyset=file://b.json" in shown and "a.json" not in shown


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unit.test_ca_support import build_ca

    return build_ca(tmp_path_factory.mktemp("opts-ca")).home.root_dir


def _lists(args: list[str], env: dict[str, str] | None = None) -> bool:
    """Whether ``ca list`` found the CA (its root is in the inventory)."""
    result = invoke([*args], env=env)
    if result.exit_code != 0:
        return False
    return any(r["kind"] == "root" for r in json.loads(result.stdout))


def test_ca_home_before_or_after_and_the_later_wins(ca_home: Path, tmp_path: Path) -> None:
    empty = str(tmp_path / "empty")
    home = str(ca_home)
    assert _lists(["ca", "--home", home, "list", "--json"])
    assert _lists(["ca", "list", "--json", "--home", home])
    assert _lists(["ca", "--home", empty, "list", "--home", home, "--json"])
    assert not _lists(["ca", "--home", home, "list", "--home", empty, "--json"])


def test_vaultkit_ca_home_variable(ca_home: Path, tmp_path: Path) -> None:
    empty = str(tmp_path / "empty")
    assert _lists(["ca", "list", "--json"], env={"VAULTKIT_CA_HOME": str(ca_home)})
    assert not _lists(["ca", "list", "--json"], env={"VAULTKIT_CA_HOME": empty})
    assert _lists(["ca", "list", "--json", "--home", str(ca_home)],
                  env={"VAULTKIT_CA_HOME": empty})
