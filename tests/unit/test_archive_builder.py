"""The streaming AES-256 zip writer: round trips, neutral metadata, bounded memory, failures."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import pyzipper

from vaultkit.archive import builder, inputs, verify_archive, write_archive
from vaultkit.archive._deflate import ParallelDeflater
from vaultkit.errors import ArchiveError, ArchivePasswordError

PW = "TEST0-PASS0-WORD0-ABCDE-FGHJK"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_blob(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = [b"alpha", b"bravo", b"chat", b"message", b"hello", b"vault", b"kit", b"zip"]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])


class PipeLike:
    """A write-only sink with no seek() and no tell(), like a pipe or a socket."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: Any) -> int:
        self.buf += data
        return len(data)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n" * 1000)
    (root / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (root / "empty.txt").write_bytes(b"")
    return root


def test_round_trip_files_folders_and_iterables(tree: Path, tmp_path: Path) -> None:
    log = text_blob(3_000_000)
    chunks = [log[i:i + 70_000] for i in range(0, len(log), 70_000)]
    out = tmp_path / "out.zip"
    info = write_archive([tree, tree / "a.txt",
                          ("chat/messages.jsonl", iter(chunks)),
                          ("notes.txt", ["héllo ", "wörld"])], out, password=PW)
    assert info.size == out.stat().st_size
    assert info.sha256 == sha(out.read_bytes())
    assert info.entries == 6 and not info.password_generated
    got = {d.name: d.sha256 for d in verify_archive(out, PW)}
    assert got == {
        "docs/a.txt": sha((tree / "a.txt").read_bytes()),
        "docs/empty.txt": sha(b""),
        "docs/sub/b.bin": sha((tree / "sub" / "b.bin").read_bytes()),
        "a.txt": sha((tree / "a.txt").read_bytes()),
        "chat/messages.jsonl": sha(log),
        "notes.txt": sha("héllo wörld".encode()),
    }
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_non_seekable_output_matches_and_uses_data_descriptors() -> None:
    sink = PipeLike()
    info = write_archive([("x.txt", [b"data" * 1000])], sink, password=PW)
    raw = bytes(sink.buf)
    assert info.sha256 == sha(raw) and info.size == len(raw)
    assert [d.name for d in verify_archive(io.BytesIO(raw), PW)] == ["x.txt"]
    with pyzipper.AESZipFile(io.BytesIO(raw)) as zf:
        assert zf.infolist()[0].flag_bits & 0x08  # sizes follow the data


def test_metadata_is_neutral_ae2_aes256_zip64() -> None:
    raw = io.BytesIO()
    write_archive([("a.txt", [b"secret contents " * 100]), ("b/c.txt", [b"x"])], raw,
                  password=PW)
    with pyzipper.AESZipFile(io.BytesIO(raw.getvalue())) as zf:
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o600
            assert info.create_system == 3
            assert info.comment == b""
            assert info.CRC == 0  # AE-2: no plaintext CRC in the clear
            assert info.wz_aes_version == 2 and info.wz_aes_strength == 3
            assert _extra_ids(info.extra) <= {0x9901, 0x0001}
        assert zf.comment == b""
    # Every local header carries a zip64 extra (0x0001) and the AES extra (0x9901) only.
    data = raw.getvalue()
    pos = data.find(b"PK\x03\x04")
    n = 0
    while pos != -1:
        name_len, extra_len = struct.unpack("<HH", data[pos + 26:pos + 30])
        extra = data[pos + 30 + name_len:pos + 30 + name_len + extra_len]
        assert _extra_ids(extra) == {0x0001, 0x9901}
        n += 1
        pos = data.find(b"PK\x03\x04", pos + 4)
    assert n == 2


def _extra_ids(extra: bytes) -> set[int]:
    ids, i = set(), 0
    while i + 4 <= len(extra):
        hid, ln = struct.unpack("<HH", extra[i:i + 4])
        ids.add(hid)
        i += 4 + ln
    return ids


def test_private_archive_hides_names_and_sizes(tree: Path) -> None:
    raw = io.BytesIO()
    info = write_archive([tree, ("secret-plan.txt", [b"x" * 5000])], raw, password=PW,
                         private=True)
    assert info.private
    data = raw.getvalue()
    assert b"secret-plan" not in data and b"b.bin" not in data
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        (outer,) = zf.infolist()
        assert outer.filename == "payload.zip" and outer.compress_type == 0
    names = {d.name for d in verify_archive(io.BytesIO(data), PW)}
    assert names == {"docs/a.txt", "docs/empty.txt", "docs/sub/b.bin", "secret-plan.txt"}


def test_generated_password_is_returned_once_as_a_secret() -> None:
    raw = io.BytesIO()
    info = write_archive([("a", [b"1"])], raw)
    assert info.password_generated
    assert info.password.reveal() not in repr(info)
    assert verify_archive(io.BytesIO(raw.getvalue()), info.password)[0].name == "a"


def test_wrong_password_and_tampering_are_rejected() -> None:
    raw = io.BytesIO()
    write_archive([("a.txt", [text_blob(50_000)])], raw, password=PW)
    with pytest.raises(ArchivePasswordError) as err:
        verify_archive(io.BytesIO(raw.getvalue()), "WRONG-WRONG-WRONG-WRONG-WRONG")
    assert str(err.value) == "wrong password or corrupted archive"
    data = bytearray(raw.getvalue())
    data[200] ^= 0x40  # inside the first entry's ciphertext
    with pytest.raises(ArchivePasswordError):
        verify_archive(io.BytesIO(bytes(data)), PW)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_does_not_change_content(threads: int) -> None:
    blob = text_blob(2_500_000, seed=threads)
    raw = io.BytesIO()
    write_archive([("t.txt", [blob])], raw, password=PW, threads=threads)
    assert verify_archive(io.BytesIO(raw.getvalue()), PW)[0].sha256 == sha(blob)


@pytest.mark.parametrize("size", [0, 1, 32 * 1024, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
                                  3 * (1 << 20) + 12345])
def test_parallel_deflate_is_one_valid_stream(size: int) -> None:
    blob = text_blob(size, seed=size) if size else b""
    with ThreadPoolExecutor(2) as pool:
        d = ParallelDeflater(6, pool, max_pending=2)
        out = b"".join(d.compress(blob[i:i + 100_000]) for i in range(0, len(blob), 100_000))
        out += d.flush()
    dec = zlib.decompressobj(-15)
    assert dec.decompress(out) + dec.flush() == blob
    assert dec.eof and dec.unused_data == b""
    # The ratio stays close to single-stream zlib.
    single = zlib.compressobj(6, zlib.DEFLATED, -15)
    ref = single.compress(blob) + single.flush()
    assert len(out) <= len(ref) * 1.01 + 64


def test_memory_stays_bounded_for_a_large_entry() -> None:
    """48 MiB through the writer; Python-level peak stays a few MiB (never a whole entry)."""
    piece = text_blob(1 << 20)

    def gen() -> Iterator[bytes]:
        for _ in range(48):
            yield piece

    tracemalloc.start()
    try:
        write_archive([("big.jsonl", gen())], PipeLike.__new__(_Discard), password=PW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, peak


class _Discard(PipeLike):
    def write(self, data: Any) -> int:
        return len(data)


def test_unreadable_input_mid_stream_leaves_no_output(tree: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))

    class FailingRead(io.BytesIO):
        def __init__(self, real: Any) -> None:
            super().__init__()
            self.real, self.reads = real, 0

        def read(self, n: int | None = -1) -> bytes:
            self.reads += 1
            if self.reads == 2:
                raise OSError(errno.EIO, "Input/output error")
            return bytes(self.real.read(n))

        def close(self) -> None:
            self.real.close()
            super().close()

    real_open = inputs.open_planned
    monkeypatch.setattr(inputs, "open_planned",
                        lambda e: FailingRead(real_open(e)) if e.path == big.resolve()
                        else real_open(e))
    outdir = tmp_path / "out"
    outdir.mkdir()
    with pytest.raises(ArchiveError, match="cannot read input: Input/output error") as err:
        write_archive([tree, big], outdir / "x.zip", password=PW)
    assert err.value.reference == str(big.resolve())
    assert list(outdir.iterdir()) == []


def test_failing_generator_leaves_no_output(tmp_path: Path) -> None:
    def gen() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise OSError(errno.ECONNRESET, "Connection reset by peer")

    with pytest.raises(ArchiveError, match="Connection reset"):
        write_archive([("a", gen())], tmp_path / "x.zip", password=PW, private=True)
    assert list(tmp_path.iterdir()) == []


class FullDisk:
    """Wraps a real file; raises ENOSPC once more than ``limit`` bytes were written."""

    def __init__(self, fh: Any, limit: int) -> None:
        self.fh, self.limit, self.n = fh, limit, 0

    def write(self, data: Any) -> int:
        if self.n + len(data) > self.limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.n += len(data)
        return int(self.fh.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)


@pytest.mark.parametrize("private", [False, True])
def test_full_disk_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          private: bool) -> None:
    real = builder._open_temp
    monkeypatch.setattr(builder, "_open_temp",
                        lambda target: (lambda fh, tmp: (FullDisk(fh, 200_000), tmp))(
                            *real(target)))
    with pytest.raises(ArchiveError, match="No space left on device"):
        write_archive([("r.bin", [os.urandom(1 << 20)])], tmp_path / "x.zip", password=PW,
                      private=private)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_on_a_stream_is_an_archive_error() -> None:
    with pytest.raises(ArchiveError, match="No space left"):
        write_archive([("r.bin", [os.urandom(1 << 20)])], FullDisk(io.BytesIO(), 50_000),
                      password=PW)


def test_existing_output_is_kept_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.zip"
    target.write_bytes(b"previous")

    def gen() -> Iterator[bytes]:
        yield b"a"
        raise OSError(errno.EIO, "boom")

    with pytest.raises(ArchiveError):
        write_archive([("a", gen())], target, password=PW)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.zip"]


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="No such file"):
        write_archive([tmp_path / "missing"], io.BytesIO(), password=PW)
    with pytest.raises(ArchiveError, match="nothing to archive"):
        write_archive([], io.BytesIO(), password=PW)
    with pytest.raises(ArchiveError, match="bytes or str"):
        write_archive([("a", [123])], io.BytesIO(), password=PW)  # type: ignore[list-item]
    d = tmp_path / "d"
    d.mkdir()
    (d / "link").symlink_to("/etc/hostname")
    with pytest.raises(ArchiveError, match="symbolic links"):
        write_archive([d], io.BytesIO(), password=PW)
    with pytest.raises(ArchiveError, match="folder"):
        write_archive([("a", [b"1"])], tmp_path, password=PW)


def test_progress_counts_input_bytes(tree: Path) -> None:
    seen: list[int] = []
    write_archive([tree], _Discard(), password=PW, progress=seen.append)
    assert sum(seen) == builder.total_input_bytes([tree])
