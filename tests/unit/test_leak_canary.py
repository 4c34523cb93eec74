"""The leak canary itself: a deliberate leak through each channel must fail the test."""

from __future__ import annotations

import pytest

INNER = '''
import logging
import pytest
from vaultkit.errors import ConfigError
from vaultkit.secret import Secret

def test_clean(leak_canary):
    v = leak_canary.new()
    s = Secret(v)
    logging.getLogger("vaultkit").debug("loaded %r", s)
    print(s)
    leak_canary.watch(s)

def test_leak_in_debug_log(leak_canary):
    v = leak_canary.new()
    logging.getLogger("vaultkit.x").debug("value=%s", v)

def test_leak_in_stdout(leak_canary):
    print("token:", leak_canary.new())

def test_leak_in_stderr(leak_canary):
    import sys
    sys.stderr.write(leak_canary.new())

def test_leak_in_exception(leak_canary):
    v = leak_canary.new()
    try:
        raise ConfigError(f"bad value {v}")
    except ConfigError as exc:
        leak_canary.watch_exception(exc)

def test_leak_in_exception_cause(leak_canary):
    v = leak_canary.new()
    try:
        try:
            raise ValueError(v)
        except ValueError as inner:
            raise ConfigError("clean message") from inner
    except ConfigError as exc:
        leak_canary.watch_exception(exc)

def test_leak_in_repr(leak_canary):
    class Leaky:
        def __init__(self, v):
            self.v = v
        def __repr__(self):
            return f"Leaky({self.v})"
    leak_canary.watch(Leaky(leak_canary.new()))

def test_leak_base64_encoded(leak_canary):
    import base64
    print(base64.b64encode(leak_canary.new().encode()).decode())

def test_leak_in_temp_file(leak_canary, tmp_path):
    (tmp_path / "spill.txt").write_text(leak_canary.new())
    leak_canary.watch_path(tmp_path)
'''


def test_deliberate_leaks_fail_and_clean_code_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "harness.canary", "-q")
    outcomes = result.parseoutcomes()
    # Every test body passes; each leaky one then errors in the canary's teardown.
    assert outcomes.get("passed") == 9
    assert outcomes.get("errors") == 8
    text = result.stdout.str()
    assert "ERROR test_inner.py::test_clean" not in text
    assert "found in logs" in text
    assert "secret value leaked: canary #0 found in logs" in text
    assert "found in stdout" in text
    assert "found in stderr" in text
    assert "found in exception" in text
    assert "found in repr() of object Leaky" in text
    assert "found in file" in text
    assert "canary-" not in text  # the report names where, never the value
