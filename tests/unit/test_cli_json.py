"""``--json`` on every command that reports: the list in docs/cli.md matches the command
tree, and each one's success output is one JSON document on stdout (no progress bar, no
prose) that passes its schema. Failures are covered by test_cli_exit_codes.py."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from unit.cli_walk import invoke, leaves, no_traceback, takes_json, workdir


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return workdir(tmp_path, monkeypatch)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _documented() -> set[tuple[str, ...]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Commands that take `--json`", 1)[1].split("\n## ", 1)[0]
    return {tuple(m.split()) for m in re.findall(r"^\* `vaultkit ([a-z -]+)`", section, re.M)}


def test_docs_list_every_json_command() -> None:
    in_tree = {p for p in leaves() if takes_json(p)}
    assert _documented() == in_tree, (
        f"documented only: {sorted(_documented() - in_tree)}; "
        f"in the tree only: {sorted(in_tree - _documented())}")


OBJ = "object"


def obj(*required: str, **props: Any) -> dict[str, Any]:
    return {"type": OBJ, "required": list(required), "properties": props}


ISSUED = obj("name", "serial", "not_after", "fingerprint", "cert", "chain",
             serial={"type": "string"}, sans={"type": "array", "items": {"type": "string"}})
KEYSET = obj("name", "kek", "keys", keys={"type": "array", "minItems": 1})


@dataclass
class Scenario:
    args: Callable[[Path], list[str]]
    schema: dict[str, Any]
    setup: Callable[[Path], None] = lambda work: None
    input: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _ca(work: Path) -> None:
    from unit.test_ca_support import build_ca

    built = build_ca(work / "ca")
    built.issue("old", "server", "DNS:old.vaultkit.internal")


def _home(work: Path) -> str:
    return str(work / "ca" / "home")


def _keyset(work: Path, *, staged: bool = False) -> None:
    assert invoke(["field", "keyset", "create", "--keyset", f"file://{work}/ks.json", "--kek",
                   "memory://json-field"]).exit_code == 0
    if staged:
        assert invoke(["field", "keyset", "rotate", "--stage", "--keyset",
                       f"file://{work}/ks.json"]).exit_code == 0


def _staged(work: Path) -> str:
    ks = json.loads(invoke(["field", "keyset", "show", "--json", "--keyset",
                            f"file://{work}/ks.json"]).stdout)
    return str(next(k["id"] for k in ks["keys"] if k["state"] != "primary"))


def _table(work: Path) -> None:
    from sqlalchemy import create_engine, text

    _keyset(work)
    engine = create_engine(f"sqlite:///{work}/app.sqlite")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, row_salt CHAR(32), "
                          "email BLOB)"))
    engine.dispose()


def _rotated_table(work: Path) -> None:
    _table(work)
    assert invoke(["field", "keyset", "rotate", "--keyset", f"file://{work}/ks.json"]
                  ).exit_code == 0


def _src(work: Path) -> None:
    (work / "in.txt").write_text("data")


def _shared(work: Path) -> None:
    _src(work)
    result = invoke(["archive", "share", f"{work}/in.txt", "--store", f"file://{work}/store",
                     "--json"])
    assert result.exit_code == 0, result.output
    (work / "share.json").write_text(result.stdout)


def _share_id(work: Path) -> str:
    return str(json.loads((work / "share.json").read_text())["object_key"])


def _root_only(work: Path) -> None:
    from unit.test_ca_support import FAST_ROUNDS, passphrases, write_profiles
    from vaultkit.ca import CAHome, CertificateAuthority

    home = CAHome(work / "ca" / "home")
    write_profiles(home.root_dir)
    (work / "ca" / "offline").mkdir(parents=True)
    CertificateAuthority(home, passphrases=passphrases(), kdf_rounds=FAST_ROUNDS).init_root(
        "J Root", root_key_out=work / "ca" / "offline" / "root.key")


def _csr(work: Path) -> None:
    _root_only(work)
    result = invoke(["ca", "intermediate", "create", "--name", "J Issuing", "--home",
                     _home(work)], env=CA_PW)
    assert result.exit_code == 0, result.output


CA_PW = {"VAULTKIT_CA_PASSPHRASE": "intermediate passphrase for tests",
         "VAULTKIT_ROOT_PASSPHRASE": "root passphrase for the tests",
         "VAULTKIT_P12_PASSPHRASE": "p12 passphrase for the tests"}

SCENARIOS: dict[tuple[str, ...], Scenario] = {
    ("keys", "init-local"): Scenario(lambda w: ["keys", "init-local", "j", "--json"],
                                     obj("uri", "store")),
    ("keys", "check"): Scenario(lambda w: ["keys", "check", "memory://j", "--json"],
                                obj("ok", "context_bound", ok={"const": True})),
    ("doctor",): Scenario(lambda w: ["doctor", "--json", "--key", "memory://j"],
                          obj("version", "config", "vault", "aws", "keys")),
    ("config", "show"): Scenario(
        lambda w: ["config", "show", "--json"],
        obj("file", "settings", settings={"type": "array", "items": obj(
            "name", "value", "origin", "masked")})),
    ("secrets", "check"): Scenario(lambda w: ["secrets", "check", "--json", "-s", "A=env://HOME"],
                                   obj("ok", "secrets", ok={"const": True})),
    ("secrets", "plan"): Scenario(lambda w: ["secrets", "plan", "--json", "-s", "A=env://HOME"],
                                  obj("calls", "counts")),
    ("ca", "init"): Scenario(
        lambda w: ["ca", "init", "--name", "J Root", "--root-key-out", f"{w}/r.key", "--home",
                   f"{w}/fresh", "--json"], {"type": OBJ}, env=CA_PW),
    ("ca", "issue"): Scenario(
        lambda w: ["ca", "issue", "svc", "--san", "DNS:svc.vaultkit.internal", "--home",
                   _home(w), "--json"], ISSUED, setup=_ca, env=CA_PW),
    ("ca", "renew"): Scenario(lambda w: ["ca", "renew", "old", "--home", _home(w), "--json"],
                              ISSUED, setup=_ca, env=CA_PW),
    ("ca", "list"): Scenario(lambda w: ["ca", "list", "--home", _home(w), "--json"],
                             {"type": "array", "minItems": 3}, setup=_ca),
    ("ca", "verify"): Scenario(
        lambda w: ["ca", "verify", f"{w}/ca/leaves/old.pem", "--home", _home(w), "--json"],
        obj("subject", "serial", "issuer"), setup=_ca),
    ("ca", "revoke"): Scenario(lambda w: ["ca", "revoke", "old", "--home", _home(w), "--json"],
                               {"type": ["object", "array"]}, setup=_ca, env=CA_PW),
    ("ca", "crl"): Scenario(lambda w: ["ca", "crl", "--home", _home(w), "--json"],
                            {"type": ["object", "array"]}, setup=_ca, env=CA_PW),
    ("ca", "export"): Scenario(
        lambda w: ["ca", "export", "old", "--p12", "--dir", f"{w}/ca/leaves", "--out",
                   f"{w}/old.p12", "--home", _home(w), "--json"], {"type": OBJ}, setup=_ca,
        env=CA_PW),
    ("ca", "intermediate", "create"): Scenario(
        lambda w: ["ca", "intermediate", "create", "--name", "J Issuing", "--home", _home(w),
                   "--json"], {"type": OBJ}, setup=_root_only, env=CA_PW),
    ("ca", "intermediate", "sign"): Scenario(
        lambda w: ["ca", "intermediate", "sign", "--root-key", f"{w}/ca/offline/root.key",
                   "--home", _home(w), "--json"], {"type": OBJ}, setup=_csr, env=CA_PW),
    ("ca", "intermediate", "replace"): Scenario(
        lambda w: ["ca", "intermediate", "replace", "--root-key", f"{w}/ca/offline/root.key",
                   "--home", _home(w), "--json"], {"type": OBJ}, setup=_ca, env=CA_PW),
    ("ca", "intermediate", "revoke"): Scenario(
        lambda w: ["ca", "intermediate", "revoke", "--root-key", f"{w}/ca/offline/root.key",
                   "--home", _home(w), "--json"], {"type": OBJ}, setup=_ca, env=CA_PW),
    ("field", "keyset", "create"): Scenario(
        lambda w: ["field", "keyset", "create", "--keyset", f"file://{w}/new.json", "--kek",
                   "memory://json-field", "--json"], KEYSET),
    ("field", "keyset", "show"): Scenario(
        lambda w: ["field", "keyset", "show", "--keyset", f"file://{w}/ks.json", "--json"],
        KEYSET, setup=_keyset),
    ("field", "keyset", "rotate"): Scenario(
        lambda w: ["field", "keyset", "rotate", "--keyset", f"file://{w}/ks.json", "--json"],
        KEYSET, setup=_keyset),
    ("field", "keyset", "promote"): Scenario(
        lambda w: ["field", "keyset", "promote", "--keyset", f"file://{w}/ks.json", _staged(w),
                   "--json"], KEYSET,
        setup=lambda w: _keyset(w, staged=True)),
    ("field", "keyset", "retire"): Scenario(
        lambda w: ["field", "keyset", "retire", "--keyset", f"file://{w}/ks.json", "--url",
                   f"sqlite:///{w}/app.sqlite", "--column", "users.email", _staged(w),
                   "--json"], KEYSET, setup=_rotated_table),
    ("field", "reencrypt"): Scenario(
        lambda w: ["field", "reencrypt", "--keyset", f"file://{w}/ks.json", "--url",
                   f"sqlite:///{w}/app.sqlite", "--table", "users", "--column", "email",
                   "--pk", "id", "--json"], obj("scanned", "failed"), setup=_table),
    ("field", "encrypt-column"): Scenario(
        lambda w: ["field", "encrypt-column", "--keyset", f"file://{w}/ks.json", "--url",
                   f"sqlite:///{w}/app.sqlite", "--table", "users", "--column", "email",
                   "--pk", "id", "--json"], {"type": OBJ}, setup=_table),
    ("field", "decrypt-column"): Scenario(
        lambda w: ["field", "decrypt-column", "--keyset", f"file://{w}/ks.json", "--url",
                   f"sqlite:///{w}/app.sqlite", "--table", "users", "--column", "email",
                   "--pk", "id", "--json"], {"type": OBJ}, setup=_table),
    ("archive", "create"): Scenario(
        lambda w: ["archive", "create", f"{w}/o.zip", f"{w}/in.txt", "--json"],
        obj("path", "size", "sha256", "entries"), setup=_src),
    ("archive", "share"): Scenario(
        lambda w: ["archive", "share", f"{w}/in.txt", "--store", f"file://{w}/store", "--json"],
        {"type": OBJ}, setup=_src),
    ("archive", "revoke"): Scenario(
        lambda w: ["archive", "revoke", _share_id(w), "--store", f"file://{w}/store", "--json"],
        {"type": OBJ}, setup=_shared),
    ("archive", "relink"): Scenario(
        lambda w: ["archive", "relink", _share_id(w), "--store", f"file://{w}/store", "--json"],
        {"type": OBJ}, setup=_shared),
    ("archive", "list"): Scenario(
        lambda w: ["archive", "list", "--store", f"file://{w}/store", "--json"],
        {"type": ["array", "object"]}, setup=_shared),
    ("archive", "purge"): Scenario(
        lambda w: ["archive", "purge", "--store", f"file://{w}/store", "--json"],
        obj("store", "removed")),
    ("archive", "setup"): Scenario(
        lambda w: ["archive", "setup", "--store", f"file://{w}/store", "--json"], {"type": OBJ}),
}


def test_every_json_command_has_a_success_scenario() -> None:
    missing = [" ".join(p) for p in leaves() if takes_json(p) and p not in SCENARIOS]
    assert not missing, f"add a Scenario for: {missing}"


@pytest.mark.parametrize("path", [p for p in leaves() if takes_json(p)], ids=" ".join)
def test_json_success_output_matches_its_schema(path: tuple[str, ...], work: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = SCENARIOS[path]
    scenario.setup(work)
    for name, value in scenario.env.items():
        monkeypatch.setenv(name, value)
    # As if stdout were a terminal: a progress bar that ignored --json would break the JSON.
    for name, module in list(sys.modules.items()):
        if name.startswith("vaultkit.cli.") and hasattr(module, "is_tty"):
            monkeypatch.setattr(module, "is_tty", lambda: True)
    result = invoke(scenario.args(work), input=scenario.input)
    no_traceback(result)
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), scenario.schema)
    assert '"error"' not in result.stderr
