"""Write AES-256 (WinZip AE-2) zips as a stream, with bounded memory and neutral metadata.

Format choices (details and reasons in ``docs/archive.md``):

* **Cipher**: WinZip AE-2 via pyzipper: AES-256-CTR per entry, HMAC-SHA1-80 over the
  ciphertext, PBKDF2-HMAC-SHA1 x1000 with a fresh 16-byte salt per entry. AE-2 writes
  CRC=0, so no CRC of the plaintext is visible (AE-1 leaks it). 7-Zip, WinZip, WinRAR
  and libarchive (bsdtar) open it; Windows Explorer and Info-ZIP ``unzip`` do not.
* **Streaming**: the output is always written as a *non-seekable* stream, whatever it
  is: pyzipper then sets the data-descriptor flag and writes sizes after each entry
  instead of seeking back. One code path serves files, pipes and multipart uploads, and
  the SHA-256 of the archive is computed on the way out. Entries are read in 1 MiB
  chunks and never held whole (never ``writestr``).
* **zip64** is forced on every entry (sizes are unknown up front for iterables).
* **Neutral metadata**: every entry is dated 1980-01-01 00:00, mode 0600 (``create_system``
  Unix), no comment, no extra fields besides zip64 and the AES header (no ``UT``/``ux``
  timestamps or uid/gid like 7-Zip or bsdtar add).
* **private=True**: the real entries go into an inner, unencrypted, deflated zip which is
  streamed straight into one stored AES entry named ``payload.zip`` of the outer zip. The
  inner zip writes into the outer entry's write handle on the same thread, so there is
  no pipe, no thread and no temporary file; names, sizes and the entry count are only
  inside the encrypted data.
* **Throughput**: deflate runs on worker threads (:mod:`._deflate`, pigz's construction)
  while the calling thread encrypts, authenticates and writes.

>>> import io
>>> out = io.BytesIO()
>>> info = write_archive([("hello.txt", [b"hi"])], out)
>>> info.entries, len(info.password.reveal())
(1, 29)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ArchiveError, ArchivePasswordError, VaultkitError
from ..secret import Secret
from .inputs import (
    CHUNK,
    InputItem,
    PlannedEntry,
    Progress,
    _iter_chunks,
    open_planned,
    plan_entries,
    total_input_bytes,
)
from .names import check_entry_name
from .passwords import coerce_password

#: 1980-01-01 00:00:00, the earliest DOS date: carries no information.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o600
#: The only entry of a private archive's outer zip.
PRIVATE_PAYLOAD = "payload.zip"


class Writable(Protocol):
    def write(self, data: Any, /) -> Any: ...


@dataclass(frozen=True)
class ArchiveInfo:
    """What :func:`write_archive` wrote. ``password`` is shown once: keep it or lose it."""

    password: Secret[str] = field(repr=False)
    password_generated: bool
    size: int
    sha256: str
    entries: int
    private: bool

    def __repr__(self) -> str:
        return (f"ArchiveInfo(password=Secret('********'), size={self.size}, "
                f"sha256={self.sha256!r}, entries={self.entries}, private={self.private})")


# --- the output side --------------------------------------------------------------------


class _Sink:
    """Non-seekable, counting, hashing writer in front of the real output.

    It deliberately has no ``seek``: pyzipper then uses data descriptors and never goes
    back, so the bytes can go to a pipe or an upload, and the hash is of the final file.
    """

    def __init__(self, target: Writable) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self._hash.update(view)
        try:
            written = self._target.write(view)
            # A raw stream may take part of the buffer; finish the job.
            while isinstance(written, int) and 0 <= written < len(view):
                view = view[written:]
                written = self._target.write(view)
        except VaultkitError:
            raise
        except OSError as exc:
            raise ArchiveError(
                f"cannot write the archive: {exc.strerror or type(exc).__name__}") from exc
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        flush = getattr(self._target, "flush", None)
        if flush is not None:
            try:
                flush()
            except OSError as exc:
                raise ArchiveError(f"cannot write the archive: {exc.strerror}") from exc

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class _Adapter:
    """Lets the inner zip of a private archive write into the outer entry (write-only)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def _zip_classes(pool: ThreadPoolExecutor | None, level: int) -> tuple[Any, Any]:
    import pyzipper
    from pyzipper import zipfile as pzf

    class _WriteFile(pzf._ZipWriteFile):  # type: ignore[misc]
        def __init__(self, zf: Any, zinfo: Any, zip64: bool, encrypter: Any = None) -> None:
            super().__init__(zf, zinfo, zip64, encrypter)
            if pool is not None and zinfo.compress_type == pyzipper.ZIP_DEFLATED:
                from ._deflate import ParallelDeflater

                self._compressor = ParallelDeflater(level, pool)

    class _AESZip(pyzipper.AESZipFile):  # type: ignore[misc]
        zipwritefile_cls = _WriteFile

    class _PlainZip(pyzipper.ZipFile):  # type: ignore[misc]
        zipwritefile_cls = _WriteFile

    return _AESZip, _PlainZip


def _zinfo(name: str, compress_type: int, level: int) -> Any:
    from pyzipper.zipfile_aes import AESZipInfo

    zinfo = AESZipInfo(name, date_time=FIXED_DATE)
    zinfo.compress_type = compress_type
    zinfo._compresslevel = level
    zinfo.create_system = 3  # Unix, so the 0600 mode below means what it says everywhere
    zinfo.external_attr = FILE_MODE << 16
    zinfo.extra = b""
    zinfo.comment = b""
    return zinfo


def _abandon(*objs: Any) -> None:
    """Drop half-written pyzipper objects without their destructors writing to the output."""
    for obj in objs:
        if obj is None:
            continue
        if isinstance(obj, io.IOBase):
            with contextlib.suppress(Exception):
                comp: Any = getattr(obj, "_compressor", None)
                if hasattr(comp, "cancel"):
                    comp.cancel()
                io.BufferedIOBase.close(obj)  # mark closed; skip _ZipWriteFile.close
        else:
            obj._writing = False
            obj.fp = None


def _write_entries(zf: Any, planned: list[PlannedEntry], compress_type: int, level: int,
                   progress: Progress | None) -> None:
    for entry in planned:
        handle = zf.open(_zinfo(entry.name, compress_type, level), "w", force_zip64=True)
        try:
            for chunk in _iter_chunks(entry):
                handle.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        except BaseException:
            _abandon(handle)
            raise
        handle.close()


def _stream_archive(planned: list[PlannedEntry], sink: _Sink, password: Secret[str], *,
                    private: bool, level: int, threads: int, progress: Progress | None) -> None:
    import pyzipper

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vaultkit-deflate") \
        if threads > 1 and level > 0 else None
    aes_zip, plain_zip = _zip_classes(pool, level)
    method = pyzipper.ZIP_DEFLATED if level > 0 else pyzipper.ZIP_STORED
    outer = inner = outer_handle = None
    try:
        outer = aes_zip(sink, "w", compression=pyzipper.ZIP_STORED, encryption=pyzipper.WZ_AES)
        outer.setpassword(password.reveal().encode("ascii"))
        if not private:
            _write_entries(outer, planned, method, level, progress)
        else:
            # Stored outer entry: the inner zip is already compressed.
            outer_handle = outer.open(_zinfo(PRIVATE_PAYLOAD, pyzipper.ZIP_STORED, 0), "w",
                                      force_zip64=True)
            inner = plain_zip(_Adapter(outer_handle), "w", compression=method)
            _write_entries(inner, planned, method, level, progress)
            inner.close()
            inner = None
            outer_handle.close()
            outer_handle = None
        outer.close()
        outer = None
    except BaseException:
        _abandon(inner, outer_handle, outer)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def default_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def write_archive(
    inputs: Iterable[InputItem | PlannedEntry],
    out: str | os.PathLike[str] | Writable,
    *,
    password: Secret[str] | str | None = None,
    private: bool = False,
    compresslevel: int = 6,
    threads: int | None = None,
    progress: Progress | None = None,
) -> ArchiveInfo:
    """Write an AES-256 zip of ``inputs`` to ``out`` (a path or any writable binary stream).

    ``inputs`` holds file paths, folder paths and ``(name, iterable of bytes or str)``
    entries. With no ``password`` one is generated (:func:`generate_password`) and
    returned in :class:`ArchiveInfo`. A path ``out`` is written atomically (temporary
    file 0600, renamed on success, removed on any failure). A stream ``out`` receives
    bytes as they are made; on failure the caller discards it.

    >>> info = write_archive(["notes/"], "notes.zip", private=True)  # doctest: +SKIP
    """
    if not 0 <= compresslevel <= 9:
        raise ArchiveError("compresslevel must be 0..9")
    planned = plan_entries(inputs)
    secret, generated = coerce_password(password)
    threads = default_threads() if threads is None else max(1, threads)
    if isinstance(out, (str, os.PathLike)):
        with _atomic_output(Path(os.fspath(out))) as fh:
            sink = _Sink(fh)
            _stream_archive(planned, sink, secret, private=private, level=compresslevel,
                            threads=threads, progress=progress)
    else:
        if not hasattr(out, "write"):
            raise ArchiveError("out must be a path or a writable binary stream")
        sink = _Sink(out)
        _stream_archive(planned, sink, secret, private=private, level=compresslevel,
                        threads=threads, progress=progress)
        sink.flush()
    return ArchiveInfo(password=secret, password_generated=generated, size=sink.size,
                       sha256=sink.sha256, entries=len(planned), private=private)


def _open_temp(target: Path) -> tuple[IO[bytes], str]:
    """A 0600 temporary file next to ``target`` (same file system, so rename is atomic).

    ``mkstemp`` opens with ``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600, a random name.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    return os.fdopen(fd, "wb", buffering=CHUNK), tmp


@contextlib.contextmanager
def _atomic_output(target: Path) -> Iterator[IO[bytes]]:
    if target.is_dir():
        raise ArchiveError("output path is a folder", reference=str(target))
    try:
        fh, tmp = _open_temp(target)
    except OSError as exc:
        raise ArchiveError(f"cannot create the archive: {exc.strerror}",
                           reference=str(target)) from exc
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            fh.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ArchiveError(f"cannot write the archive: {exc.strerror}",
                               reference=str(target)) from exc
        raise


# --- reading (verification and tests; the user's side is 7-Zip) --------------------------


@dataclass(frozen=True)
class EntryDigest:
    name: str
    size: int
    sha256: str


def _open_read(source: Any, password: Secret[str] | str) -> Any:
    import pyzipper

    pw = password.reveal() if isinstance(password, Secret) else password
    try:
        zf = pyzipper.AESZipFile(source, "r")
    except (OSError, pyzipper.BadZipFile) as exc:
        raise ArchiveError("not a readable zip archive") from exc
    zf.setpassword(pw.encode("utf-8"))
    return zf


def verify_archive(source: str | os.PathLike[str] | IO[bytes], password: Secret[str] | str
                   ) -> list[EntryDigest]:
    """Read every entry (checking each HMAC) and return names, sizes and SHA-256s.

    A private archive is opened through its ``payload.zip``. A wrong password or a
    modified entry raises :class:`ArchivePasswordError`.
    """
    import pyzipper

    zf = _open_read(source, password)
    out: list[EntryDigest] = []
    try:
        with zf:
            names = zf.namelist()
            for info in zf.infolist():
                check_entry_name(info.filename)
            if names == [PRIVATE_PAYLOAD]:
                with zf.open(PRIVATE_PAYLOAD) as payload, pyzipper.ZipFile(payload) as inner:
                    for info in inner.infolist():
                        check_entry_name(info.filename)
                    out = [_hash_entry(inner, info) for info in inner.infolist()]
            else:
                out = [_hash_entry(zf, info) for info in zf.infolist()]
    except (RuntimeError, pyzipper.BadZipFile, zlib.error, EOFError) as exc:
        # pyzipper: RuntimeError("Bad password"), BadZipFile("Bad HMAC check"), or zlib
        # choking on tampered ciphertext before the HMAC is reached: one message for all.
        raise ArchivePasswordError() from exc
    return out


def _hash_entry(zf: Any, info: Any) -> EntryDigest:
    h = hashlib.sha256()
    size = 0
    with zf.open(info) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return EntryDigest(info.filename, size, h.hexdigest())


__all__ = [
    "FIXED_DATE",
    "PRIVATE_PAYLOAD",
    "ArchiveInfo",
    "EntryDigest",
    "PlannedEntry",
    "open_planned",
    "plan_entries",
    "total_input_bytes",
    "verify_archive",
    "write_archive",
]
