"""load_secrets without servers: planning, dedupe, parallelism, the deadline, aggregation."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence

import pytest

from harness.canary import LeakCanary
from vaultkit.config import Config
from vaultkit.errors import (
    ConfigError,
    DeadlineExceededError,
    SecretsLoadError,
    UnavailableError,
    VaultkitError,
)
from vaultkit.secret import Secret
from vaultkit.secrets import (
    Call,
    CallResult,
    Deadline,
    Fetched,
    MemorySource,
    RedactingFilter,
    RetryPolicy,
    from_env,
    install_redaction,
    load_secrets,
    memory_source,
    resolve,
)
from vaultkit.secrets.refs import Reference
from vaultkit.secrets.sources.base import BaseSource


class SlowSource(BaseSource):
    """Each fetch sleeps; records the peak number of concurrent fetches."""

    schemes = ("memory",)

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return Fetched(Secret(f"value-of-{unit.locator}"))


class FlakySource(BaseSource):
    schemes = ("memory",)

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
        self.calls += 1
        if self.calls <= self.failures:
            raise UnavailableError("temporarily down", reference=unit.display)
        return Fetched(Secret("ok"))


class BatchDeniedSource(BaseSource):
    """A batch call that answers with follow-up single calls (like SM's AccessDenied fallback)."""

    schemes = ("memory",)

    def plan(self, units: Sequence[Reference]) -> list[Call]:
        return [Call("memory", "Batch", tuple(units))]

    def execute(self, call: Call, deadline: Deadline) -> CallResult:
        if call.operation == "Batch":
            return CallResult(followups=[Call("memory", "Single", (u,)) for u in call.units])
        return CallResult({u.unit: Fetched(Secret("single-" + u.locator)) for u in call.units})


def test_parallel_and_bounded() -> None:
    source = SlowSource(0.2)
    spec = {f"S{i}": f"memory://s{i}" for i in range(8)}
    t0 = time.monotonic()
    loaded = load_secrets(spec, sources=[source], concurrency=4)
    elapsed = time.monotonic() - t0
    assert len(loaded) == 8
    assert source.peak == 4  # bounded...
    assert elapsed < 8 * 0.2  # ...and parallel


def test_deadline_bounds_a_stuck_source() -> None:
    source = SlowSource(5.0)
    t0 = time.monotonic()
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"A": "memory://a", "B": "memory://b"}, sources=[source], deadline=0.5)
    assert time.monotonic() - t0 < 1.5
    assert all(isinstance(e, DeadlineExceededError) for e in info.value.failures.values())
    assert "timeout" in str(info.value)


def test_transient_errors_are_retried() -> None:
    source = FlakySource(failures=2)
    loaded = load_secrets({"A": "memory://a"}, sources=[source],
                          retry=RetryPolicy(base=0.01, cap=0.02))
    assert loaded.reveal("A") == "ok" and source.calls == 3


def test_followup_calls_are_run() -> None:
    loaded = load_secrets({"A": "memory://a", "B": "memory://b"}, sources=[BatchDeniedSource()])
    assert loaded.as_env() == {"A": "single-a", "B": "single-b"}


def test_every_failure_is_listed_once(leak_canary: LeakCanary) -> None:
    store = MemorySource()
    value = leak_canary.new()
    store.put("ok", value)
    store.put("json", json.dumps({"a": leak_canary.new()}))
    store.put("text", leak_canary.new())
    with pytest.raises(SecretsLoadError) as info:
        load_secrets({
            "OK": "memory://ok", "MISSING": "memory://nope", "BAD": "vault://x",
            "NOKEY": "memory://json#b", "NOTJSON": "memory://text#k", "WHAT": "zzz://x",
        }, sources=[store])
    failures = info.value.failures
    assert set(failures) == {"MISSING", "BAD", "NOKEY", "NOTJSON", "WHAT"}
    assert {n: e.category for n, e in failures.items()} == {
        "MISSING": "not_found", "BAD": "invalid", "NOKEY": "not_found", "NOTJSON": "invalid",
        "WHAT": "invalid"}
    text = str(info.value)
    assert text.startswith("5 secret(s) could not be loaded:")
    for name in failures:
        assert name in text
    assert "memory://json#b" in text
    leak_canary.watch_exception(info.value)


def test_resolve_returns_partial_results() -> None:
    store = MemorySource()
    store.put("a", "x1")
    loaded, failures = resolve({"A": "memory://a", "B": "memory://b"}, sources=[store])
    assert loaded.reveal("A") == "x1" and set(failures) == {"B"}


def test_loaded_secrets_is_immutable_and_redacted(leak_canary: LeakCanary) -> None:
    store = MemorySource()
    value = leak_canary.new()
    store.put("a", value)
    loaded = load_secrets({"A": "memory://a"}, sources=[store])
    with pytest.raises(TypeError):
        loaded["A"] = Secret("x")  # type: ignore[index]
    assert repr(loaded) == "LoadedSecrets(['A'])"
    assert loaded.as_env(["A"]) == {"A": value}
    leak_canary.watch(loaded, dict(loaded), loaded["A"])


def test_binary_values_need_base64() -> None:
    class Binary(BaseSource):
        schemes = ("memory",)

        def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
            return Fetched(Secret(b"\xff\x00\x01"))

    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"B": "memory://b"}, sources=[Binary()])
    assert "encoding=base64" in str(info.value)
    loaded = load_secrets({"B": "memory://b?encoding=base64"}, sources=[Binary()])
    assert loaded.reveal("B") == "/wAB"


def test_from_env_reads_references_only() -> None:
    env = {"APP_DB": "vault://kv/app#db", "APP_MODE": "production", "OTHER": "env://X",
           "APP_KEY": "kms:AQID"}
    assert from_env("APP_", environ=env) == {"DB": "vault://kv/app#db", "KEY": "kms:AQID"}
    assert from_env("APP_", environ=env, strip_prefix=False) == {
        "APP_DB": "vault://kv/app#db", "APP_KEY": "kms:AQID"}


def test_spec_from_config() -> None:
    memory_source().put("cfg-secret", "from-config")
    config = Config(sections={"secrets": {"A": "memory://cfg-secret",
                                          "options": {"kv_versions": {"kv": 1}}}})
    assert load_secrets(config=config).as_env() == {"A": "from-config"}
    with pytest.raises(ConfigError):
        load_secrets(config=Config(sections={"secrets": {"A": 3}}))


def test_audit_records_names_not_values(caplog: pytest.LogCaptureFixture,
                                        leak_canary: LeakCanary) -> None:
    store = MemorySource()
    store.put("a", leak_canary.new())
    with caplog.at_level(logging.INFO, logger="vaultkit.audit"):
        load_secrets({"AUDITED": "memory://a"}, sources=[store])
    assert "secrets.load" in caplog.text and "AUDITED" in caplog.text


def test_redaction_filter_scrubs_values(leak_canary: LeakCanary) -> None:
    store = MemorySource()
    a, b = leak_canary.new(), leak_canary.new()
    store.put("a", a)
    store.put("b", b)
    store.put("short", "x")
    loaded = load_secrets({"A": "memory://a", "B": "memory://b", "S": "memory://short"},
                          sources=[store])
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    filt = install_redaction(loaded, handlers=[handler])
    log = logging.getLogger("app.test")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("connecting with %s and %s", a, b)
        log.warning("prefix " + a + " suffix; x stays")
        try:
            raise RuntimeError(f"boom {b}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    texts = [logging.Formatter().format(r) for r in records]
    assert texts[0] == "connecting with ******** and ********"
    assert texts[1] == "prefix ******** suffix; x stays"  # 1-char values are not scrubbed
    assert "boom ********" in texts[2]
    assert repr(filt) == "RedactingFilter(2 values)"
    for t in texts:
        leak_canary.watch_text(t)


def test_redaction_prefers_longest_match() -> None:
    f = RedactingFilter(["abc", "abcdef"])
    assert f.scrub("xabcdefx abc") == "x********x ********"


def test_source_exceptions_that_are_bugs_do_not_hang() -> None:
    class Broken(BaseSource):
        schemes = ("memory",)

        def fetch(self, unit: Reference, deadline: Deadline | None) -> Fetched:
            raise KeyError("bug")

    with pytest.raises(SecretsLoadError) as info:
        load_secrets({"A": "memory://a"}, sources=[Broken()], deadline=2)
    assert isinstance(info.value.failures["A"], VaultkitError)


def _chain_attributes(exc: BaseException) -> str:
    """Every exception in ``exc``'s chain (__cause__ and __context__, suppressed or not),
    with its args and attributes: what an error reporter that walks the chain can see."""
    seen: list[str] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None:
            continue
        seen.append(repr(e.args) + repr(vars(e)) + repr(getattr(e, "doc", "")) +
                    repr(getattr(e, "object", b"")))
        todo += [e.__cause__, e.__context__]
    return "\n".join(seen)


@pytest.mark.parametrize("stored", ["json", "binary"])
def test_a_value_that_cannot_be_parsed_is_not_kept_in_the_exception_chain(
        leak_canary: LeakCanary, stored: str) -> None:
    # json's JSONDecodeError keeps the whole document (.doc) and UnicodeDecodeError the
    # bytes (.object): `raise ... from None` hides them from a traceback, not from
    # __context__, where an error reporter walking the chain finds the secret.
    from vaultkit.secrets.loader import extract
    from vaultkit.secrets.refs import parse_reference

    value = leak_canary.new()
    if stored == "json":
        store = MemorySource()
        store.put("app", f"{value} is not JSON")
        _, failures = resolve({"PW": "memory://app#pw"}, sources=[store])
        exc: BaseException = failures["PW"]
    else:  # a binary document (Secrets Manager's SecretBinary) that is not UTF-8
        fetched = Fetched(Secret(b"\xff" + value.encode()))
        with pytest.raises(ConfigError) as info:
            extract("PW", parse_reference("awssm://app#pw"), fetched)
        exc = info.value
    assert isinstance(exc, ConfigError)
    leak_canary.watch_text(_chain_attributes(exc), where="exception chain")
