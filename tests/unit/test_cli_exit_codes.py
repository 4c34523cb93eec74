"""The exit-code walk: every command in the tree gets a usage error (2) and a configuration
error (3); every group gets its backend (4), cryptographic (5) and failed-check (1) cases;
every failure under ``--json`` is one schema-checked JSON object on stderr.

The tree is walked through the root group, so a command added later is tested without
anyone listing it here; a new *group* fails :func:`test_every_group_has_its_cases` until its
cases (or the reason a code cannot happen) are written down below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

from unit.cli_walk import (
    expected,
    invoke,
    json_error,
    leaves,
    minimal_args,
    no_traceback,
    takes_json,
    workdir,
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return workdir(tmp_path, monkeypatch)

TYPO = "[archive]\nrequire_tls = false\n"


@pytest.mark.parametrize("path", leaves(), ids=" ".join)
def test_usage_error_is_2_and_json(path: tuple[str, ...], work: Path) -> None:
    result = invoke([*path, "--json", "--no-such-option"])
    assert result.exit_code == expected(path, 2), result.output
    doc = json_error(result)
    assert doc["error"]["category"] == "usage"
    assert result.stdout == ""


#: Commands that do not read the configuration before they can fail, and why.
READS_NO_CONFIG: dict[tuple[str, ...], str] = {
    ("archive", "create"): "builds a local zip; nothing in it is configurable",
}
#: Arguments a command needs, beyond the required ones, to get to reading the config.
EXTRA: dict[tuple[str, ...], list[str]] = {
    ("secrets", "get"): ["--reveal"],
    ("secrets", "decrypt"): ["--reveal"],
    ("field", "reencrypt"): ["--url", "sqlite:///app.sqlite"],  # checked before the keyset
    ("ca", "renew"): ["--all"],  # renew needs NAME or a selection
}


@pytest.mark.parametrize("path", [p for p in leaves() if p not in READS_NO_CONFIG],
                         ids=" ".join)
def test_configuration_error_is_3_with_file_and_line(path: tuple[str, ...], work: Path) -> None:
    (work / "typo.toml").write_text(TYPO)
    as_json = takes_json(path)
    # --config after the subcommand: the group option is accepted there too.
    args = [*path, "--config", str(work / "typo.toml"), *(["--json"] if as_json else []),
            *EXTRA.get(path, []), *minimal_args(path, work)]
    result = invoke(args)
    no_traceback(result)
    assert result.exit_code == expected(path, 3), result.output
    if as_json:
        doc = json_error(result)
        assert doc["error"]["message"] == (
            "unknown setting [archive] require_tls; did you mean s3_require_tls?")
        assert doc["error"]["reference"] == f"{work / 'typo.toml'}:2"
        assert result.stdout == ""
    else:
        assert "require_tls" in result.stderr and "typo.toml:2" in result.stderr


# --- per group: backend (4), cryptographic (5), failed check (1) ---------------------------

@dataclass
class Case:
    code: int
    args: Callable[[Path], list[str]]
    setup: Callable[[Path], None] = lambda work: None
    env: dict[str, str] = field(default_factory=dict)
    input: str | None = None


def _loose_key(work: Path) -> None:
    assert invoke(["keys", "init-local", "loose"]).exit_code == 0
    os.chmod(work / "vk-home" / "keys" / "loose.key", 0o644)


def _foreign_cert(work: Path) -> None:
    from unit.test_ca_support import build_ca

    other = build_ca(work / "other", name="Other")
    cert = other.issue("stranger", "server", "DNS:stranger.vaultkit.internal")
    (work / "foreign.pem").write_bytes(cert.read_bytes())


def _ca(work: Path) -> None:
    from unit.test_ca_support import build_ca

    build_ca(work / "ca")


def _garbage_row(work: Path) -> None:
    from sqlalchemy import create_engine, text

    assert invoke(["field", "keyset", "create", "--keyset", f"file://{work}/ks.json",
                   "--kek", "memory://walk-field"]).exit_code == 0
    engine = create_engine(f"sqlite:///{work}/app.sqlite")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, row_salt CHAR(32), "
                          "email BLOB)"))
        conn.execute(text("INSERT INTO users VALUES (1, 'salt', :e)"),
                     {"e": b"\x01not a ciphertext"})
    engine.dispose()


def _loose_key_and_plain_file(work: Path) -> None:
    _loose_key(work)
    (work / "plain.json").write_text('{"A": "x"}')


def _ca_and_foreign_cert(work: Path) -> None:
    _ca(work)
    _foreign_cert(work)


def _tampered_file(work: Path) -> None:
    from vaultkit.keys.memory import MemoryKeyProvider
    from vaultkit.secrets.envfile import encrypt_document, write_document

    doc = encrypt_document({"pw": "v"}, MemoryKeyProvider.named("walk-run"))
    doc["pw"] = doc["pw"][:-6] + "AAAAA]"
    write_document(work / "app.json", doc)


def _file(work: Path) -> None:
    (work / "blocker").write_text("a file where the store wants a folder")


CA_PW_WRONG = {"VAULTKIT_CA_PASSPHRASE": "not the passphrase at all"}

#: group -> its cases. Codes not listed for a group cannot happen there; NOT_APPLICABLE says why.
CASES: dict[str, list[Case]] = {
    "keys": [
        Case(4, lambda w: ["keys", "check", "local://missing", "--json"]),
        Case(5, lambda w: ["keys", "check", "local://loose", "--json"], setup=_loose_key),
    ],
    "doctor": [
        Case(1, lambda w: ["doctor", "--strict", "--json"],
             env={"VAULT_ADDR": "http://127.0.0.1:9"}),
    ],
    "secrets": [
        Case(1, lambda w: ["secrets", "check", "-s", "A=env://VK_WALK_UNSET"]),
        Case(4, lambda w: ["secrets", "get", "A", "--reveal", "-s", "A=env://VK_WALK_UNSET"]),
        Case(5, lambda w: ["secrets", "encrypt", str(w / "plain.json"), "--key-provider",
                           "local://loose"], setup=_loose_key_and_plain_file),
    ],
    "run": [
        Case(123, lambda w: ["run", "-s", "A=bogus://x", "--", "true"]),
        Case(124, lambda w: ["run", "-s", "A=env://VK_WALK_UNSET", "--", "true"]),
        Case(125, lambda w: ["run", "-s", f"A=file://{w}/app.json#pw", "--", "true"],
             setup=_tampered_file),
    ],
    "field": [
        Case(4, lambda w: ["field", "keyset", "show", "--keyset", f"file://{w}/none.json",
                           "--json"]),
        Case(5, lambda w: ["field", "keyset", "create", "--keyset", f"file://{w}/k.json",
                           "--kek", "local://loose", "--json"], setup=_loose_key),
        Case(1, lambda w: ["field", "reencrypt", "--keyset", f"file://{w}/ks.json", "--url",
                           f"sqlite:///{w}/app.sqlite", "--table", "users", "--column",
                           "email", "--pk", "id", "--json"], setup=_garbage_row),
    ],
    "ca": [
        Case(5, lambda w: ["ca", "issue", "svc", "--home", str(w / "ca" / "home"), "--san",
                           "DNS:svc.vaultkit.internal", "--json"], setup=_ca, env=CA_PW_WRONG),
        Case(1, lambda w: ["ca", "verify", str(w / "foreign.pem"), "--home",
                           str(w / "ca" / "home"), "--json"],
             setup=_ca_and_foreign_cert),
        # "not found" is 4 whatever holds it: here the CA's own inventory (NotFoundError)
        Case(4, lambda w: ["ca", "revoke", "no-such-leaf", "--home", str(w / "ca" / "home"),
                           "--json"], setup=_ca),
    ],
    "archive": [
        Case(4, lambda w: ["archive", "setup", "--store", f"file://{w}/blocker/store"],
             setup=_file),
        Case(1, lambda w: ["archive", "create", str(w / "o.zip"), str(w / "blocker"),
                           "--password-stdin", "--json"], setup=_file, input="short1\n"),
    ],
    "config": [],
}

NOT_APPLICABLE: dict[str, str] = {
    "keys": "1: a round trip that returns another key is a KeyProviderError (5)",
    "doctor": "4, 5: doctor reports what it cannot reach instead of failing (see --strict)",
    "secrets": "",
    "run": "121 (no spec), 122 (usage: also in the walk), 126/127 (the child cannot start) "
           "are in test_run_cli.py",
    "field": "",
    "ca": "",
    "archive": "5: no archive command decrypts",
    "config": "1, 4, 5: config show reads no backend and checks nothing",
}

_ALL = [(group, i) for group, cases in CASES.items() for i in range(len(cases))]


def test_every_group_has_its_cases() -> None:
    top = {p[0] for p in leaves()}
    assert top == set(CASES) == set(NOT_APPLICABLE)


@pytest.mark.parametrize("group, index", _ALL,
                         ids=[f"{g}-{CASES[g][i].code}" for g, i in _ALL])
def test_group_exit_codes(group: str, index: int, work: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[group][index]
    case.setup(work)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = case.args(work)
    result: Result = invoke(args, input=case.input)
    no_traceback(result)
    assert result.exit_code == case.code, (args, result.output)
    if "--json" in args and case.code != 1:
        json_error(result)


def test_wrong_ca_passphrase_is_5_in_text_and_json(work: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _ca(work)
    monkeypatch.setenv("VAULTKIT_CA_PASSPHRASE", "not the passphrase at all")
    home = str(work / "ca" / "home")
    text = invoke(["ca", "crl", "--home", home])
    assert text.exit_code == 5 and text.stderr.startswith("vaultkit: error: "), text.output
    assert "not the passphrase" not in text.output
    as_json = invoke(["ca", "issue", "x", "--san", "DNS:x.vaultkit.internal", "--home", home,
                      "--json"])
    doc = json_error(as_json)
    assert doc["error"]["exit_code"] == 5 and doc["error"]["type"] == "CAKeyError"
    assert "not the passphrase" not in as_json.output


def test_json_errors_carry_no_value(work: Path, monkeypatch: pytest.MonkeyPatch,
                                    leak_canary) -> None:
    secret = leak_canary.new()
    monkeypatch.setenv("VK_WALK_SECRET", secret)
    result = invoke(["secrets", "check", "--json", "-s", "A=env://VK_WALK_SECRET#nokey"])
    leak_canary.watch_text(result.output, where="secrets check --json")
    json.loads(result.stdout)  # the report itself is JSON too


def test_every_error_class_maps_to_a_documented_code() -> None:
    """The one mapping, over the whole hierarchy (docs/cli.md's second table)."""
    import vaultkit.errors as errors
    from vaultkit.cli._common import exit_code_for

    def make(cls: type[errors.VaultkitError]) -> errors.VaultkitError:
        if cls is errors.SecretsLoadError:
            return cls({"A": errors.NotFoundError("x")})
        if cls in (errors.DecryptionError,):
            return cls()
        if cls is errors.ArchivePasswordError:
            return cls("ref")
        return cls("x")

    expected_codes = {
        "ConfigError": 3, "InvalidReferenceError": 3, "InsecureFileError": 5,
        "BackendError": 4, "NotFoundError": 4, "AccessDeniedError": 4,
        "AuthenticationError": 4, "UnavailableError": 4, "DeadlineExceededError": 4,
        "TLSError": 4, "SecretsLoadError": 4, "CryptoError": 5, "DecryptionError": 5,
        "KeyProviderError": 5, "KeysetError": 5, "KeysetConflictError": 1, "CAError": 1, "CAKeyError": 5,
        "CertificateRejectedError": 1, "ArchiveError": 1, "UnsafeEntryNameError": 1,
        "ArchivePasswordError": 5, "StorageError": 4, "ObjectExpiredError": 4,
        "VaultkitError": 1,
    }
    classes = {name: getattr(errors, name) for name in errors.__all__
               if isinstance(getattr(errors, name), type)
               and issubclass(getattr(errors, name), errors.VaultkitError)}
    assert set(classes) <= set(expected_codes), set(classes) - set(expected_codes)
    for name, cls in classes.items():
        assert exit_code_for(make(cls)) == expected_codes[name], name
    mixed = errors.SecretsLoadError({"A": errors.NotFoundError("gone"),
                                     "B": errors.InvalidReferenceError("bad")})
    assert exit_code_for(mixed) == 3
