"""The leak canary: plant unique secret values, then fail the test if one shows up anywhere.

Use the ``leak_canary`` fixture::

    def test_x(leak_canary):
        value = leak_canary.new()          # a unique random string
        ...                                # use it as a secret
        leak_canary.watch(result)          # reprs/strs of returned objects
        leak_canary.watch_exception(exc)   # exception text, with its chain

At teardown the fixture scans, for every canary (and its base64/hex forms):
captured log records at DEBUG level (vaultkit loggers and the root logger),
captured stdout/stderr, every watched object's ``repr``/``str``, every watched
exception's text including ``__cause__``/``__context__``, and any watched
files or directories (temp files). A hit fails the test with where it was seen,
never with the value itself.
"""

from __future__ import annotations

import base64
import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class LeakCanary:
    def __init__(self) -> None:
        self.values: list[str] = []
        self._objects: list[tuple[str, Any]] = []
        self._texts: list[tuple[str, str]] = []
        self._paths: list[Path] = []

    def new(self, prefix: str = "canary") -> str:
        value = f"{prefix}-{secrets.token_hex(12)}"
        self.values.append(value)
        return value

    def new_bytes(self) -> bytes:
        return self.new("canarybytes").encode()

    def add(self, value: str) -> str:
        self.values.append(value)
        return value

    def watch(self, *objects: Any, where: str = "object") -> None:
        for obj in objects:
            self._objects.append((where, obj))

    def watch_text(self, text: str, where: str = "text") -> None:
        self._texts.append((where, text))

    def watch_exception(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._texts.append((f"exception {type(exc).__name__}", text))
        self._objects.append(("exception", exc))

    def watch_path(self, path: str | Path) -> None:
        self._paths.append(Path(path))

    def _needles(self) -> list[tuple[int, str]]:
        needles = []
        for i, v in enumerate(self.values):
            b = v.encode()
            for form in (v, base64.b64encode(b).decode().rstrip("="), b.hex()):
                needles.append((i, form))
        return needles

    def scan(self, haystacks: list[tuple[str, str]]) -> list[str]:
        hits = []
        for where, text in haystacks:
            for i, needle in self._needles():
                if needle and needle in text:
                    hits.append(f"canary #{i} found in {where}")
        return hits

    def collect(self, log_text: str, out: str, err: str) -> list[tuple[str, str]]:
        stacks: list[tuple[str, str]] = [("logs", log_text), ("stdout", out), ("stderr", err)]
        stacks += self._texts
        for where, obj in self._objects:
            for fn in (repr, str):
                try:
                    stacks.append((f"{fn.__name__}() of {where} {type(obj).__name__}", fn(obj)))
                except Exception as exc:  # noqa: BLE001 - a raising repr is itself reported
                    stacks.append((f"{fn.__name__}() of {where}", f"<raised {exc!r}>"))
        for path in self._paths:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for f in files:
                try:
                    stacks.append((f"file {f}", f.read_bytes().decode("latin-1")))
                except OSError:
                    continue
        return stacks


def attach_debug_logging(caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("vaultkit", "vaultkit.audit", "botocore", "hvac", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of setup and call (caplog.text in teardown would hold teardown's only)."""
    handler = caplog.handler
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]  # type: ignore[arg-type]
    records += caplog.records
    return "\n".join(handler.format(r) for r in records)


@pytest.fixture
def leak_canary(
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[LeakCanary]:
    """Plant canaries; fail if one appears in DEBUG logs, stdout/stderr, reprs or errors."""
    attach_debug_logging(caplog)
    canary = LeakCanary()
    request.node._leak_canary = canary
    yield canary
    # Reading consumes the captured output on purpose: if it holds a canary, the failure
    # report must not print it again.
    out, err = capsys.readouterr()
    hits = canary.scan(canary.collect(_log_text(caplog), out, err))
    if hits:
        pytest.fail("secret value leaked: " + "; ".join(sorted(set(hits))), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Scrub canary values from the captured output pytest shows for a failing test.

    The fixture detects the leak; this keeps the report of that failure from
    printing the very value it caught.
    """
    outcome = yield
    canary: LeakCanary | None = getattr(item, "_leak_canary", None)
    if canary is None or not canary.values:
        return
    report = outcome.get_result()

    def scrub(text: str) -> str:
        for i, needle in canary._needles():
            text = text.replace(needle, f"<canary #{i}>")
        return text

    report.sections = [(title, scrub(content)) for title, content in report.sections]
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        if any(n in text for _, n in canary._needles()):
            report.longrepr = scrub(text)
