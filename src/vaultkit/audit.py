"""The audit trail: who did what, to which reference, when, and how it ended. Never values.

Every event goes to the ``vaultkit.audit`` logger at INFO as one JSON object,
and, when an audit file is configured (``audit_log`` in the config or
``VAULTKIT_AUDIT_LOG``), is appended to it as a JSON line. The file is created
0600 and each event is a single ``write`` on an ``O_APPEND`` descriptor, so
concurrent processes interleave whole lines.

>>> record("keys.check", target="local://default", outcome="ok")  # doctest: +SKIP

A ``Secret`` (or bytes) passed as a field is refused with ``TypeError``: the
audit trail must not become the place a value leaks.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .secret import Secret

if TYPE_CHECKING:
    from logging import Logger

#: The logger every event also goes to (at INFO).
LOGGER_NAME = "vaultkit.audit"

_lock = threading.Lock()
_path: str | None = None
_path_set = False


def configure(path: str | os.PathLike[str] | None) -> None:
    """Send audit events to ``path`` as JSON lines; ``None`` goes back to ``$VAULTKIT_AUDIT_LOG``."""
    global _path, _path_set
    with _lock:
        _path = os.fspath(path) if path is not None else None
        _path_set = path is not None


def _current_path() -> str | None:
    if _path_set:
        return _path
    return os.environ.get("VAULTKIT_AUDIT_LOG") or None


def actor() -> str:
    """``user@host`` of this process, for the ``actor`` field."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{os.uname().nodename}"  # gethostname(2), without importing socket


def _listening_logger() -> Logger | None:
    """The audit logger when it is enabled for INFO, else None.

    A process that never imported :mod:`logging` cannot have a handler for it, so
    the module is not imported here just to learn that (a CLI's start-up path).
    """
    if "logging" not in sys.modules:
        return None
    import logging

    logger = logging.getLogger(LOGGER_NAME)
    return logger if logger.isEnabledFor(logging.INFO) else None


def _check(value: Any, key: str) -> Any:
    if isinstance(value, (Secret, bytes, bytearray, memoryview)):
        raise TypeError(f"audit field {key!r} must not hold a secret or raw bytes")
    if isinstance(value, dict):
        return {k: _check(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check(v, key) for v in value]
    return value


def record(action: str, *, target: str | None = None, outcome: str = "ok", **fields: Any) -> dict[
    str, Any
]:
    """Record one audit event and return it (as written)."""
    event: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "actor": actor(),
        "pid": os.getpid(),
        "action": action,
        "target": target,
        "outcome": outcome,
    }
    for key, value in fields.items():
        event[key] = _check(value, key)
    path = _current_path()
    logger = _listening_logger()
    if not path and logger is None:
        return event  # nobody listens: skip serialising it (load_secrets records every boot)
    line = json.dumps(event, sort_keys=True, default=str)
    if logger is not None:
        logger.info(line)
    if path:
        data = (line + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return event


__all__ = ["actor", "configure", "record"]
