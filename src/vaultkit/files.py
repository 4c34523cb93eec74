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
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, InsecureFileError, NotFoundError, StorageError


def _fsync_dir(directory: Path) -> None:
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


def create_temp(target: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """A new, empty 0600 file next to ``target``: ``(descriptor, path)``.

    What :func:`tempfile.mkstemp` does (``O_CREAT | O_EXCL | O_NOFOLLOW``, a random
    name, another on collision), without importing ``tempfile``, which pulls in
    ``shutil``, ``bz2``, ``lzma`` and ``random``: milliseconds of every
    ``vaultkit ca issue``. Same directory as ``target``, so a rename is atomic.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        name = os.path.join(target.parent, f".{target.name}.{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target.parent))


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = create_temp(target)
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
    _fsync_dir(target.parent)
    return target


def write_private(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write a private file with mode 0600 (keys, key files, wrapped keysets)."""
    return atomic_write(path, data, mode=0o600)


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
    lock_path.parent.mkdir(parents=True, exist_ok=True)
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


__all__ = ["atomic_write", "check_private_file", "file_lock", "read_private", "write_private"]
