"""Keysets: data keys with ids and states, each wrapped by a key provider (the KEK).

>>> ks = Keyset.create("users", kek="memory://users-kek")
>>> first = ks.primary_id
>>> second = ks.rotate()          # add a new primary; the old one becomes decrypt-only
>>> ks.key_info(first)
('decrypt-only', 'xaes-256-gcm')
>>> ks.save("memory://users-keyset")
>>> Keyset.load("memory://users-keyset").primary_id == second
True

States follow Tink's rotation order (add, distribute, promote, re-encrypt,
retire):

* ``primary``: encrypts and decrypts (exactly one key);
* ``decrypt-only``: decrypts existing data; a freshly added key waits here until
  every process has the new keyset, then ``promote`` makes it primary;
* ``retired``: refuses to decrypt. The wrapped key stays in the document, so a
  mistaken retire can be undone with ``restore``.

Each data key is wrapped separately, with the provider context
``{"vaultkit": "field-keyset", "keyset": <name>, "key": "data/<id>"}`` (index root
keys use ``"index/v<N>"``): a wrapped key moved to another keyset or another id
does not unwrap. A process unwraps each key at most once (single-flight: threads
asking for the same key wait for one provider call); see ``docs/fields.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..config import Config
from ..errors import ConfigError, KeyProviderError, KeysetError, VaultkitError
from ..keys import KeyProvider, get_key_provider
from ..secret import Secret
from ._detach import detached
from .format import XAES_256_GCM, suite_named

FORMAT = "vaultkit.keyset.v1"
STATES = ("primary", "decrypt-only", "retired")
INDEX_STATES = ("active", "retired")


@dataclass(frozen=True)
class KeyInfo:
    """Non-secret facts about one data key."""

    id: int
    state: str
    suite: str
    created: str

    @property
    def hex_id(self) -> str:
        return f"{self.id:08x}"


_live: weakref.WeakSet[Keyset] = weakref.WeakSet()

# Unwrapped keys, shared by every Keyset object of the process: reloading a keyset
# after a rotation must not unwrap the keys it already had. The cache key names
# the KEK, the keyset, the key and a hash of the wrapped blob, so it only ever
# returns what the KEK itself would return for that blob.
_cache_lock = threading.Lock()
_unwrapped: dict[tuple[str, str, str, bytes], bytes] = {}
_flights: dict[tuple[str, str, str, bytes], threading.Lock] = {}


def _reset_after_fork() -> None:
    # Locks held by another thread at fork time stay held forever in the child:
    # make fresh ones, and a fresh provider per keyset (SDK connections are not
    # fork-safe). Unwrapped keys are kept: they are valid, and re-unwrapping them
    # would only add provider calls.
    global _cache_lock, _flights
    _cache_lock = threading.Lock()
    _flights = {}
    for ks in list(_live):
        ks._lock = threading.Lock()
        ks._provider = None


def forget_unwrapped_keys() -> None:
    """Drop every cached unwrapped key of this process (tests; after a KEK compromise)."""
    with _cache_lock:
        _unwrapped.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Keyset:
    """A named set of data keys wrapped under one key provider."""

    def __init__(self, document: dict[str, Any], *, config: Config | None = None,
                 provider: KeyProvider | None = None, location: str | None = None) -> None:
        self._doc = _validate(document)
        self._config = config
        self._provider = provider
        self._lock = threading.Lock()
        #: Bumped on every key state change, so ciphers drop stale per-key entries.
        self.generation = 0
        self._version: Any = None
        self.location = location
        _live.add(self)

    def __repr__(self) -> str:
        return f"Keyset({self.name!r}, kek={self.kek!r}, primary={self.primary_id:08x})"

    # -- construction and storage

    @classmethod
    def create(cls, name: str, *, kek: str, config: Config | None = None,
               provider: KeyProvider | None = None) -> Keyset:
        """A new keyset with one primary data key and one blind-index root key."""
        if not name or len(name) > 128:
            raise ConfigError("keyset name must be 1-128 characters")
        ks = cls({"format": FORMAT, "name": name, "kek": kek, "keys": [], "index_keys": []},
                 config=config, provider=provider)
        ks.add_key(primary=True)
        ks.rotate_index_key()
        return ks

    @classmethod
    def from_json(cls, text: str | bytes, *, config: Config | None = None,
                  provider: KeyProvider | None = None, location: str | None = None) -> Keyset:
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            doc = None  # the decoder's error quotes the document: it must not ride along
        if doc is None:
            raise ConfigError("keyset is not valid JSON", reference=location)
        return cls(doc, config=config, provider=provider, location=location)

    @classmethod
    def load(cls, uri: str, *, config: Config | None = None,
             provider: KeyProvider | None = None) -> Keyset:
        """Load a keyset from ``file://``, ``vault://``, ``awssm://`` or ``memory://``."""
        from .keyset_store import keyset_store

        stored = keyset_store(uri, config=config).read()
        ks = cls.from_json(stored.text, config=config, provider=provider, location=uri)
        ks._version = stored.version
        return ks

    def save(self, uri: str | None = None, *, create: bool = False) -> None:
        """Store the keyset (wrapped keys only).

        Saving back where it was loaded from is a check-and-set write: if another process
        saved the keyset since, this raises KeysetConflictError (load it again and redo the
        change) instead of silently dropping that process's rotation.
        """
        from .keyset_store import keyset_store

        target = uri or self.location
        if target is None:
            raise ConfigError("no keyset location given")
        same = target == self.location
        self._version = keyset_store(target, config=self._config).write(
            self.to_json(), version=self._version if same else None, create=create)
        self.location = target

    def to_json(self) -> str:
        return json.dumps(self._doc, indent=2, sort_keys=True) + "\n"

    # -- facts

    @property
    def name(self) -> str:
        return str(self._doc["name"])

    @property
    def kek(self) -> str:
        return str(self._doc["kek"])

    @property
    def primary_id(self) -> int:
        for k in self._doc["keys"]:
            if k["state"] == "primary":
                return int(k["id"], 16)
        raise KeysetError("keyset has no primary key")

    def all_keys(self) -> list[KeyInfo]:
        return [KeyInfo(int(k["id"], 16), k["state"], k["suite"], k["created"])
                for k in self._doc["keys"]]

    def key_info(self, key_id: int) -> tuple[str, str] | None:
        entry = self._entry(key_id)
        return None if entry is None else (entry["state"], entry["suite"])

    def index_versions(self) -> list[tuple[int, str]]:
        """``(version, state)`` of each blind-index root key."""
        return [(int(k["version"]), k["state"]) for k in self._doc["index_keys"]]

    def describe(self) -> dict[str, Any]:
        """Everything about the keyset except key material (for ``keyset show``)."""
        return {
            "name": self.name, "kek": self.kek, "location": self.location,
            "primary": f"{self.primary_id:08x}",
            "keys": [{"id": k.hex_id, "state": k.state, "suite": k.suite, "created": k.created}
                     for k in self.all_keys()],
            "index_keys": [{"version": v, "state": s} for v, s in self.index_versions()],
        }

    # -- key material (unwrapped once per process)

    def _context(self, ref: str) -> dict[str, str]:
        return {"vaultkit": "field-keyset", "keyset": self.name, "key": ref}

    def provider(self) -> KeyProvider:
        with self._lock:
            if self._provider is None:
                self._provider = get_key_provider(self.kek, config=self._config)
            return self._provider

    def _cache_key(self, ref: str, wrapped_b64: str) -> tuple[str, str, str, bytes]:
        return (self.kek, self.name, ref, hashlib.sha256(wrapped_b64.encode()).digest())

    def _remember(self, ref: str, wrapped_b64: str, key: bytes) -> None:
        with _cache_lock:
            _unwrapped[self._cache_key(ref, wrapped_b64)] = key

    def _unwrap(self, ref: str, wrapped_b64: str, length: int) -> bytes:
        ckey = self._cache_key(ref, wrapped_b64)
        cached = _unwrapped.get(ckey)
        if cached is not None:
            return cached
        with _cache_lock:
            flight = _flights.setdefault(ckey, threading.Lock())
        # Single flight: the first thread unwraps, the others wait on the same lock and
        # then find the key in the cache, so N threads cost one provider call.
        with flight:
            cached = _unwrapped.get(ckey)
            if cached is not None:
                return cached
            key = self._unwrap_once(ref, wrapped_b64)
            if len(key) != length:
                raise KeyProviderError("unwrapped key has the wrong length",
                                       reference=f"{self.name}/{ref}")
            with _cache_lock:
                _unwrapped[ckey] = key
                _flights.pop(ckey, None)
            return key

    def _unwrap_once(self, ref: str, wrapped_b64: str) -> bytes:
        """One provider call. Its errors leave without their chain (a botocore or urllib3
        exception behind a KeyProviderError), raised outside the handler."""
        try:
            wrapped: bytes | None = base64.b64decode(wrapped_b64, validate=True)
        except (binascii.Error, ValueError):
            wrapped = None
        if wrapped is None:
            raise KeyProviderError("wrapped key in keyset is not base64",
                                   reference=f"{self.name}/{ref}")
        err: VaultkitError
        try:
            return self.provider().decrypt_data_key(wrapped, context=self._context(ref)).reveal()
        except VaultkitError as exc:
            err = detached(exc)
        raise err

    def data_key(self, key_id: int) -> Secret[bytes]:
        """The unwrapped data key ``key_id`` (cached after the first provider call).

        A :class:`~vaultkit.secret.Secret`: its repr and str never show the bytes;
        ``.reveal()`` them only where a cipher is built.
        """
        entry = self._entry(key_id)
        if entry is None:
            raise KeysetError(f"no key {key_id:08x} in keyset", reference=self.name)
        if entry["state"] == "retired":
            raise KeysetError(f"key {key_id:08x} is retired", reference=self.name)
        return Secret(self._unwrap(f"data/{entry['id']}", entry["wrapped"],
                                   suite_named(entry["suite"]).key_bytes),
                      label=f"{self.name}/data/{entry['id']}")

    def index_root(self, version: int) -> Secret[bytes]:
        """The blind-index root key ``version`` (never used to encrypt), as a Secret."""
        for k in self._doc["index_keys"]:
            if int(k["version"]) == version:
                if k["state"] == "retired":
                    raise KeysetError(f"index key v{version} is retired", reference=self.name)
                return Secret(self._unwrap(f"index/v{version}", k["wrapped"], 32),
                              label=f"{self.name}/index/v{version}")
        raise KeysetError(f"no index key v{version} in keyset", reference=self.name)

    # -- changes

    def _entry(self, key_id: int) -> dict[str, Any] | None:
        want = f"{key_id:08x}"
        for k in self._doc["keys"]:
            if k["id"] == want:
                entry: dict[str, Any] = k  # the live entry (state changes mutate it)
                return entry
        return None

    def _changed(self) -> None:
        self.generation += 1

    def _new_id(self) -> int:
        taken = {int(k["id"], 16) for k in self._doc["keys"]}
        while True:
            # Random 32-bit ids (as Tink): independent keysets rarely share ids, and an id
            # says nothing about the key's age or count.
            key_id = int.from_bytes(os.urandom(4), "big")
            if key_id not in taken and key_id != 0:
                return key_id

    def add_key(self, *, primary: bool = False) -> int:
        """Add a new XAES-256-GCM data key (decrypt-only unless ``primary``); returns its id."""
        key_id = self._new_id()
        ref = f"data/{key_id:08x}"
        dk = self.provider().generate_data_key(context=self._context(ref))
        material = dk.plaintext.reveal()
        if len(material) != XAES_256_GCM.key_bytes:
            raise KeyProviderError("key provider returned a key of the wrong length")
        if primary:
            for k in self._doc["keys"]:
                if k["state"] == "primary":
                    k["state"] = "decrypt-only"
        wrapped = _b64(dk.wrapped)
        self._doc["keys"].append({
            "id": f"{key_id:08x}", "state": "primary" if primary else "decrypt-only",
            "suite": XAES_256_GCM.name, "created": _now(), "wrapped": wrapped})
        self._remember(ref, wrapped, material)
        self._changed()
        return key_id

    def import_key(self, material: Secret[bytes] | bytes, *, suite: str) -> int:
        """Import an existing key (for example an AES-128-GCM key) as decrypt-only.

        What it is for: reading data another system wrote under that suite (vk1 layout,
        suites 0x02/0x03), so ``reencrypt`` can move it to a key vaultkit generated.
        The risk: vaultkit did not generate the key, so it cannot vouch for it. Whoever
        held it before (the old system, its backups, its logs) can still decrypt
        everything it protects and forge values that decrypt under it, and a GCM key
        with 96-bit random nonces has a usage limit vaultkit never tracked. Import it,
        re-encrypt, then retire it; never promote it (read-only suites cannot be).
        """
        raw = material.reveal() if isinstance(material, Secret) else material
        s = suite_named(suite)
        if len(raw) != s.key_bytes:
            raise ConfigError(f"suite {suite} needs a {s.key_bytes}-byte key")
        key_id = self._new_id()
        ref = f"data/{key_id:08x}"
        wrapped = self.provider().encrypt_data_key(raw, context=self._context(ref))
        self._doc["keys"].append({"id": f"{key_id:08x}", "state": "decrypt-only",
                                  "suite": s.name, "created": _now(), "wrapped": _b64(wrapped)})
        self._remember(ref, _b64(wrapped), raw)
        self._changed()
        return key_id

    def promote(self, key_id: int) -> None:
        """Make a decrypt-only key primary; the old primary becomes decrypt-only."""
        entry = self._require(key_id)
        if entry["state"] == "retired":
            raise KeysetError("a retired key cannot become primary; restore it first",
                              reference=self.name)
        if not suite_named(entry["suite"]).writable:
            raise KeysetError(f"suite {entry['suite']} is read-only; it cannot be primary",
                              reference=self.name)
        for k in self._doc["keys"]:
            if k["state"] == "primary":
                k["state"] = "decrypt-only"
        entry["state"] = "primary"
        self._changed()

    def rotate(self) -> int:
        """Add a new key and make it primary at once; returns the new id.

        For fleets, prefer ``add_key()``, deploy, then ``promote()``: a process that
        has not yet loaded the new keyset can then still read every new value.
        """
        return self.add_key(primary=True)

    def retire(self, key_id: int) -> None:
        """Stop decrypting with a key. The CLI first checks that no row still uses it."""
        entry = self._require(key_id)
        if entry["state"] == "primary":
            raise KeysetError("cannot retire the primary key; rotate first", reference=self.name)
        entry["state"] = "retired"
        with _cache_lock:
            _unwrapped.pop(self._cache_key(f"data/{entry['id']}", entry["wrapped"]), None)
        self._changed()

    def restore(self, key_id: int) -> None:
        """Undo ``retire``: the key becomes decrypt-only again."""
        entry = self._require(key_id)
        if entry["state"] == "retired":
            entry["state"] = "decrypt-only"
            self._changed()

    def rotate_index_key(self) -> int:
        """Add a new blind-index root key version; returns the version number."""
        version = 1 + max((int(k["version"]) for k in self._doc["index_keys"]), default=0)
        ref = f"index/v{version}"
        dk = self.provider().generate_data_key(context=self._context(ref))
        wrapped = _b64(dk.wrapped)
        self._doc["index_keys"].append({"version": version, "state": "active",
                                        "created": _now(), "wrapped": wrapped})
        self._remember(ref, wrapped, dk.plaintext.reveal())
        self._changed()
        return version

    def retire_index_key(self, version: int) -> None:
        for k in self._doc["index_keys"]:
            if int(k["version"]) == version:
                k["state"] = "retired"
                with _cache_lock:
                    _unwrapped.pop(self._cache_key(f"index/v{version}", k["wrapped"]), None)
                self._changed()
                return
        raise KeysetError(f"no index key v{version}", reference=self.name)

    def _require(self, key_id: int) -> dict[str, Any]:
        entry = self._entry(key_id)
        if entry is None:
            raise KeysetError(f"no key {key_id:08x} in keyset", reference=self.name)
        return entry


def _validate(doc: Any) -> dict[str, Any]:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"not a vaultkit keyset: {why}")

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f"format must be {FORMAT!r}")
    for field in ("name", "kek"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            raise bad(f"missing {field}")
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise bad("keys must be a list")
    seen: set[str] = set()
    for k in keys:
        if not isinstance(k, dict) or k.get("state") not in STATES:
            raise bad("each key needs a state of " + ", ".join(STATES))
        kid = k.get("id")
        if not isinstance(kid, str) or len(kid) != 8 or kid in seen:
            raise bad("key ids are unique 8-digit hex strings")
        if not all(ch in "0123456789abcdefABCDEF" for ch in kid):
            raise bad("key ids are hex")
        seen.add(kid)
        suite_named(str(k.get("suite")))
        if not isinstance(k.get("wrapped"), str):
            raise bad("each key needs its wrapped form")
        k.setdefault("created", "")
    if keys and sum(k["state"] == "primary" for k in keys) != 1:
        raise bad("exactly one key must be primary")
    index_keys = doc.setdefault("index_keys", [])
    if not isinstance(index_keys, list) or any(
            not isinstance(k, dict) or k.get("state") not in INDEX_STATES
            or not isinstance(k.get("version"), int) or not isinstance(k.get("wrapped"), str)
            for k in index_keys):
        raise bad("index_keys entries need version, state and wrapped")
    return doc


__all__ = ["FORMAT", "KeyInfo", "Keyset", "KeysetError", "STATES", "forget_unwrapped_keys"]
