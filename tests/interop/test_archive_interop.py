"""7-Zip and libarchive (bsdtar) open vaultkit archives; vaultkit reads 7-Zip's.

The password goes to 7zz/bsdtar on argv here (``-p...``/``--passphrase``): acceptable for
a throwaway test password, never done by vaultkit itself.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest

from harness.servers import find_binary
from vaultkit.archive import verify_archive, write_archive
from vaultkit.errors import ArchivePasswordError

pytestmark = pytest.mark.interop


def need(name: str) -> str:
    path = find_binary(name)
    if path is None:
        pytest.skip(f"{name} not installed: apt-get install 7zip libarchive-tools")
    return path


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[list[object], dict[str, str]]:
    src = tmp_path / "src" / "export"
    (src / "media").mkdir(parents=True)
    rnd = random.Random(6)
    log = "".join(f'{{"id": {i}, "text": "message {rnd.random()}"}}\n' for i in range(40_000))
    (src / "media" / "photo.bin").write_bytes(os.urandom(700_000))
    (src / "readme.txt").write_text("hello\n")
    entries: list[object] = [src, ("chat/messages.jsonl", (log[i:i + 9000]
                                                         for i in range(0, len(log), 9000)))]
    expected = {
        "export/media/photo.bin": hashlib.sha256((src / "media/photo.bin").read_bytes()).hexdigest(),
        "export/readme.txt": hashlib.sha256(b"hello\n").hexdigest(),
        "chat/messages.jsonl": hashlib.sha256(log.encode()).hexdigest(),
    }
    return entries, expected


def sevenzip_extract(archive: Path, dest: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    args = [need("7zz"), "x", "-y", f"-o{dest}", str(archive)]
    if password is not None:
        args.insert(2, f"-p{password}")
    else:
        args.insert(2, "-p")  # an empty password: never prompt
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("private", [False, True])
def test_7zz_extracts_vaultkit_archives(tmp_path: Path, inputs: tuple[list[object],
                                        dict[str, str]], private: bool) -> None:
    entries, expected = inputs
    archive = tmp_path / "out.zip"
    info = write_archive(entries, archive, private=private)  # type: ignore[arg-type]
    pw = info.password.reveal()
    out = tmp_path / "x"
    r = sevenzip_extract(archive, out, pw)
    assert r.returncode == 0, r.stdout + r.stderr
    if private:
        assert digests(out).keys() == {"payload.zip"}
        inner = tmp_path / "inner"
        r = sevenzip_extract(out / "payload.zip", inner, None)
        assert r.returncode == 0, r.stdout + r.stderr
        out = inner
    assert digests(out) == expected


@pytest.mark.parametrize("private", [False, True])
def test_bsdtar_extracts_vaultkit_archives(tmp_path: Path, inputs: tuple[list[object],
                                           dict[str, str]], private: bool) -> None:
    bsdtar = need("bsdtar")
    entries, expected = inputs
    archive = tmp_path / "out.zip"
    info = write_archive(entries, archive, private=private)  # type: ignore[arg-type]
    out = tmp_path / "x"
    out.mkdir()
    # Read from stdin: libarchive's streaming reader must cope with data descriptors.
    with archive.open("rb") as fh:
        r = subprocess.run([bsdtar, "-xf", "-", "--passphrase", info.password.reveal(),
                            "-C", str(out)], stdin=fh, capture_output=True, text=True,
                           timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    if private:
        inner = tmp_path / "inner"
        inner.mkdir()
        r = subprocess.run([bsdtar, "-xf", str(out / "payload.zip"), "-C", str(inner)],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        out = inner
    assert digests(out) == expected


def test_wrong_password_rejected_by_7zz_bsdtar_and_vaultkit(tmp_path: Path) -> None:
    archive = tmp_path / "out.zip"
    write_archive([("a.txt", [b"top secret\n" * 100])], archive)
    wrong = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"
    r = sevenzip_extract(archive, tmp_path / "x", wrong)
    assert r.returncode != 0
    assert "Wrong password" in r.stdout + r.stderr
    assert not (tmp_path / "x" / "a.txt").exists() or (tmp_path / "x" / "a.txt").read_bytes() \
        != b"top secret\n" * 100
    (tmp_path / "b").mkdir()
    r = subprocess.run([need("bsdtar"), "-xf", str(archive), "--passphrase", wrong, "-C",
                        str(tmp_path / "b")], capture_output=True, text=True, check=False)
    assert r.returncode != 0 and "passphrase" in r.stderr.lower()
    with pytest.raises(ArchivePasswordError):
        verify_archive(archive, wrong)


def test_vaultkit_reads_what_7zz_writes_with_aes256(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    payload = os.urandom(200_000) + b"text " * 50_000
    (src / "data.bin").write_bytes(payload)
    archive = tmp_path / "7z.zip"
    pw = "SEVEN-ZIPAE-S256T-ESTPW-XXXXX"
    r = subprocess.run([need("7zz"), "a", "-tzip", "-mem=AES256", "-mx=5", f"-p{pw}",
                        str(archive), str(src / "data.bin")], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    (d,) = verify_archive(archive, pw)
    assert d.name == "data.bin" and d.sha256 == hashlib.sha256(payload).hexdigest()
    with pytest.raises(ArchivePasswordError):
        verify_archive(archive, "WRONG-WRONG-WRONG-WRONG-WRONG")
