"""``vaultkit ca`` through click's CliRunner: the whole ceremony with the product KDF default."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from unit.test_ca_support import CA_PW, ROOT_PW, write_profiles
from vaultkit.ca.pbes2 import kdf_rounds_of
from vaultkit.cli import cli


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """init -> intermediate create -> intermediate sign, at 600,000 KDF rounds, once."""
    work = tmp_path_factory.mktemp("cli")
    home = work / "home"
    write_profiles(home)
    root_key = work / "usb" / "root.key"
    env = {"VAULTKIT_ROOT_PASSPHRASE": ROOT_PW, "VAULTKIT_CA_PASSPHRASE": CA_PW}
    runner = CliRunner()
    r = runner.invoke(cli, ["ca", "--home", str(home), "init", "--name", "CLI Root",
                            "--root-key-out", str(root_key)], env=env)
    assert r.exit_code == 0, r.output
    assert "SHA-256 fingerprint:" in r.output
    r = runner.invoke(cli, ["ca", "--home", str(home), "intermediate", "create", "--name",
                            "CLI Issuing", "--permit-dns", "vaultkit.internal", "--permit-ip",
                            "127.0.0.0/8"], env=env)
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["ca", "--home", str(home), "intermediate", "sign", "--root-key",
                            str(root_key)], env=env)
    assert r.exit_code == 0, r.output
    return home, root_key


def run(home: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
        ) -> object:
    base = {"VAULTKIT_CA_PASSPHRASE": CA_PW}
    return CliRunner().invoke(cli, ["ca", "--home", str(home), *args],
                              env={**base, **(env or {})}, input=input)


def test_keys_use_the_product_kdf(ceremony: tuple[Path, Path]) -> None:
    home, root_key = ceremony
    for path in (root_key, home / "private" / "intermediate.key"):
        assert kdf_rounds_of(path.read_bytes()) == 600_000
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    for stable in ("root.pem", "intermediate.pem", "crl/root.crl"):
        assert (home / stable).is_file()


def test_issue_list_verify_revoke_crl(ceremony: tuple[Path, Path], tmp_path: Path) -> None:
    home, root_key = ceremony
    r = run(home, "issue", "api", "--profile", "both", "--san", "DNS:api.vaultkit.internal",
            "--san", "IP:127.0.0.1", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    data = json.loads(r.output)  # type: ignore[attr-defined]
    assert Path(data["key"]).is_file() and Path(data["chain"]).is_file()
    assert (home / "crl" / "intermediate.crl").is_file()
    r = run(home, "verify", str(tmp_path / "api.pem"), "--purpose", "both")
    assert r.exit_code == 0 and r.output.startswith("OK CN=api"), r.output  # type: ignore[attr-defined]
    r = run(home, "list", "--json")
    assert {e["name"] for e in json.loads(r.output)} >= {"api", "CLI Root", "CLI Issuing"}  # type: ignore[attr-defined]
    r = run(home, "list", "--expiring", "100")
    assert "api" in r.output  # type: ignore[attr-defined]
    r = run(home, "renew", "api", "--out", str(tmp_path / "renewed"), "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    r = run(home, "revoke", data["serial"], "--reason", "superseded")
    assert r.exit_code == 0 and data["serial"] in r.output  # type: ignore[attr-defined]
    r = run(home, "verify", str(tmp_path / "api.pem"))
    assert r.exit_code == 1 and "revoked" in r.output  # type: ignore[attr-defined]
    r = run(home, "crl", "--root-key", str(root_key),
            env={"VAULTKIT_ROOT_PASSPHRASE": ROOT_PW})
    assert r.exit_code == 0 and "root CRL" in r.output and "intermediate CRL" in r.output  # type: ignore[attr-defined]


def test_export_p12_and_prompted_passphrase(ceremony: tuple[Path, Path], tmp_path: Path,
                                            leak_canary, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    home, _ = ceremony
    from vaultkit.cli import ca as ca_cli

    monkeypatch.setattr(ca_cli, "stdin_is_tty", lambda: True)  # CliRunner's stdin is no TTY
    assert run(home, "issue", "phone", "--profile", "client", "--san",
               "DNS:phone.vaultkit.internal", "--out", str(tmp_path)).exit_code == 0  # type: ignore[attr-defined]
    p12_pw = leak_canary.new()
    # No env var for the P12 passphrase: the hidden prompt asks twice (confirmation).
    r = run(home, "export", "phone", "--p12", "--legacy", "--dir", str(tmp_path),
            input=f"{p12_pw}\n{p12_pw}\n")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    leak_canary.watch_text(r.output, where="cli output")  # type: ignore[attr-defined]
    from cryptography.hazmat.primitives.serialization import pkcs12

    _, cert, _ = pkcs12.load_key_and_certificates((tmp_path / "phone.p12").read_bytes(),
                                                  p12_pw.encode())
    assert cert is not None


def test_errors_have_exit_codes(ceremony: tuple[Path, Path], tmp_path: Path,
                                leak_canary) -> None:  # type: ignore[no-untyped-def]
    home, _root_key = ceremony
    wrong = leak_canary.new()
    r = run(home, "issue", "x", "--san", "DNS:x.vaultkit.internal",
            env={"VAULTKIT_CA_PASSPHRASE": wrong})
    assert r.exit_code == 5 and "wrong passphrase" in r.output  # type: ignore[attr-defined]
    leak_canary.watch_text(r.output)  # type: ignore[attr-defined]
    r = run(home, "issue", "lh", "--san", "DNS:localhost")
    assert r.exit_code == 3 and "single-label" in r.output  # type: ignore[attr-defined]
    r = run(home, "issue", "nc", "--san", "DNS:evil.example.com")
    assert r.exit_code == 1 and "outside" in r.output  # type: ignore[attr-defined]
    r = run(home, "issue", "x", "--profile", "server")  # no SAN
    assert r.exit_code == 3  # type: ignore[attr-defined]
    os.chmod(home / "private" / "intermediate.key", 0o644)
    try:
        r = run(home, "issue", "y", "--san", "DNS:y.vaultkit.internal")
        assert r.exit_code == 5 and "chmod 600" in r.output  # type: ignore[attr-defined]
    finally:
        os.chmod(home / "private" / "intermediate.key", 0o600)
    r = run(home, "intermediate", "create", "--name", "second")
    assert r.exit_code == 1 and "revoke it first" in r.output  # type: ignore[attr-defined]


def test_no_passphrase_and_no_tty_is_a_clear_error(ceremony: tuple[Path, Path]) -> None:
    home, _ = ceremony
    r = CliRunner().invoke(cli, ["ca", "--home", str(home), "issue", "z", "--san",
                                 "DNS:z.vaultkit.internal"], env={"VAULTKIT_CA_PASSPHRASE": ""},
                           input="")
    assert r.exit_code != 0


def test_passphrase_options_do_not_exist() -> None:
    """Secrets never in argv: no --passphrase/--password option on any ca command."""
    from vaultkit.cli import ca as ca_cli

    def walk(cmd: object) -> list[str]:
        import click

        names = [o for p in getattr(cmd, "params", []) for o in getattr(p, "opts", [])]
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                names += walk(sub)
        return names

    options = walk(ca_cli.ca)
    assert "--root-key" in options
    assert not [o for o in options if "pass" in o or "password" in o]


def test_no_terminal_fails_at_once_naming_the_sources(ceremony: tuple[Path, Path]) -> None:
    home, root_key = ceremony
    r = CliRunner().invoke(cli, ["ca", "--home", str(home), "issue", "nt", "--san",
                                 "DNS:nt.vaultkit.internal"], env={"VAULTKIT_CA_PASSPHRASE": ""},
                           input="typed but never read\n")
    assert r.exit_code == 3, r.output
    assert "VAULTKIT_CA_PASSPHRASE" in r.output and "'vaultkit-ca'" in r.output
    assert "Passphrase" not in r.output and "Traceback" not in r.output  # no prompt at all
    r = CliRunner().invoke(cli, ["ca", "--home", str(home), "crl", "--root-key", str(root_key),
                                 "--json"], env={"VAULTKIT_ROOT_PASSPHRASE": "",
                                                 "VAULTKIT_CA_PASSPHRASE": CA_PW})
    assert r.exit_code == 3
    error = json.loads(r.output.strip().splitlines()[-1])["error"]
    assert "VAULTKIT_ROOT_PASSPHRASE" in error["message"] and error["exit_code"] == 3


def test_reporting_commands_take_json(ceremony: tuple[Path, Path], tmp_path: Path) -> None:
    home, root_key = ceremony
    env = {"VAULTKIT_ROOT_PASSPHRASE": ROOT_PW}
    issued = json.loads(run(home, "issue", "j1", "--profile", "client", "--san",
                            "DNS:j1.vaultkit.internal", "--out", str(tmp_path), "--json"
                            ).output)  # type: ignore[attr-defined]
    assert issued["name"] == "j1" and issued["cert"].endswith("j1.pem")
    renewed = json.loads(run(home, "renew", "j1", "--out", str(tmp_path), "--json"
                             ).output)  # type: ignore[attr-defined]
    assert renewed["renewed_from"] == issued["serial"]
    revoked = json.loads(run(home, "revoke", issued["serial"], "--reason", "superseded",
                             "--json").output)  # type: ignore[attr-defined]
    assert revoked == {"revoked": [issued["serial"]], "reason": "superseded"}
    crl = json.loads(run(home, "crl", "--root-key", str(root_key), "--json", env=env
                         ).output)  # type: ignore[attr-defined]
    assert set(crl) == {"intermediate", "root"} and crl["intermediate"]["entries"] >= 1
    verified = json.loads(run(home, "verify", renewed["cert"], "--purpose", "client", "--json"
                              ).output)  # type: ignore[attr-defined]
    assert verified["ok"] is True
    bulk = run(home, "renew", "--profile", "client", "--out", str(tmp_path), "--json")
    assert bulk.exit_code == 0, bulk.output  # type: ignore[attr-defined]
    assert renewed["serial"] in {i["renewed_from"] for i in json.loads(bulk.output)}  # type: ignore[attr-defined]
    usage = run(home, "renew", "j1", "--all")
    assert usage.exit_code == 2  # type: ignore[attr-defined]


def test_intermediate_replace_through_the_cli(tmp_path: Path,
                                             leak_canary) -> None:  # type: ignore[no-untyped-def]
    from unit.test_ca_support import build_ca

    tca = build_ca(tmp_path)
    tca.issue("one", "server", "DNS:one.vaultkit.internal")
    tca.ca.close()
    home = str(tca.home.root_dir)
    new_pw = leak_canary.new()  # protects the new intermediate key
    env = {"VAULTKIT_ROOT_PASSPHRASE": ROOT_PW, "VAULTKIT_CA_PASSPHRASE": new_pw}
    r = CliRunner().invoke(cli, ["ca", "--home", home, "intermediate", "replace", "--root-key",
                                 str(tca.root_key), "--out", str(tmp_path / "new")], env=env)
    assert r.exit_code == 0, r.output
    assert "re-issued one serial" in r.output and "1 leaves re-issued" in r.output
    assert (tmp_path / "new" / "one.chain.pem").is_file()
    listed = CliRunner().invoke(cli, ["ca", "--home", home, "list"], env=env)
    assert "revoked*" in listed.output and "through its issuer" in listed.output
    # the new key opens with the new passphrase: issuing works with it
    issued = CliRunner().invoke(cli, ["ca", "--home", home, "issue", "two", "--san",
                                      "DNS:two.vaultkit.internal", "--out",
                                      str(tmp_path / "new")], env=env)
    assert issued.exit_code == 0, issued.output
    for text in (r.output, listed.output, issued.output):
        leak_canary.watch_text(text, where="cli output")
    for path in tca.home.root_dir.rglob("*"):
        if path.is_file() and path.suffix != ".key":
            leak_canary.watch_path(path)
