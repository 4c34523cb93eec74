"""A :class:`logging.Filter` that scrubs loaded secret values from log records.

Install it on *handlers* (filters on a logger do not see records propagated
from child loggers; filters on a handler see everything that handler emits)::

    secrets = load_secrets(...)
    install_redaction(secrets)            # every handler of the root logger

It renders the message (``msg % args``), replaces every value of 2 or more
characters (longest first, so a value containing another is replaced whole)
with ``********``, and also scrubs the formatted traceback and ``stack_info``.
One-character values are skipped: scrubbing them would garble every log line
and protect nothing (teller's ``redact`` uses the same 2-character floor).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from ..secret import REDACTED, Secret

MIN_LENGTH = 2


class RedactingFilter(logging.Filter):
    """Scrub secret values from every record that passes through.

    >>> f = RedactingFilter([Secret("hunter2")])
    >>> rec = logging.LogRecord("x", logging.INFO, __file__, 1, "pw=%s", ("hunter2",), None)
    >>> f.filter(rec), rec.getMessage()
    (True, 'pw=********')
    """

    def __init__(self, values: Iterable[Secret[str] | Secret[bytes] | str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[Secret[str] | Secret[bytes] | str]) -> None:
        with self._lock:
            found = set(self._values)
            for v in values:
                raw = v.reveal() if isinstance(v, Secret) else v
                if isinstance(raw, bytes):
                    try:
                        raw = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                if len(raw) >= MIN_LENGTH:
                    found.add(raw)
            self._values = sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: scrub the template instead
            message = str(record.msg)
        record.msg = self.scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True

    def __repr__(self) -> str:
        return f"RedactingFilter({len(self._values)} values)"


def install_redaction(values: Iterable[Secret[str] | Secret[bytes] | str] | object,
                      handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to ``handlers`` (default: the root logger's handlers).

    ``values`` may be a :class:`LoadedSecrets` mapping or any iterable of Secrets/strings.
    """
    from collections.abc import Mapping

    items = values.values() if isinstance(values, Mapping) else values
    filt = RedactingFilter(items)  # type: ignore[arg-type]
    for handler in (logging.getLogger().handlers if handlers is None else handlers):
        handler.addFilter(filt)
    return filt


__all__ = ["MIN_LENGTH", "RedactingFilter", "install_redaction"]
