"""``vaultkit archive`` through click's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vaultkit.archive import verify_archive
from vaultkit.cli import cli

PW_RE = re.compile(r"^password: ((?:[0-9A-Z]{5}-){4}[0-9A-Z]{5})$", re.M)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha\n")
    (d / "sub" / "b.txt").write_text("bravo\n")
    return d


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_create_prints_the_generated_password_once(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.zip"
    r = run("archive", "create", str(out), str(src))
    assert r.exit_code == 0, r.output
    (pw,) = PW_RE.findall(r.stdout)
    assert r.stdout.count(pw) == 1
    assert {d.name for d in verify_archive(out, pw)} == {"src/a.txt", "src/sub/b.txt"}
    assert "Encrypting" not in r.output  # no progress bar when not on a terminal


def test_create_private_with_password_from_stdin(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.zip"
    r = run("archive", "create", str(out), str(src / "a.txt"), "--private", "--password-stdin",
            input="my-own-long-password\n")
    assert r.exit_code == 0, r.output
    assert "password" not in r.stdout and "my-own-long-password" not in r.output
    assert [d.name for d in verify_archive(out, "my-own-long-password")] == ["a.txt"]


def test_create_prompt_and_json(src: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultkit.cli import _common

    monkeypatch.setattr(_common, "stdin_is_tty", lambda: True)
    out = tmp_path / "q.zip"
    r = run("archive", "create", str(out), str(src), "--password-prompt", "--json",
            input="prompted-password-1\nprompted-password-1\n")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout[r.stdout.index("{"):])
    assert "password" not in data and data["entries"] == 2
    assert verify_archive(out, "prompted-password-1")


def test_prompt_without_a_terminal_fails_at_once(src: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["archive", "create", str(tmp_path / "q.zip"), str(src),
                                 "--password-prompt"], input="typed-ahead-password\n")
    assert r.exit_code == 3
    assert "--password-stdin" in r.output and "typed-ahead-password" not in r.output
    assert not (tmp_path / "q.zip").exists()


def test_list_relink_and_revoke_by_link(src: Path, tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    r = run("archive", "list", "--store", store)
    assert r.exit_code == 0 and "no shares" in r.stdout
    shared = json.loads(run("archive", "share", str(src), "--store", store, "--retention", "30d",
                            "--json").stdout)
    r = run("archive", "list", "--store", store, "--json")
    (row,) = json.loads(r.stdout)
    assert row["id"] == shared["object_key"] and row["retention"] == "30d"
    assert row["state"] == "active" and row["link_expires_at"] == shared["link_expires_at"]
    assert set(row) == {"id", "retention", "created_at", "expires_at", "link_expires_at",
                        "state", "size"}
    r = run("archive", "list", "--store", store)
    assert shared["object_key"] in r.stdout and "active" in r.stdout
    r = run("archive", "relink", shared["object_key"].split("/")[1], "--store", store,
            "--link-minutes", "30", "--json")
    assert r.exit_code == 0, r.output
    fresh = json.loads(r.stdout)
    assert fresh["link"] == shared["link"]  # a file:// link is the path itself
    assert json.loads(run("archive", "list", "--store", store, "--json").stdout)[0][
        "link_expires_at"] == fresh["link_expires_at"]
    # Revoke by the link the user received, read from stdin (a link is a bearer URL).
    r = run("archive", "revoke", "-", "--store", store, "--json", input=shared["link"] + "\n")
    assert json.loads(r.stdout) == {"id": shared["object_key"],
                                    "object_key": shared["object_key"], "deleted": True}
    assert json.loads(run("archive", "list", "--store", store, "--json").stdout) == []
    r = CliRunner().invoke(cli, ["archive", "relink", shared["object_key"], "--store", store,
                                 "--json"])
    assert r.exit_code == 4 and json.loads(r.output)["error"]["type"] == "NotFoundError"


def test_revoke_refuses_a_link_to_another_store(src: Path, tmp_path: Path) -> None:
    a, b = f"file://{tmp_path / 'a'}", f"file://{tmp_path / 'b'}"
    shared = json.loads(run("archive", "share", str(src), "--store", a, "--json").stdout)
    r = CliRunner().invoke(cli, ["archive", "revoke", shared["link"], "--store", b])
    assert r.exit_code == 3 and "not a link to this store" in r.output
    assert Path(shared["link"][len("file://"):]).exists()


def test_setup_on_a_local_store(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    r = run("archive", "setup", "--store", f"file://{folder}", "--dry-run", "--json")
    assert json.loads(r.stdout)["applied"] is False and not folder.exists()
    r = run("archive", "setup", "--store", f"file://{folder}")
    assert r.exit_code == 0 and folder.is_dir()


def test_share_revoke_purge_on_a_local_store(src: Path, tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    r = run("archive", "share", str(src), "--store", store, "--retention", "14d", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["retention"] == "14d" and data["link"].startswith("file://")
    assert verify_archive(Path(data["link"][7:]), data["password"])
    r = run("archive", "share", str(src), "--store", store, "--private")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("link: file://")
    assert len(PW_RE.findall(r.stdout)) == 1
    r = run("archive", "revoke", data["object_key"], "--store", store)
    assert r.exit_code == 0 and "revoked" in r.stdout
    r = run("archive", "revoke", data["object_key"], "--store", store, "--json")
    assert json.loads(r.stdout)["deleted"] is False
    r = run("archive", "purge", "--store", store)
    assert r.exit_code == 0 and "removed 0" in r.stdout


def test_share_with_stdin_password_prints_no_password(src: Path, tmp_path: Path) -> None:
    r = run("archive", "share", str(src), "--store", f"file://{tmp_path}/s", "--password-stdin",
            input="supplied-password-xyz\n")
    assert r.exit_code == 0, r.output
    assert "password:" not in r.stdout and "supplied-password-xyz" not in r.output


@pytest.mark.parametrize("args,code", [
    (["archive", "share", "SRC", "--store", "ftp://nope"], 3),
    (["archive", "revoke", "../../etc/passwd", "--store", "file:///tmp/x"], 3),
    (["archive", "create", "OUT", "SRC", "--password-stdin"], 2),
    (["archive", "share", "SRC", "--store", "memory://x", "--retention", "1d"], 2),
])
def test_errors_have_documented_exit_codes(src: Path, tmp_path: Path, args: list[str],
                                           code: int) -> None:
    args = [str(src) if a == "SRC" else str(tmp_path / "o.zip") if a == "OUT" else a
            for a in args]
    r = CliRunner().invoke(cli, args, input="")
    assert r.exit_code == code, r.output


def test_short_supplied_password_is_refused_without_echo(src: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["archive", "create", str(tmp_path / "o.zip"), str(src),
                                 "--password-stdin"], input="short1\n")
    assert r.exit_code == 1
    assert "at least 12" in r.output and "short1" not in r.output
    assert not (tmp_path / "o.zip").exists()
