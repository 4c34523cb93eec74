"""Inputs: plan every entry before the first byte is written, then read each file so that
it cannot have been swapped in between.

Planning expands files, folders and ``(name, chunks)`` items into :class:`PlannedEntry`
values with checked, NFC-normalised, unique names, and refuses FIFOs, sockets, devices
and symlinks inside folders. A file entry remembers its device and inode;
:func:`open_planned` opens it ``O_NOFOLLOW | O_NONBLOCK`` and refuses anything that is not
that same regular file (a symlink to ``~/.ssh/id_ed25519`` or a FIFO swapped in by
another local user between the two steps).

>>> [e.name for e in plan_entries([("chat/log.jsonl", [b"{}"])])]
['chat/log.jsonl']
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ..errors import ArchiveError, ConfigError, UnsafeEntryNameError
from .names import check_entry_name

#: Files are read in pieces of this size.
CHUNK = 1024 * 1024
#: Small chunks from iterables are gathered up to this size before they are written.
COALESCE = 64 * 1024

ChunkSource = Iterable[bytes | bytearray | memoryview | str]
InputItem = str | os.PathLike[str] | tuple[str, ChunkSource]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class PlannedEntry:
    """One entry, checked. A file entry remembers the device and inode it was planned
    with: what is opened later must be that same regular file (see :func:`open_planned`)."""

    name: str
    path: Path | None = None
    chunks: ChunkSource | None = None
    size: int | None = None
    dev: int | None = None
    ino: int | None = None


def plan_entries(inputs: Iterable[InputItem | PlannedEntry]) -> list[PlannedEntry]:
    """Expand files, folders and ``(name, chunks)`` into checked, unique entry names."""
    planned: list[PlannedEntry] = []
    for item in inputs:
        if isinstance(item, PlannedEntry):  # already planned (share() plans before uploading)
            planned.append(item)
            continue
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str):
                raise ArchiveError("an iterable entry must be a (name, chunks) tuple")
            name, chunks = item
            if isinstance(chunks, AsyncIterable):
                raise ConfigError("entry chunks are an async iterator: use "
                                  "`await vaultkit.archive.ashare(...)`", reference=name[:100])
            if isinstance(chunks, (bytes, str)):
                chunks = [chunks]
            planned.append(PlannedEntry(check_entry_name(name), chunks=chunks))
            continue
        planned.extend(_plan_path(Path(os.fspath(item))))
    # Names are stored in NFC, the form Windows and Linux tools write; macOS file names
    # come back from the file system in NFD.
    planned = [p if unicodedata.is_normalized("NFC", p.name)
               else replace(p, name=unicodedata.normalize("NFC", p.name)) for p in planned]
    seen: set[str] = set()
    for p in planned:
        # Case-insensitive file systems (Windows, macOS) would merge "A" and "a", and macOS
        # (NFD) or a Windows tool would merge "é" (U+00E9) and "e" + U+0301: compare the
        # NFC form of the case-folded name.
        key = unicodedata.normalize("NFC", p.name.casefold())
        if key in seen:
            raise UnsafeEntryNameError("duplicate entry name", reference=p.name)
        seen.add(key)
    if not planned:
        raise ArchiveError("nothing to archive: no input files")
    return planned


def _special(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None


def _plan_path(path: Path) -> list[PlannedEntry]:
    try:
        st = path.stat()  # an explicitly named path may be a symlink: the caller chose it
        # ... and it is resolved now, so what is opened later is what was planned.
        real = Path(os.path.realpath(path))
    except OSError as exc:
        raise ArchiveError(f"cannot read input: {exc.strerror}", reference=str(path)) from exc
    if stat.S_ISREG(st.st_mode):
        return [PlannedEntry(check_entry_name(path.name), path=real, size=st.st_size,
                             dev=st.st_dev, ino=st.st_ino)]
    if not stat.S_ISDIR(st.st_mode):
        kind = _special(st.st_mode)
        raise ArchiveError(f"input is {kind}, not a regular file or folder" if kind else
                           "input is not a regular file or folder", reference=str(path))
    base = path.resolve().name
    out: list[PlannedEntry] = []
    for root, dirs, files in os.walk(path, onerror=_walk_error):
        dirs.sort()
        for fname in sorted(files):
            full = Path(root) / fname
            rel = full.relative_to(path).as_posix()
            name = f"{base}/{rel}" if base else rel
            lst = full.lstat()
            # Inside a folder, a symlink could point anywhere (~/.ssh): refuse, never follow.
            if stat.S_ISLNK(lst.st_mode):
                raise ArchiveError("symbolic links inside folders are not archived",
                                   reference=str(full))
            if not stat.S_ISREG(lst.st_mode):
                # Reading a FIFO blocks forever, a device may never end: refuse at planning.
                kind = _special(lst.st_mode) or "not a regular file"
                raise ArchiveError(f"{kind} inside an input folder is not archived",
                                   reference=str(full))
            out.append(PlannedEntry(check_entry_name(name), path=full, size=lst.st_size,
                                    dev=lst.st_dev, ino=lst.st_ino))
        for d in dirs:
            if (Path(root) / d).is_symlink():
                raise ArchiveError("symbolic links inside folders are not archived",
                                   reference=str(Path(root) / d))
    return out


def _walk_error(exc: OSError) -> None:
    raise ArchiveError(f"cannot read input folder: {exc.strerror}",
                       reference=str(exc.filename)) from exc


def total_input_bytes(inputs: Sequence[InputItem]) -> int | None:
    """The number of input bytes if every input is a file or folder (for progress bars)."""
    total = 0
    for p in plan_entries(inputs):
        if p.size is None:
            return None
        total += p.size
    return total


#: O_NOFOLLOW: a symlink swapped in for the file fails with ELOOP instead of being
#: followed (to ~/.ssh/id_ed25519, say). O_NONBLOCK: a FIFO swapped in opens at once
#: instead of hanging until a writer appears; fstat then refuses it. O_NOCTTY: a terminal
#: device never becomes our controlling terminal.
_OPEN_FLAGS = (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
               | getattr(os, "O_CLOEXEC", 0))


def open_planned(entry: PlannedEntry) -> IO[bytes]:
    """Open a planned file so that it cannot have been swapped since planning.

    The descriptor is checked with ``fstat`` (not the path, which could change again): it
    must be a regular file with the planned device and inode. Anything else raises
    :class:`ArchiveError` before a byte is read.
    """
    assert entry.path is not None  # noqa: S101 - only file entries are opened
    where = str(entry.path)
    try:
        fd = os.open(entry.path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArchiveError("input was replaced by a symbolic link since planning",
                               reference=where) from exc
        raise ArchiveError(f"cannot read input: {exc.strerror or type(exc).__name__}",
                           reference=where) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _special(st.st_mode) or "not a regular file"
            raise ArchiveError(f"input changed since planning: it is now {kind}",
                               reference=where)
        if entry.ino is not None and (st.st_dev, st.st_ino) != (entry.dev, entry.ino):
            raise ArchiveError("input was replaced by another file since planning",
                               reference=where)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _iter_chunks(entry: PlannedEntry) -> Iterator[bytes]:
    if entry.path is not None:
        try:
            with open_planned(entry) as fh:
                while data := fh.read(CHUNK):
                    yield data
        except OSError as exc:
            raise ArchiveError(f"cannot read input: {exc.strerror or type(exc).__name__}",
                               reference=str(entry.path)) from exc
        return
    assert entry.chunks is not None  # noqa: S101 - PlannedEntry has path or chunks
    # Small chunks (one JSONL line per chat message) are gathered into COALESCE-byte
    # writes: every write costs a deflate call, an AES call and an HMAC update, and per
    # 150-byte message that overhead was most of the work (and of the GIL time).
    pending = bytearray()
    try:
        for item in entry.chunks:
            chunk: object = item
            if isinstance(chunk, str):
                data = chunk.encode("utf-8")
            elif isinstance(chunk, (bytes, bytearray, memoryview)):
                data = bytes(chunk)
            else:
                raise ArchiveError(
                    f"entry chunks must be bytes or str, not {type(chunk).__name__}",
                    reference=entry.name)
            if not pending and len(data) >= COALESCE:
                yield data
                continue
            pending += data
            if len(pending) >= COALESCE:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)
    except OSError as exc:
        raise ArchiveError(f"cannot read input: {exc.strerror or type(exc).__name__}",
                           reference=entry.name) from exc


__all__ = ["CHUNK", "ChunkSource", "InputItem", "PlannedEntry", "Progress", "open_planned",
           "plan_entries", "total_input_bytes"]
