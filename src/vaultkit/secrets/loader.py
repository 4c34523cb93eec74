"""``load_secrets``: every secret a service needs, fast, or one clear error.

>>> from vaultkit.secrets import load_secrets, memory_source
>>> memory_source().put("app", '{"password": "pw-123"}')
>>> secrets = load_secrets({"DB_PASSWORD": "memory://app#password"})
>>> secrets["DB_PASSWORD"]
Secret('DB_PASSWORD', '********')
>>> secrets.as_env()["DB_PASSWORD"]
'pw-123'

Steps: parse and plan (:mod:`.planner`), run the calls on a bounded pool of
daemon threads (a stuck backend cannot keep the process alive) with retries
for transient errors (:mod:`.retry`), all under one deadline; then extract
``#keys``, apply ``optional``/``default``, and either return an immutable
mapping or raise one :class:`SecretsLoadError` listing every failure.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import audit
from ..config import Config
from ..errors import (
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    SecretsLoadError,
    VaultkitError,
)
from ..secret import Secret
from .planner import Plan, make_plan
from .refs import Reference, is_reference
from .retry import Deadline, RetryPolicy, call_with_retry
from .sources import default_sources
from .sources.base import Call, Fetched, SecretSource, UnitKey

if TYPE_CHECKING:
    from ..backends.vault import VaultClient
    from .redaction import RedactingFilter
    from .watcher import SecretWatcher

logger = logging.getLogger("vaultkit.secrets")

Outcome = Fetched | VaultkitError


class LoadedSecrets(Mapping[str, Secret[str]]):
    """An immutable mapping name -> :class:`Secret`; values show only through ``reveal``/``as_env``."""

    def __init__(self, values: Mapping[str, Secret[str]], *, plan: Plan,
                 fetched: Mapping[UnitKey, Fetched], sources: Mapping[str, SecretSource],
                 absent: Iterable[str] = (), config: Config | None = None) -> None:
        self._values = dict(values)
        self.plan = plan
        self.fetched = dict(fetched)
        self.sources = dict(sources)
        #: optional names that were not found and had no default
        self.absent = frozenset(absent)
        self.config = config

    def __getitem__(self, name: str) -> Secret[str]:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"LoadedSecrets({sorted(self._values)})"

    def reveal(self, name: str) -> str:
        return self._values[name].reveal()

    def as_env(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """``{NAME: plaintext}`` for ``os.environ``/``subprocess`` (the values leave here)."""
        wanted = self._values if names is None else {n: self._values[n] for n in names}
        return {name: secret.reveal() for name, secret in wanted.items()}

    @property
    def leases(self) -> list[Any]:
        return [f.lease for f in self.fetched.values() if f.lease is not None]

    def redaction_filter(self) -> RedactingFilter:
        """A :class:`logging.Filter` that scrubs these values; see :mod:`.redaction`."""
        from .redaction import RedactingFilter

        return RedactingFilter(self.values())

    def watch(self, **kwargs: Any) -> SecretWatcher:
        """A :class:`SecretWatcher` that renews leases and refreshes these secrets (started)."""
        from .watcher import SecretWatcher

        return SecretWatcher(self, **kwargs).start()


# --- spec helpers ---------------------------------------------------------------------

def from_env(prefix: str = "", *, environ: Mapping[str, str] | None = None,
             strip_prefix: bool = True) -> dict[str, str]:
    """References held in environment variables (berglas/``op`` style).

    Every variable starting with ``prefix`` whose value is a reference becomes an
    entry; other variables are ignored.

    >>> from_env("APP_", environ={"APP_DB": "vault://kv/app#db", "APP_MODE": "prod"})
    {'DB': 'vault://kv/app#db'}
    """
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for var, value in environ.items():
        if var.startswith(prefix) and is_reference(value):
            out[var[len(prefix):] if strip_prefix and prefix else var] = value
    return out


def spec_from_config(config: Config) -> tuple[dict[str, str], dict[str, Any]]:
    """``[secrets]``: string values are references; ``[secrets.options]`` holds loader settings."""
    spec: dict[str, str] = {}
    options: dict[str, Any] = {}
    for name, value in config.section("secrets").items():
        if name == "options" and isinstance(value, Mapping):
            options = dict(value)
        elif isinstance(value, str):
            spec[name] = value
        else:
            raise ConfigError(f"[secrets] {name} must be a reference string",
                              reference=config.source)
    return spec, options


# --- execution ------------------------------------------------------------------------

def run_calls(calls: list[Call], sources: Mapping[str, SecretSource], *, deadline: Deadline,
              concurrency: int, retry: RetryPolicy) -> dict[UnitKey, Outcome]:
    """Run calls on at most ``concurrency`` daemon threads; follow-ups join the queue.

    The caller sleeps on one event, set when every unit has an outcome (or nothing is
    left to run), rather than being woken by each completed call: on a fast backend
    those wake-ups (and the GIL hand-offs they force) cost more than the calls.
    """
    queue: deque[Call] = deque(calls)
    results: dict[UnitKey, Outcome] = {}
    pending = {u.unit for c in calls for u in c.units}
    if not pending:
        return {}
    cond = threading.Condition()
    finished = threading.Event()
    busy = 0

    def settle(outcomes: Mapping[UnitKey, Outcome], followups: Iterable[Call] = ()) -> None:
        nonlocal busy
        with cond:
            results.update(outcomes)
            pending.difference_update(outcomes)
            queue.extend(followups)
            busy -= 1
            if not pending or (busy == 0 and not queue):
                finished.set()
                cond.notify_all()  # idle workers exit
            elif queue:
                cond.notify(len(queue))

    def worker() -> None:
        nonlocal busy
        while True:
            with cond:
                # Idle workers wait only while a running call may still add follow-ups.
                while not queue and busy > 0 and pending and not deadline.expired:
                    cond.wait(deadline.remaining())
                if not queue or deadline.expired:
                    return
                call = queue.popleft()
                busy += 1
            source = sources[call.units[0].scheme]
            try:
                outcome = call_with_retry(
                    lambda s=source, c=call: s.execute(c, deadline),  # type: ignore[misc]
                    policy=retry, deadline=deadline)
            except VaultkitError as exc:
                settle({unit.unit: exc for unit in call.units})
            except Exception as exc:  # noqa: BLE001 - a source bug must not hang the boot
                err = VaultkitError(f"unexpected {type(exc).__name__} in {call.source} source")
                settle({unit.unit: err for unit in call.units})
            else:
                settle(outcome.results, outcome.followups)

    for i in range(max(1, min(concurrency, len(calls)))):
        threading.Thread(target=worker, name=f"vaultkit-secrets-{i}", daemon=True).start()
    finished.wait(deadline.remaining())
    with cond:
        done = dict(results)
        missing = set(pending)
    for unit in missing:
        done.setdefault(unit, DeadlineExceededError(
            f"no answer within the {deadline.seconds:g}s deadline"))
    return done


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def json_or_none(text: str | bytes) -> Any:
    """``json.loads(text)``, or ``None`` when it is not JSON (no exception to chain)."""
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: both hold the text
        return None


def extract(name: str, ref: Reference, fetched: Fetched) -> Secret[str]:
    """The value ``ref`` selects from a fetched document. Errors name the key, never the JSON."""
    raw = fetched.document.reveal()
    if isinstance(raw, bytes):
        if ref.key is None and ref.encoding == "base64":
            return Secret(base64.b64encode(raw).decode(), label=name)
        text_or_none = _utf8(raw)
        if text_or_none is None:
            # Raised outside the except block: a UnicodeDecodeError holds the bytes (.object)
            # and `from None` would only hide it, keeping it as __context__.
            raise ConfigError("the value is binary, not UTF-8 text; add ?encoding=base64",
                              reference=ref.display)
        raw = text_or_none
    if ref.key is None:
        if ref.encoding == "base64":
            return Secret(base64.b64encode(raw.encode()).decode(), label=name)
        return Secret(raw, label=name)
    # A JSONDecodeError keeps the whole document (.doc): it must not even be __context__.
    doc = json_or_none(raw)
    if not isinstance(doc, dict):
        raise ConfigError(f"the value is not a JSON object, so #{ref.key} cannot be selected",
                          reference=ref.display)
    value: Any
    if ref.key in doc:
        value = doc[ref.key]
    else:
        value = doc
        for part in ref.key.split("/"):
            if not isinstance(value, dict) or part not in value:
                raise NotFoundError(f"JSON key {ref.key!r} is not in the secret "
                                    f"(it has {len(doc)} top-level keys)",
                                    reference=ref.display, source=ref.scheme)
            value = value[part]
    text = value if isinstance(value, str) else json.dumps(value)
    if ref.encoding == "base64":
        text = base64.b64encode(text.encode()).decode()
    return Secret(text, label=name)


def resolve(spec: Mapping[str, str] | None = None, *, deadline: float = 10.0,
            config: Config | None = None, concurrency: int = 16,
            sources: Iterable[SecretSource] = (), retry: RetryPolicy | None = None,
            vault: VaultClient | None = None, options: Mapping[str, Any] | None = None
            ) -> tuple[LoadedSecrets, dict[str, VaultkitError]]:
    """Like :func:`load_secrets` but returns ``(loaded, failures)`` instead of raising."""
    started = time.monotonic()
    timer = Deadline(deadline)
    options = dict(options or {})
    if spec is None:
        config = config or Config.load()
        spec, options = spec_from_config(config)
    table = default_sources(config, vault=vault, overrides=sources,
                            kv_versions=options.get("kv_versions"))
    plan = make_plan(spec, table, deadline=timer.remaining())
    logger.debug("secrets plan: %d names, %d units, %d calls", len(spec), len(plan.units),
                 len(plan.calls))
    outcomes = run_calls(plan.calls, table, deadline=timer, concurrency=concurrency,
                         retry=retry or RetryPolicy())
    outcomes.update(plan.prefetched)
    absent: list[str] = []
    failures = _name_every_key(plan, outcomes)
    failures.update(plan.invalid)
    values: dict[str, Secret[str]] = {}
    for name, ref in plan.refs.items():
        outcome = outcomes[ref.unit]
        try:
            if isinstance(outcome, VaultkitError):
                raise outcome
            values[name] = extract(name, ref, outcome)
        except NotFoundError as exc:
            if ref.default is not None:
                values[name] = Secret(ref.default, label=name)
            elif ref.optional:
                absent.append(name)
            else:
                failures[name] = _with_reference(exc, ref)
        except VaultkitError as exc:
            failures[name] = _with_reference(exc, ref)
    fetched = {k: v for k, v in outcomes.items() if isinstance(v, Fetched)}
    loaded = LoadedSecrets(values, plan=plan, fetched=fetched, sources=table, absent=absent,
                           config=config)
    audit.record("secrets.load", target=f"{len(spec)} secret(s)",
                 outcome="ok" if not failures else "failed", loaded=sorted(values),
                 failed={n: e.category for n, e in sorted(failures.items())},
                 calls=plan.counts(), seconds=round(time.monotonic() - started, 3))
    return loaded, failures


def _name_every_key(plan: Plan, outcomes: Mapping[UnitKey, Outcome]) -> dict[str, VaultkitError]:
    """Vault wildcards: every key of every secret found becomes a name (see :mod:`.wildcards`)."""
    from urllib.parse import quote

    from .wildcards import env_name, prefix_of

    failures: dict[str, VaultkitError] = {}
    for name, items in plan.per_key.items():
        names: list[str] = []
        for path, unit in items:
            outcome = outcomes[unit.unit]
            if isinstance(outcome, NotFoundError) and unit.optional:
                continue
            if isinstance(outcome, VaultkitError):
                failures[f"{name}:{path}"] = _with_reference(outcome, unit)
                continue
            try:
                doc = json.loads(str(outcome.document.reveal()))
            except ValueError:
                doc = None
            if not isinstance(doc, dict):
                failures[f"{name}:{path}"] = ConfigError("a wildcard needs JSON objects",
                                                         reference=unit.display)
                continue
            for key in doc:
                derived = prefix_of(name) + env_name(path, key)
                ref = dataclasses.replace(unit, key=key, raw=f"{unit.raw}#{quote(key)}")
                if plan.claim(derived, f"{name} = {ref.display}"):
                    plan.refs[derived] = ref
                    names.append(derived)
        plan.expanded[name] = names
    return failures


def _with_reference(exc: VaultkitError, ref: Reference) -> VaultkitError:
    # Batch errors are shared by every unit of a call; give each name its own reference.
    if exc.reference == ref.display:
        return exc
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    clone.args = exc.args
    clone.__cause__ = exc.__cause__
    clone.reference = ref.display
    return clone


def load_secrets(spec: Mapping[str, str] | None = None, *, deadline: float = 10.0,
                 config: Config | None = None, concurrency: int = 16,
                 sources: Iterable[SecretSource] = (), retry: RetryPolicy | None = None,
                 vault: VaultClient | None = None,
                 options: Mapping[str, Any] | None = None) -> LoadedSecrets:
    """Load every secret in ``spec`` (name -> reference) or in ``[secrets]`` of the config.

    ``deadline`` bounds the whole load (seconds). ``concurrency`` caps parallel calls.
    ``sources`` replaces the default source of their schemes (for example a
    :class:`MemorySource`) or adds new schemes. ``options`` are ``[secrets.options]``
    (``kv_versions``) for a ``spec`` given here. Raises :class:`SecretsLoadError` listing every failed name.

    >>> load_secrets({"X": "env://HOME"}, deadline=5)["X"]          # doctest: +SKIP
    Secret('X', '********')
    """
    loaded, failures = resolve(spec, deadline=deadline, config=config, concurrency=concurrency,
                               sources=sources, retry=retry, vault=vault, options=options)
    if failures:
        raise SecretsLoadError(failures)
    return loaded


__all__ = ["LoadedSecrets", "extract", "from_env", "load_secrets", "resolve", "run_calls",
           "spec_from_config"]
