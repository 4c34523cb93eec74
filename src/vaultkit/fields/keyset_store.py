"""Where a wrapped keyset lives: one small protocol, four stores, one factory.

=========================  =================================================================
``file://<path>``          a JSON file written atomically with mode 0600; check-and-set
                           under an advisory lock (``<path>.lock``), version = SHA-256
``vault://<mount>/<path>`` KV v2 ``<mount>/data/<path>``, field ``keyset``; check-and-set
                           is Vault's own ``cas`` option, version = the KV version
``awssm://<name>``         a Secrets Manager secret whose SecretString is the keyset JSON;
                           version = ``VersionId`` (see "Secrets Manager" below)
``memory://<name>``        process memory (tests and demos); version = a counter
=========================  =================================================================

>>> store = keyset_store("memory://doc-store")
>>> v1 = store.write('{"k": 1}', create=True)
>>> store.read().text
'{"k": 1}'
>>> v2 = store.write('{"k": 2}', version=v1)
>>> try:
...     store.write('{"k": 3}', version=v1)   # a stale version: someone saved since
... except KeysetConflictError:
...     print("conflict")
conflict

Every store answers the same way (``tests/contracts/keyset_store.py`` holds them to it):
``read()`` returns the text and a version token, or raises ``NotFoundError``;
``write(text, version=v)`` replaces the keyset only if it is still at ``v``;
``write(text, create=True)`` only if there is none; a lost race is
:class:`~vaultkit.errors.KeysetConflictError`; ``write(text)`` without either
replaces unconditionally (saving a keyset to a new place). Errors leave without a
chained exception.

Secrets Manager has no conditional ``PutSecretValue``, but moving a staging label is
one: a check-and-set write stores the new version under the label ``vaultkit-pending``
only (``AWSCURRENT`` stays where it is), then moves ``AWSCURRENT`` to it with
``UpdateSecretVersionStage(RemoveFromVersionId=<the version read>)``, which Secrets
Manager refuses if ``AWSCURRENT`` is on another version by then. Of several racing
writers exactly one wins; a loser leaves a version nobody reads (labelled
``vaultkit-pending`` until the next write moves the label, then deprecated).

The stored document holds only *wrapped* data keys, so the store needs no more
protection than integrity; the key provider (KMS, transit, local) guards the keys.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from ..config import Config
from ..errors import (
    ConfigError,
    InvalidReferenceError,
    KeysetConflictError,
    NotFoundError,
    StorageError,
    VaultkitError,
)
from ._detach import detached

SCHEMES = ("file", "vault", "awssm", "memory")
_CONFLICT = "the stored keyset changed since it was read (or already exists); load it again " \
            "and redo the change"

T = TypeVar("T")


class StoredKeyset(NamedTuple):
    """A keyset document as read, and the version token a check-and-set write needs."""

    text: str
    version: Any


@runtime_checkable
class KeysetStore(Protocol):
    """Where one keyset document is kept."""

    uri: str

    def read(self) -> StoredKeyset:
        """The stored document and its version; NotFoundError if there is none."""
        ...

    def write(self, text: str, *, version: Any = None, create: bool = False) -> Any:
        """Store ``text``; returns the new version. KeysetConflictError if ``create`` and a
        keyset exists, or ``version`` is given and the stored one is no longer at it."""
        ...


def keyset_store(uri: str, *, config: Config | None = None) -> KeysetStore:
    """The store for a keyset location (``file://``, ``vault://``, ``awssm://``, ``memory://``)."""
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidReferenceError(
            "keyset location must look like file://, vault://, awssm:// or memory://",
            reference=str(uri)[:200])
    scheme, rest = uri.split("://", 1)
    if scheme not in SCHEMES or not rest:
        raise InvalidReferenceError(
            f"unknown keyset location scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
            reference=uri)
    if scheme == "memory":
        return MemoryKeysetStore(uri, rest)
    if scheme == "file":
        return FileKeysetStore(uri, Path(rest))
    if scheme == "vault":
        return VaultKeysetStore(uri, rest, config)
    return SecretsManagerKeysetStore(uri, rest, config)


def _conflict(uri: str, *, create: bool = False) -> KeysetConflictError:
    if create:
        return KeysetConflictError("a keyset already exists there; refusing to replace it",
                                   reference=uri)
    return KeysetConflictError(_CONFLICT, reference=uri)


# --- memory ----------------------------------------------------------------------------

_memory_lock = threading.Lock()
_memory: dict[str, tuple[str, int]] = {}


class MemoryKeysetStore:
    """Process memory; the version is a counter per name."""

    def __init__(self, uri: str, name: str) -> None:
        self.uri, self._name = uri, name

    def __repr__(self) -> str:
        return f"MemoryKeysetStore({self.uri!r})"

    def read(self) -> StoredKeyset:
        with _memory_lock:
            found = _memory.get(self._name)
        if found is None:
            raise NotFoundError("no keyset stored there", source="memory", reference=self.uri)
        return StoredKeyset(*found)

    def write(self, text: str, *, version: Any = None, create: bool = False) -> Any:
        with _memory_lock:
            current = _memory.get(self._name)
            if (create and current is not None) or (
                    version is not None and (current is None or current[1] != version)):
                raise _conflict(self.uri, create=create)
            new = (current[1] if current else 0) + 1
            _memory[self._name] = (text, new)
        return new


# --- file ------------------------------------------------------------------------------


class FileKeysetStore:
    """A 0600 JSON file, replaced atomically; check-and-set under ``<path>.lock``.

    The version is the SHA-256 of the file's bytes, so any change by any writer (even
    one that does not take the lock, such as an editor) is seen as a conflict.
    """

    def __init__(self, uri: str, path: Path) -> None:
        self.uri, self.path = uri, path

    def __repr__(self) -> str:
        return f"FileKeysetStore({self.uri!r})"

    def _read_bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
        raise StorageError(f"cannot read keyset file: {why}", source="file", reference=self.uri)

    def read(self) -> StoredKeyset:
        data = self._read_bytes()
        if data is None:
            raise NotFoundError("keyset file not found", source="file", reference=self.uri)
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:
            raise StorageError("keyset file is not UTF-8", source="file", reference=self.uri)
        return StoredKeyset(text, hashlib.sha256(data).hexdigest())

    def write(self, text: str, *, version: Any = None, create: bool = False) -> Any:
        from ..files import file_lock, write_private

        data = text.encode("utf-8")
        lock = self.path.with_name(self.path.name + ".lock")
        with file_lock(lock):
            current = self._read_bytes()
            if (create and current is not None) or (version is not None and (
                    current is None or hashlib.sha256(current).hexdigest() != version)):
                raise _conflict(self.uri, create=create)
            write_private(self.path, data)
        return hashlib.sha256(data).hexdigest()


# --- Vault / OpenBao KV v2 ---------------------------------------------------------------


def _vault_call(uri: str, call: Callable[[], T], *, create: bool = False) -> T:
    """Run a Vault call; its vaultkit error leaves without a chain (outside the handler).
    A refused check-and-set becomes KeysetConflictError."""
    err: VaultkitError
    try:
        return call()
    except VaultkitError as exc:
        err = (_conflict(uri, create=create)
               if isinstance(exc, ConfigError) and "check-and-set" in str(exc) else detached(exc))
    raise err


class VaultKeysetStore:
    """KV v2 ``<mount>/data/<path>``, field ``keyset``; writes use Vault's ``cas``."""

    def __init__(self, uri: str, rest: str, config: Config | None) -> None:
        rest = rest.strip("/")
        if "/" not in rest:
            raise InvalidReferenceError("vault:// keyset location needs <mount>/<path>",
                                        reference=uri)
        self.uri = uri
        self._mount, self._path = rest.split("/", 1)
        self._config = config

    def __repr__(self) -> str:
        return f"VaultKeysetStore({self.uri!r})"

    def _client(self) -> Any:
        from ..backends.vault import vault_client

        return vault_client(self._config)

    def read(self) -> StoredKeyset:
        path = f"{self._mount}/data/{self._path}"
        body = _vault_call(self.uri, lambda: self._client().read(path, reference=self.uri))
        data = body.get("data") or {}
        text = (data.get("data") or {}).get("keyset")
        if not isinstance(text, str):
            # A deleted KV version answers with data null: absent as far as keysets go.
            raise NotFoundError("no 'keyset' field at that KV path", source="vault",
                                reference=self.uri)
        return StoredKeyset(text, (data.get("metadata") or {}).get("version"))

    def write(self, text: str, *, version: Any = None, create: bool = False) -> Any:
        # KV v2 check-and-set: cas=0 means "only if absent"; cas=N "only if still version N".
        options = {"cas": 0} if create else ({"cas": version} if version is not None else {})
        path = f"{self._mount}/data/{self._path}"
        body = _vault_call(self.uri, lambda: self._client().write(
            path, {"data": {"keyset": text}, "options": options}, reference=self.uri),
            create=create)
        return (body.get("data") or {}).get("version")


# --- AWS Secrets Manager -----------------------------------------------------------------


class SecretsManagerKeysetStore:
    """A secret's ``SecretString``; version = ``VersionId`` (check-and-set by moving the
    ``AWSCURRENT`` label: see above)."""

    #: The label a check-and-set write stages its new version under.
    PENDING_STAGE = "vaultkit-pending"

    def __init__(self, uri: str, name: str, config: Config | None) -> None:
        self.uri, self._name, self._config = uri, name, config

    def __repr__(self) -> str:
        return f"SecretsManagerKeysetStore({self.uri!r})"

    def _call(self, call: Callable[[Any], T], *, exists_is_conflict: bool = False,
              conflict_codes: tuple[str, ...] = ()) -> T:
        """Run ``call(client)``; botocore errors become fresh vaultkit errors, unchained.
        An error code in ``conflict_codes`` is a lost check-and-set."""
        from ..backends import aws

        client = aws.client("secretsmanager", self._config or Config.load())
        err: BaseException
        try:
            return call(client)
        except Exception as exc:  # noqa: BLE001 - mapped below; anything unmapped re-raised
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            mapped = (_conflict(self.uri, create=True) if exists_is_conflict and code ==
                      "ResourceExistsException" else _conflict(self.uri)
                      if code in conflict_codes else
                      aws.map_exception(exc, source="awssm", reference=self.uri))
            err = mapped if mapped is not None else exc
        raise err

    def read(self) -> StoredKeyset:
        # AWSCURRENT named explicitly: the version a check-and-set write moved the label to
        # (moto's default lookup ignores label moves; AWS treats both the same).
        resp = self._call(lambda c: c.get_secret_value(SecretId=self._name,
                                                       VersionStage="AWSCURRENT"))
        text = resp.get("SecretString")
        if not isinstance(text, str):
            raise StorageError("secret has no SecretString", source="awssm", reference=self.uri)
        return StoredKeyset(text, resp.get("VersionId"))

    def write(self, text: str, *, version: Any = None, create: bool = False) -> Any:
        if create:
            resp = self._call(lambda c: c.create_secret(Name=self._name, SecretString=text),
                              exists_is_conflict=True)
            return resp.get("VersionId")
        if version is not None:
            return self._check_and_set(text, version)
        try:
            resp = self._call(lambda c: c.put_secret_value(SecretId=self._name,
                                                           SecretString=text))
        except NotFoundError:
            resp = None  # an unconditional write to a new place creates the secret
        if resp is None:
            resp = self._call(lambda c: c.create_secret(Name=self._name, SecretString=text),
                              exists_is_conflict=True)
        return resp.get("VersionId")

    def _check_and_set(self, text: str, version: Any) -> Any:
        """Stage ``text`` beside the current version, then move ``AWSCURRENT`` to it only
        from ``version``: Secrets Manager checks and moves the label in one call."""
        if not isinstance(version, str) or not version:
            raise _conflict(self.uri)
        staged = self._call(lambda c: c.put_secret_value(
            SecretId=self._name, SecretString=text, VersionStages=[self.PENDING_STAGE]),
            conflict_codes=("ResourceNotFoundException",))
        new: str = staged["VersionId"]
        self._call(lambda c: c.update_secret_version_stage(
            SecretId=self._name, VersionStage="AWSCURRENT", MoveToVersionId=new,
            RemoveFromVersionId=version), conflict_codes=("InvalidParameterException",))
        return new


__all__ = [
    "FileKeysetStore", "KeysetStore", "MemoryKeysetStore", "SCHEMES", "SecretsManagerKeysetStore",
    "StoredKeyset", "VaultKeysetStore", "keyset_store",
]
