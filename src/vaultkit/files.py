"""Safe file writes and key-file permission checks, shared by every capability.

* :func:`atomic_write` writes to a temporary file in the same directory,
  fsyncs it, renames it over the target and fsyncs the directory, so a crash
  leaves either the old file or the new one, never half of either.
* :func:`write_private` does the same with mode 0600 from the first byte (the
  temporary file is created 0600, so there is no window where it is readable).
* :func:`check_private_file` refuses key files that group or others can read,
  the same rule OpenSSH applies to ``~/.ssh/id_*``.
* :func:`file_lock` is an advisory ``flock`` for read-modify-write sequences
  across processes.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, InsecureFileError, NotFoundError, StorageError


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` durable (after :func:`atomic_write` ``sync_dir=False``)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse O_RDONLY on dirs
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def make_parents(directory: Path, mode: int, *, exact: bool = False) -> Path:
    """``mkdir -p`` whose new directories get at most ``mode`` whatever the umask
    (``exact``: exactly ``mode``).

    ``mkdir`` alone takes ``0777 & ~umask``: under ``umask 000`` a world-writable folder.
    Each directory created here is clamped to ``mode`` (a stricter umask still applies
    unless ``exact``); existing ones are left alone.
    """
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=mode)
        except FileExistsError:
            continue  # another process made it first: its mode is its business
        except OSError as exc:
            raise StorageError(f"could not create {new.name}: {exc.strerror}", source="file",
                               reference=str(new)) from exc
        new.chmod(mode if exact else stat.S_IMODE(new.stat().st_mode) & mode)
    return directory


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644,
                 sync_dir: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync dir).

    ``sync_dir=False`` leaves the directory fsync to the caller, who writes many files
    into one directory and calls :func:`fsync_dir` once (bulk certificate issuance).
    """
    import tempfile  # O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600, a random name

    target = Path(path)
    # A folder made for a private file is private too; otherwise 0755 at most.
    make_parents(target.parent, 0o700 if not mode & 0o077 else 0o755)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"could not write {target.name}: {exc.strerror}", source="file",
                           reference=str(target)) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise StorageError(
                f"could not write {target.name}: {exc.strerror or type(exc).__name__}",
                source="file",
                reference=str(target),
            ) from exc
        raise
    if sync_dir:
        fsync_dir(target.parent)
    return target


def write_private(path: str | os.PathLike[str], data: bytes, *, sync_dir: bool = True) -> Path:
    """Atomically write a private file with mode 0600 (keys, key files, wrapped keysets)."""
    return atomic_write(path, data, mode=0o600, sync_dir=sync_dir)


def check_private_file(path: str | os.PathLike[str]) -> os.stat_result:
    """Refuse a private key file that is not a regular file or that group/others can access.

    Raises :class:`InsecureFileError` naming the file and its mode, and
    :class:`NotFoundError` if it does not exist.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise NotFoundError("key file not found", source="file", reference=str(p)) from exc
    except OSError as exc:
        raise StorageError(
            f"cannot stat key file: {exc.strerror}", source="file", reference=str(p)
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise InsecureFileError("key file is not a regular file", source="file", reference=str(p))
    if st.st_mode & 0o077:
        raise InsecureFileError(
            f"key file has mode {stat.S_IMODE(st.st_mode):04o}; it must not be readable by group "
            f"or others (run: chmod 600 {p})",
            source="file",
            reference=str(p),
        )
    return st


def read_private(path: str | os.PathLike[str]) -> bytes:
    """Read a private file after :func:`check_private_file` accepts it."""
    check_private_file(path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StorageError(
            f"cannot read key file: {exc.strerror}", source="file", reference=str(path)
        ) from exc


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created 0600) for the block."""
    import fcntl

    lock_path = Path(path)
    make_parents(lock_path.parent, 0o700)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open lock file: {exc.strerror}", reference=str(path)) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


__all__ = ["atomic_write", "check_private_file", "file_lock", "fsync_dir", "make_parents",
           "read_private", "write_private"]
