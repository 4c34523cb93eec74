"""``vaultkit.cli.main``: the intermediate key's KDF starts before click loads, and the GC policy."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from unit.test_ca_support import CA_PW, TestCA, build_ca, run_vaultkit
from vaultkit.cli import prestart


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return build_ca(tmp_path_factory.mktemp("prestart"))


@pytest.fixture
def gc_restored() -> Iterator[None]:
    """main() ends with gc.freeze(): give this test process its collector back."""
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()


@pytest.mark.parametrize(("argv", "expected"), [
    (["ca", "issue", "web"], (None, None)),
    (["ca", "--home", "/srv/pki", "issue", "web", "--san", "DNS:x"], (None, "/srv/pki")),
    (["ca", "--home=/srv/pki", "renew", "web"], (None, "/srv/pki")),
    (["--config", "vk.toml", "ca", "issue", "web"], ("vk.toml", None)),
    (["--config=vk.toml", "ca", "--home", "h", "issue"], ("vk.toml", "h")),
])
def test_parse_recognises_issue_and_renew(argv: list[str], expected: tuple[str | None, str | None]
                                          ) -> None:
    assert prestart.parse(argv) == expected


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["ca"], ["ca", "--help"], ["ca", "list"], ["ca", "revoke", "web"],
    ["ca", "--home"], ["ca", "--home", "h", "--help", "issue"], ["--config"],
    ["--version", "ca", "issue"], ["-h", "ca", "issue"], ["keys", "issue"],
    ["ca", "intermediate", "sign"], ["ca", "--homes", "h", "issue"],
])
def test_parse_ignores_everything_else(argv: list[str]) -> None:
    assert prestart.parse(argv) is None


def test_prestart_starts_the_kdf_before_click_and_x509_load(test_ca: TestCA) -> None:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from vaultkit.cli import prestart\n"
        f"prestart.prestart(['ca', '--home', {str(test_ca.home.root_dir)!r}, 'issue', 'x'])\n"
        "loaded = sorted(m for m in ('click', 'cryptography.x509', 'dataclasses', 'sqlite3',\n"
        "                            'vaultkit.config', 'vaultkit.ca.authority') if m in sys.modules)\n"
        f"pending = prestart.take(Path({str(test_ca.home.intermediate_key)!r}))\n"
        "print(json.dumps({'loaded': loaded, 'started': pending is not None,\n"
        "                  'again': prestart.take(pending.path) is not None}))\n"
    )
    env = {**os.environ, "VAULTKIT_CA_PASSPHRASE": CA_PW}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert json.loads(out.stdout) == {"loaded": [], "started": True, "again": False}


def test_prestart_needs_the_passphrase_in_the_environment(
        test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULTKIT_CA_PASSPHRASE", raising=False)
    prestart.prestart(["ca", "--home", str(test_ca.home.root_dir), "issue", "x"])
    assert prestart.take(test_ca.home.intermediate_key) is None


def test_home_from_the_environment_and_from_the_config(
        test_ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTKIT_CA_PASSPHRASE", CA_PW)
    key = test_ca.home.intermediate_key
    monkeypatch.setenv("VAULTKIT_CA_HOME", str(test_ca.home.root_dir))
    prestart.prestart(["ca", "issue", "x"])
    pending = prestart.take(key)
    assert pending is not None
    pending.key()  # let the thread finish
    monkeypatch.delenv("VAULTKIT_CA_HOME")
    config = tmp_path / "vaultkit.toml"
    config.write_text(f'[ca]\nhome = "{test_ca.home.root_dir}"\n')
    prestart.prestart(["--config", str(config), "ca", "renew", "x"])
    pending = prestart.take(key)
    assert pending is not None
    pending.key()


def test_main_signs_with_the_prestarted_key(test_ca: TestCA, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            gc_restored: None) -> None:
    """One KDF per command: the one prestart started is the one the command collects."""
    import vaultkit.ca.unlock as unlock
    from vaultkit.cli import main

    started: list[Path] = []
    real = unlock.start_unlock

    def counting(path: str | os.PathLike[str], passphrase: object) -> object:
        started.append(Path(path))
        return real(path, passphrase)  # type: ignore[arg-type]

    monkeypatch.setattr(unlock, "start_unlock", counting)
    monkeypatch.setenv("VAULTKIT_CA_PASSPHRASE", CA_PW)
    with pytest.raises(SystemExit) as info:
        main(["ca", "--home", str(test_ca.home.root_dir), "issue", "pre1", "--san",
              "DNS:pre1.vaultkit.internal", "--out", str(tmp_path)])
    assert info.value.code == 0
    assert started == [test_ca.home.intermediate_key]
    assert (tmp_path / "pre1.pem").is_file() and (tmp_path / "pre1.chain.pem").is_file()
    assert prestart.take(test_ca.home.intermediate_key) is None  # collected, not left behind


def test_errors_keep_their_order_and_codes(test_ca: TestCA, tmp_path: Path,
                                           leak_canary) -> None:  # type: ignore[no-untyped-def]
    """Through the console script: a wrong passphrase, a loose key, a usage error."""
    home = str(test_ca.home.root_dir)
    wrong = leak_canary.new()
    r = run_vaultkit("ca", "--home", home, "issue", "w1", "--san", "DNS:w1.vaultkit.internal",
                     "--out", str(tmp_path), env={"VAULTKIT_CA_PASSPHRASE": wrong})
    leak_canary.watch_text(r.stdout + r.stderr)
    assert r.returncode == 1 and "wrong passphrase" in r.stderr
    # click validates the arguments first: a bad option is a usage error, not a key error
    r = run_vaultkit("ca", "--home", home, "issue", "w2", "--no-such-option",
                     env={"VAULTKIT_CA_PASSPHRASE": wrong})
    assert r.returncode == 2 and "No such option" in r.stderr
    key = test_ca.home.intermediate_key
    os.chmod(key, 0o644)
    try:
        r = run_vaultkit("ca", "--home", home, "issue", "w3", "--san", "DNS:w3.vaultkit.internal",
                         "--out", str(tmp_path), env={"VAULTKIT_CA_PASSPHRASE": CA_PW})
        assert r.returncode == 5 and "chmod 600" in r.stderr
    finally:
        os.chmod(key, 0o600)
    assert not list(tmp_path.glob("w*"))


def test_unbounded_commands_get_the_collector_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    import vaultkit.cli as cli_pkg
    from vaultkit.cli.root import cli

    ctx = click.Context(cli)
    was = gc.isenabled()
    try:
        for name, expect_enabled in [("ca", False), ("archive", True), ("field", True)]:
            gc.disable()
            monkeypatch.setattr(cli_pkg, "_gc_paused", True)
            assert cli.get_command(ctx, name) is not None
            assert gc.isenabled() is expect_enabled, name
    finally:
        if was:
            gc.enable()


def test_main_leaves_the_collector_as_it_found_it(gc_restored: None) -> None:
    from vaultkit.cli import main

    gc.enable()
    with pytest.raises(SystemExit):
        main(["ca", "--help"])
    assert gc.isenabled()
    gc.disable()
    with pytest.raises(SystemExit):
        main(["keys", "--help"])
    assert not gc.isenabled()  # main did not turn on what the caller had turned off
