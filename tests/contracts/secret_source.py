"""The contract every SecretSource passes (jaraco/keyring's BackendBasicTests pattern).

A test class subclasses :class:`SecretSourceContract` and supplies:

* ``source``: the source under test;
* ``put``: a callable ``put(name, value) -> reference`` that stores ``value``
  in the backend and returns the reference that reads it back;
* ``missing``: a reference to something that does not exist.

The contract checks round trips (raw and JSON keys), batching correctness for
many names, deduplication, optional/default, the not-found category and that
no value reaches reprs, errors or logs (with the leak canary).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.canary import LeakCanary
from vaultkit.errors import NotFoundError, SecretsLoadError
from vaultkit.secret import Secret
from vaultkit.secrets import SecretSource, load_secrets, make_plan
from vaultkit.secrets.sources import default_sources

Put = Callable[[str, str], str]


def _with_fragment(ref: str, key: str) -> str:
    # A reference that already selects a key (file://x#name) selects inside it: name/key.
    return f"{ref}/{key}" if "#" in ref else f"{ref}#{key}"


def _with_query(ref: str, query: str) -> str:
    base, sep, frag = ref.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}{query}" + (sep + frag if sep else "")


class SecretSourceContract:
    #: How many names the batching test loads (above every batch limit: 20 and 10).
    many = 25

    @pytest.fixture
    def source(self) -> SecretSource:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def put(self) -> Put:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def missing(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def load(self, source: SecretSource, spec: dict[str, str], **kw: Any) -> Any:
        return load_secrets(spec, sources=[source], deadline=kw.pop("deadline", 20), **kw)

    def test_is_a_secret_source(self, source: SecretSource) -> None:
        assert isinstance(source, SecretSource)
        assert source.schemes

    def test_plain_round_trip(self, source: SecretSource, put: Put,
                              leak_canary: LeakCanary) -> None:
        value = leak_canary.new()
        ref = put("plain", value)
        loaded = self.load(source, {"PLAIN": ref})
        assert isinstance(loaded["PLAIN"], Secret)
        assert loaded["PLAIN"].reveal() == value
        assert loaded.as_env() == {"PLAIN": value}
        leak_canary.watch(loaded, loaded["PLAIN"], source, loaded.plan.describe())

    def test_json_keys(self, source: SecretSource, put: Put, leak_canary: LeakCanary) -> None:
        user, pw = leak_canary.new("user"), leak_canary.new()
        ref = put("creds", json.dumps({"username": user, "password": pw, "port": 5432}))
        loaded = self.load(source, {
            "U": _with_fragment(ref, "username"),
            "P": _with_fragment(ref, "password"),
            "PORT": _with_fragment(ref, "port"),
        })
        assert loaded.reveal("U") == user
        assert loaded.reveal("P") == pw
        assert loaded.reveal("PORT") == "5432"
        # Two keys of one secret are one fetch unit: one call, not three.
        assert len(loaded.plan.units) == 1
        leak_canary.watch(loaded)

    def test_missing_json_key_names_the_key_not_the_json(
            self, source: SecretSource, put: Put, leak_canary: LeakCanary) -> None:
        pw = leak_canary.new()
        ref = put("nokey", json.dumps({"password": pw}))
        with pytest.raises(SecretsLoadError) as info:
            self.load(source, {"X": _with_fragment(ref, "username")})
        err = info.value.failures["X"]
        assert isinstance(err, NotFoundError)
        assert "username" in str(info.value)
        assert "not_found" in str(info.value)
        leak_canary.watch_exception(info.value)

    def test_not_found_is_categorised(self, source: SecretSource, missing: str,
                                      leak_canary: LeakCanary) -> None:
        with pytest.raises(SecretsLoadError) as info:
            self.load(source, {"GONE": missing})
        assert info.value.failures["GONE"].category == "not_found"
        assert "GONE" in str(info.value)
        leak_canary.watch_exception(info.value)

    def test_optional_and_default(self, source: SecretSource, missing: str) -> None:
        loaded = self.load(source, {
            "OPT": _with_query(missing, "optional=1"),
            "DEF": _with_query(missing, "default=fallback"),
        })
        assert "OPT" not in loaded
        assert loaded.absent == {"OPT"}
        assert loaded.reveal("DEF") == "fallback"

    def test_many_names_all_resolve(self, source: SecretSource, put: Put,
                                    leak_canary: LeakCanary) -> None:
        values = {f"S{i:02d}": leak_canary.new(f"v{i}") for i in range(self.many)}
        spec = {name: put(f"many-{name}", value) for name, value in values.items()}
        loaded = self.load(source, spec)
        assert loaded.as_env() == values

    def test_failures_are_aggregated_with_successes(self, source: SecretSource, put: Put,
                                                    missing: str) -> None:
        ok = put("agg-ok", "fine")
        with pytest.raises(SecretsLoadError) as info:
            self.load(source, {"OK": ok, "BAD": missing, "WORSE": "nope://x"})
        assert set(info.value.failures) == {"BAD", "WORSE"}
        assert info.value.failures["WORSE"].category == "invalid"

    def test_plan_makes_no_calls_and_covers_every_unit(self, source: SecretSource, put: Put
                                                       ) -> None:
        refs = {f"N{i}": put(f"plan-{i}", f"value-{i}") for i in range(3)}
        plan = make_plan(refs, default_sources(overrides=[source]))
        planned = {u.unit for call in plan.calls for u in call.units}
        assert planned == set(plan.units)
        for line in plan.describe():
            assert "value-" not in line
