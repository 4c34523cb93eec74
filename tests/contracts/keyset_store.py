"""The contract every keyset store passes: read, check-and-set write, conflicts, not found.

A test class subclasses :class:`KeysetStoreContract` and supplies only the ``store``
fixture: a store at a location where nothing is stored yet (a fresh name per test).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from vaultkit.errors import KeysetConflictError, NotFoundError, VaultkitError
from vaultkit.fields import Keyset
from vaultkit.fields.keyset_store import KeysetStore, StoredKeyset, keyset_store

DOC_A = '{"format": "vaultkit.keyset.v1", "doc": "a"}\n'
DOC_B = '{"format": "vaultkit.keyset.v1", "doc": "b"}\n'
DOC_C = '{"format": "vaultkit.keyset.v1", "doc": "c"}\n'


def _unchained(exc: BaseException) -> None:
    assert isinstance(exc, VaultkitError)
    assert exc.__cause__ is None and exc.__context__ is None


class KeysetStoreContract:
    @pytest.fixture
    def store(self) -> KeysetStore:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def config(self) -> Any:
        """The vaultkit Config the store's location needs (None: the default)."""
        return None

    def test_is_a_keyset_store_from_the_factory(self, store: KeysetStore,
                                                config: Any) -> None:
        assert isinstance(store, KeysetStore)
        assert type(keyset_store(store.uri, config=config)) is type(store)

    def test_not_found(self, store: KeysetStore) -> None:
        with pytest.raises(NotFoundError) as info:
            store.read()
        _unchained(info.value)

    def test_create_then_read(self, store: KeysetStore) -> None:
        version = store.write(DOC_A, create=True)
        got = store.read()
        assert isinstance(got, StoredKeyset)
        assert got.text == DOC_A and got.version == version

    def test_create_refuses_to_replace(self, store: KeysetStore) -> None:
        store.write(DOC_A, create=True)
        with pytest.raises(KeysetConflictError) as info:
            store.write(DOC_B, create=True)
        _unchained(info.value)
        assert store.read().text == DOC_A

    def test_check_and_set_write(self, store: KeysetStore) -> None:
        v1 = store.write(DOC_A, create=True)
        v2 = store.write(DOC_B, version=v1)
        assert v2 != v1
        got = store.read()
        assert got.text == DOC_B and got.version == v2

    def test_stale_version_conflicts(self, store: KeysetStore) -> None:
        v1 = store.write(DOC_A, create=True)
        store.write(DOC_B, version=v1)       # another process saved in between
        with pytest.raises(KeysetConflictError) as info:
            store.write(DOC_C, version=v1)   # ...so this stale write must not win
        _unchained(info.value)
        assert store.read().text == DOC_B

    def test_version_of_a_missing_keyset_conflicts(self, store: KeysetStore,
                                                   config: Any) -> None:
        other = keyset_store(store.uri + "-other", config=config)
        version = other.write(DOC_A)  # a real version token of this kind of store
        with pytest.raises(KeysetConflictError):
            store.write(DOC_A, version=version)
        with pytest.raises(NotFoundError):
            store.read()

    def test_unconditional_write_creates_and_replaces(self, store: KeysetStore) -> None:
        store.write(DOC_A)
        assert store.read().text == DOC_A
        store.write(DOC_B)
        assert store.read().text == DOC_B

    def test_concurrent_check_and_set_has_one_winner(self, store: KeysetStore) -> None:
        v1 = store.write(DOC_A, create=True)
        outcomes: list[str] = []
        barrier = threading.Barrier(4)

        def writer(doc: str) -> None:
            barrier.wait()
            try:
                store.write(doc, version=v1)
                outcomes.append("won")
            except KeysetConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=writer, args=(f'{{"w": {i}}}',)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Strict check-and-set stores have exactly one winner (Secrets Manager overrides
        # this: its check and its write are two calls; see keyset_store's docstring).
        assert outcomes.count("won") == self.concurrent_winners(outcomes)
        assert store.read().text in {f'{{"w": {i}}}' for i in range(4)}

    def concurrent_winners(self, outcomes: list[str]) -> int:
        return 1

    def test_keyset_save_and_load_through_the_store(self, store: KeysetStore,
                                                    config: Any) -> None:
        ks = Keyset.create("contract", kek="memory://keyset-store-contract", config=config)
        ks.save(store.uri, create=True)
        loaded = Keyset.load(store.uri, config=config)
        assert loaded.describe()["keys"] == ks.describe()["keys"]
        stale = Keyset.load(store.uri, config=config)
        loaded.rotate()
        loaded.save()
        stale.rotate()
        with pytest.raises(KeysetConflictError):
            stale.save()
        assert Keyset.load(store.uri, config=config).primary_id == loaded.primary_id
