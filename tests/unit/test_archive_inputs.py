"""Inputs that cannot be swapped between planning and reading, special files refused at
planning, and names checked after NFC normalisation.

The test plays the attacker between the two steps: it calls ``plan_entries`` itself,
swaps the file, then hands the plan to ``write_archive``/``share``.
"""

from __future__ import annotations

import os
import socket
import time
import unicodedata
from pathlib import Path

import pytest

from vaultkit.archive import check_entry_name, share, verify_archive, write_archive
from vaultkit.archive.inputs import plan_entries
from vaultkit.errors import ArchiveError, UnsafeEntryNameError
from vaultkit.storage import LocalStore

PW = "input-tests-password-1"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "notes.txt").write_text("harmless notes\n")
    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    secret.chmod(0o600)
    return d


def everything(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_symlink_swapped_in_after_planning_is_refused(tree: Path, tmp_path: Path) -> None:
    planned = plan_entries([tree])
    target = tree / "notes.txt"
    target.unlink()
    target.symlink_to(tmp_path / "id_ed25519")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArchiveError, match="symbolic link"):
        write_archive(planned, out / "x.zip", password=PW)
    assert everything(out) == []


def test_fifo_swapped_in_after_planning_is_refused_fast(tree: Path, tmp_path: Path) -> None:
    planned = plan_entries([tree])
    target = tree / "notes.txt"
    target.unlink()
    os.mkfifo(target)
    store = LocalStore(tmp_path / "store")
    start = time.monotonic()
    with pytest.raises(ArchiveError, match="FIFO"):
        share(planned, store=store)  # a blocking open() would hang here forever
    assert time.monotonic() - start < 5
    assert everything(tmp_path / "store") == [] or all(
        (tmp_path / "store" / p).is_dir() for p in everything(tmp_path / "store"))


def test_file_replaced_by_another_file_is_refused(tree: Path, tmp_path: Path) -> None:
    planned = plan_entries([tree / "notes.txt"])
    replacement = tmp_path / "other"
    replacement.write_text("different file, same name\n")
    os.replace(replacement, tree / "notes.txt")  # a new inode under the planned name
    with pytest.raises(ArchiveError, match="replaced by another file"):
        write_archive(planned, tmp_path / "x.zip", password=PW)
    assert not (tmp_path / "x.zip").exists()


def test_unchanged_plan_and_named_symlink_still_work(tree: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tree / "notes.txt")  # named explicitly: the caller chose it
    planned = plan_entries([tree, link])
    write_archive(planned, tmp_path / "ok.zip", password=PW)
    assert {d.name for d in verify_archive(tmp_path / "ok.zip", PW)} == {
        "in/notes.txt", "link.txt"}


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_special_files_inside_folders_are_refused_at_planning(tree: Path, tmp_path: Path,
                                                              kind: str) -> None:
    special = tree / "special"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(special))
    try:
        store = LocalStore(tmp_path / "store")
        with pytest.raises(ArchiveError, match="FIFO" if kind == "fifo" else "socket"):
            share([tree], store=store)
        assert not (tmp_path / "store").exists()  # refused before the upload was opened
        with pytest.raises(ArchiveError, match="FIFO" if kind == "fifo" else "socket"):
            write_archive([special], tmp_path / "x.zip", password=PW)  # named directly
        assert not (tmp_path / "x.zip").exists()
    finally:
        if kind == "socket":
            sock.close()


def test_device_named_directly_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="device"):
        write_archive(["/dev/zero"], tmp_path / "x.zip", password=PW)
    assert list(tmp_path.iterdir()) == []


def test_names_are_nfc_normalised_before_the_duplicate_check(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    assert unicodedata.normalize("NFC", nfd) == nfc and nfc != nfd
    with pytest.raises(UnsafeEntryNameError, match="duplicate"):
        plan_entries([(nfc, [b"1"]), (nfd, [b"2"])])
    with pytest.raises(UnsafeEntryNameError, match="duplicate"):
        plan_entries([("CAF\u00c9.txt", [b"1"]), (nfd, [b"2"])])
    (entry,) = plan_entries([(nfd, [b"x"])])
    assert entry.name == nfc  # stored in NFC
    write_archive([(nfd, [b"x"])], tmp_path / "n.zip", password=PW)
    assert [d.name for d in verify_archive(tmp_path / "n.zip", PW)] == [nfc]


@pytest.mark.parametrize("name", [
    "\u3164", "a\u3164b.txt", "\u115f.txt", "x\u1160", "\u2800", "doc\u2800.txt",
    "\uffa0", "a\u00adb", "a\u034fb", "a\ufe0fb", "a\u00a0b", "a\u3000b", "a\u2028b",
    "dir/\u200b/x",
])
def test_invisible_and_filler_characters_are_refused(name: str) -> None:
    with pytest.raises(UnsafeEntryNameError, match="invisible"):
        check_entry_name(name)


@pytest.mark.parametrize("name", ["COM\u00b9", "com\u00b2.txt", "LPT\u00b3.log", "dir/lpt\u00b9",
                                  "COM0", "LPT0.txt", "NUL .txt"])
def test_windows_device_names_with_superscript_digits_are_refused(name: str) -> None:
    with pytest.raises(UnsafeEntryNameError, match="device"):
        check_entry_name(name)


@pytest.mark.parametrize("name", ["COM10.txt", "computer.txt", "x\u00b9.txt", "a b.txt",
                                  "\ud55c\uad6d\uc5b4.txt"])
def test_ordinary_names_still_pass(name: str) -> None:
    assert check_entry_name(name) == name
