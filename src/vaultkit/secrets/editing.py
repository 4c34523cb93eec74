"""``vaultkit secrets edit``: the plaintext exists only while the editor runs, and only in RAM.

Where the plaintext goes: a fresh directory, mode 0700, in the first usable of
``$VAULTKIT_EDIT_DIR`` (explicit choice), ``/dev/shm`` (RAM-backed tmpfs),
``$XDG_RUNTIME_DIR`` (per-user tmpfs on systemd machines), the system temp
directory. The file inside is 0600.

When it is removed: on every way out of :func:`plaintext_file` -- the editor
succeeding or failing, an exception, and SIGINT, SIGTERM and SIGHUP (closing
the terminal), which are turned into an exception for the duration so the
``finally`` block runs; the editor is killed first. The content is overwritten
with zeros before the unlink (tmpfs pages never reach a disk, but a temp dir
on disk might). ``kill -9`` of vaultkit is the one way to leave it behind, the
same limit sops has.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

SHM = "/dev/shm"  # noqa: S108 - RAM-backed, the point of choosing it
CLEANUP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class EditInterrupted(Exception):
    """A signal arrived while the plaintext existed; the files are gone when this propagates."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def edit_dir_candidates() -> list[str]:
    found = [os.environ.get("VAULTKIT_EDIT_DIR"), SHM, os.environ.get("XDG_RUNTIME_DIR"),
             tempfile.gettempdir()]
    return [c for c in found if c]


def private_dir() -> Path:
    """A fresh 0700 directory in the first writable candidate (see the module docs)."""
    for base in edit_dir_candidates():
        if os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            try:
                path = Path(tempfile.mkdtemp(prefix="vaultkit-edit-", dir=base))
            except OSError:
                continue
            path.chmod(0o700)  # mkdtemp says 0700; say it whatever the platform
            return path
    raise OSError("no writable directory for the plaintext")  # pragma: no cover


class _Interrupts:
    """The signal handler while the plaintext exists: raise, or, once the cleanup has
    begun, only remember the signal, so that a second Ctrl-C (or SIGHUP then SIGTERM
    when a terminal closes) cannot cut the wipe short and leave the file behind."""

    def __init__(self) -> None:
        self.cleaning = False
        self.late: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.cleaning:
            self.late = self.late or signum
            return
        raise EditInterrupted(signum)


@contextlib.contextmanager
def plaintext_file(name: str, data: bytes) -> Iterator[Path]:
    """A 0600 file in a fresh 0700 dir; overwritten and removed however the block ends."""
    previous: dict[int, object] = {}
    interrupts = _Interrupts()
    if threading.current_thread() is threading.main_thread():
        for sig_name in CLEANUP_SIGNALS:
            sig = getattr(signal, sig_name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, interrupts)
    directory: Path | None = None
    try:
        directory = private_dir()
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        interrupts.cleaning = True  # from here on a signal waits until the files are gone
        try:
            if directory is not None:
                _wipe(directory)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
    if interrupts.late is not None:
        # The block had ended normally; the signal still means "abandon the edit".
        raise EditInterrupted(interrupts.late)


def _wipe(directory: Path) -> None:
    # An editor may have replaced the file (write + rename): wipe what is there now.
    with contextlib.suppress(OSError):
        for leftover in directory.iterdir():
            if leftover.is_file() and not leftover.is_symlink():
                size = leftover.stat().st_size
                with leftover.open("r+b") as fh:
                    fh.write(b"\0" * size)
    shutil.rmtree(directory, ignore_errors=True)


__all__ = ["EditInterrupted", "edit_dir_candidates", "plaintext_file", "private_dir"]
