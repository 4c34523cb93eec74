"""``vaultkit field`` with CliRunner: keyset lifecycle, retire's row check, reencrypt, and a
re-encryption killed with SIGKILL and resumed (SQLite)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from vaultkit.cli import cli
from vaultkit.fields import FieldCipher, FieldContext, Keyset, key_id_of
from vaultkit.keys.local import LocalKeyStore


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    name = f"cli-{os.urandom(3).hex()}"
    LocalKeyStore().create(name)
    return {"VAULTKIT_FIELD_KEYSET": f"file://{tmp_path}/users.json",
            "VAULTKIT_FIELD_DB_URL": f"sqlite:///{tmp_path}/app.sqlite",
            "KEK": f"local://{name}"}


def _run(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(cli, ["field", *args], env=env, catch_exceptions=False)
    return result


def _make_table(env: dict[str, str], n: int) -> None:
    ks = Keyset.load(env["VAULTKIT_FIELD_KEYSET"])
    c = FieldCipher(ks)
    eng = create_engine(env["VAULTKIT_FIELD_DB_URL"])
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, row_salt CHAR(32), "
                          "email BLOB)"))
        rows = []
        for i in range(n):
            salt = uuid.uuid4().hex
            rows.append({"i": i, "s": salt, "e": c.encrypt(f"u{i}@x", context=FieldContext(
                table="users", column="email", row=salt))})
        conn.execute(text("INSERT INTO users VALUES (:i, :s, :e)"), rows)
    eng.dispose()


def _key_ids(env: dict[str, str]) -> dict[int | None, int]:
    from vaultkit.fields.reencrypt import count_by_key

    return count_by_key(env["VAULTKIT_FIELD_DB_URL"], table="users", column="email")


def test_keyset_lifecycle_and_retire_check(env: dict[str, str]) -> None:
    r = _run(env, "keyset", "create", "--kek", env["KEK"], "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    first = info["primary"]
    assert info["name"] == "users" and info["keys"][0]["state"] == "primary"
    r = _run(env, "keyset", "create", "--kek", env["KEK"])
    assert r.exit_code == 3 and "refusing to replace" in r.output
    _make_table(env, 50)

    r = _run(env, "keyset", "rotate", "--json")
    second = json.loads(r.output)["primary"]
    assert second != first
    r = _run(env, "keyset", "retire", first, "--column", "users.email")
    assert r.exit_code == 5 and "50 row(s) of users.email still use key" in r.output
    r = _run(env, "reencrypt", "--table", "users", "--column", "email", "--pk", "id",
             "--batch", "7", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["reencrypted"] == 50 and report["failed"] == []
    assert "sqlite" not in r.output  # the URL is never printed
    assert _key_ids(env) == {int(second, 16): 50}
    r = _run(env, "reencrypt", "--table", "users", "--column", "email", "--pk", "id")
    assert r.exit_code == 0 and "re-encrypted 0, already on primary 50" in r.output
    assert "rows/s" in r.output
    r = _run(env, "keyset", "retire", first, "--column", "users.email")
    assert r.exit_code == 0, r.output
    r = _run(env, "keyset", "show", "--json")
    states = {k["id"]: k["state"] for k in json.loads(r.output)["keys"]}
    assert states == {first: "retired", second: "primary"}
    assert "wrapped" not in r.output
    r = _run(env, "keyset", "retire", second, "--column", "users.email")
    assert r.exit_code == 5  # rows use it (and it is the primary)

    r = _run(env, "keyset", "rotate", "--stage", "--json")
    staged = [k["id"] for k in json.loads(r.output)["keys"] if k["state"] == "decrypt-only"]
    assert len(staged) == 1 and json.loads(r.output)["primary"] == second
    r = _run(env, "keyset", "promote", staged[0])
    assert r.exit_code == 0 and f"{staged[0]}  primary" in r.output
    r = _run(env, "keyset", "rotate", "--index", "--json")
    assert [k["version"] for k in json.loads(r.output)["index_keys"]] == [1, 2]


def test_errors_have_documented_exit_codes(env: dict[str, str]) -> None:
    bare = {k: v for k, v in env.items() if k != "VAULTKIT_FIELD_KEYSET"}
    assert _run(bare, "keyset", "show").exit_code == 3
    assert _run(env, "keyset", "show").exit_code == 4  # not found
    _run(env, "keyset", "create", "--kek", env["KEK"])
    assert _run(env, "keyset", "promote", "zz").exit_code == 3
    assert _run(env, "keyset", "retire", "00000001", "--column", "users.email").exit_code == 5
    r = _run({**env, "VAULTKIT_FIELD_DB_URL": "nonsense://user:pw@h/db"}, "reencrypt",
             "--table", "users", "--column", "email", "--pk", "id")
    assert r.exit_code == 3 and "pw" not in r.output


def test_reencrypt_killed_with_sigkill_resumes(env: dict[str, str], tmp_path: Path) -> None:
    _run(env, "keyset", "create", "--kek", env["KEK"])
    _make_table(env, 4000)
    _run(env, "keyset", "rotate")
    primary = Keyset.load(env["VAULTKIT_FIELD_KEYSET"]).primary_id
    child_env = {**os.environ, **env}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from vaultkit.cli import main; sys.argv[0] = "
         "'vaultkit'; main()", "field", "reencrypt", "--table", "users",
         "--column", "email", "--pk", "id", "--batch", "50"],
        env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = _key_ids(env).get(primary, 0)
        if done >= 200 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    partial = _key_ids(env)
    assert 200 <= partial.get(primary, 0) < 4000  # killed mid-run
    assert sum(partial.values()) == 4000  # nothing half-written: every value is vk1
    r = _run(env, "reencrypt", "--table", "users", "--column", "email", "--pk", "id",
             "--json")
    report = json.loads(r.output)
    assert report["skipped"] == partial.get(primary, 0)
    assert _key_ids(env) == {primary: 4000}
    eng = create_engine(env["VAULTKIT_FIELD_DB_URL"])
    c = FieldCipher(Keyset.load(env["VAULTKIT_FIELD_KEYSET"]))
    with eng.connect() as conn:
        for i, salt, blob in conn.execute(text("SELECT id, row_salt, email FROM users")):
            assert key_id_of(blob) == primary
            ctx = FieldContext(table="users", column="email", row=salt)
            assert c.decrypt(blob, context=ctx) == f"u{i}@x".encode()
    eng.dispose()
