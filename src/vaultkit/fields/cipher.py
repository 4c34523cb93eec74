"""``FieldCipher``: encrypt and decrypt database fields under a keyset, bound to a context.

>>> from vaultkit.fields import Keyset
>>> ks = Keyset.create("doc", kek="memory://doc-kek")
>>> cipher = FieldCipher(ks)
>>> blob = cipher.encrypt("a@example.com", context={"table": "users", "column": "email", "row": "1"})
>>> len(blob) - len("a@example.com")
45
>>> cipher.decrypt(blob, context={"table": "users", "column": "email", "row": "1"}, as_str=True)
'a@example.com'

Nonce safety (``docs/FORMAT.md`` section 5): the default suite is XAES-256-GCM
with a random 192-bit nonce ``prefix(12) || tail(12)``. Each process draws a
random prefix and caches the derived AES-256 key for it, so an encryption costs
one ``AESGCM.encrypt`` plus a fresh random 12-byte tail. The prefix is redrawn
after ``2**30`` messages and in a forked child, so one derived key never sees
more than ``2**30`` random 96-bit tails (collision probability below ``2**-37``)
and no two processes share a derived key except by a 96-bit random coincidence.

Tails are drawn from ``os.urandom`` in blocks of :data:`TAILS_PER_DRAW` (one
system call instead of one per field) and handed out by a ``deque`` owned by
the writer of one prefix. Each tail is still an independent ``os.urandom``
value used once: ``deque.popleft`` is atomic, so two threads never receive the
same tail; a block is counted against the prefix's budget when it is drawn, so
the ``2**30`` bound counts every tail drawn, used or not; and a forked child
never uses its parent's buffered tails, because it starts a new writer (new
prefix, new deque) before its first encryption.

Derived keys (``docs/fields.md``, "Many writers"): a table written by many
processes holds one nonce prefix per writing process, so a reader keeps the
derived key of each prefix it meets in a cache of :data:`DERIVED_KEY_CACHE_SIZE`
entries (per cipher). The cache is a two-generation LRU: lookups hit a plain
dict (no bookkeeping on the hot path); when the young generation is full it
becomes the old one, and an old entry used again moves back. It therefore never
drops an entry that an exact LRU of the same size would keep, and holds at most
twice that many. Each entry is an ``AESGCM`` object with its expanded key and
GHASH table: about 3 KiB (measured with cryptography 50 on x86-64), so 16,384
prefixes cost about 48 MiB, reached only by a process that actually reads that
many distinct prefixes. ``FieldCipher(..., derived_key_cache=N)`` changes the size.

Errors carry nothing: no exception leaving this module has a ``__cause__`` or a
``__context__``. Every failure is decided inside a ``try`` and raised after it,
so no plaintext (a ``UnicodeDecodeError`` holds the whole value) and no library
exception rides along for an error reporter to ship.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple, Protocol, overload

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigError, DecryptionError, VaultkitError
from ..secret import Secret
from ._detach import detached
from .format import (
    _PLANS,  # the dict-context plans, inlined in the hot paths
    HEADER_BYTES,
    SUITES_BY_ID,
    TAG_BYTES,
    XAES_256_GCM,
    ContextLike,
    FieldContext,
    Suite,
    armor,
    dearmor,
    encode_context,
    header,
)
from .xaes import PREFIX_BYTES, Deriver, derive_key

#: Messages per derived XAES key (per process prefix) before the prefix is redrawn.
MESSAGES_PER_PREFIX = 1 << 30
#: Derived XAES keys (one per writing process's nonce prefix) a cipher keeps, per generation.
DERIVED_KEY_CACHE_SIZE = 16_384
#: Nonce tails drawn per ``os.urandom`` call by ``FieldCipher.encrypt`` (12 bytes each).
TAILS_PER_DRAW = 256

_XAES_HEAD = HEADER_BYTES + PREFIX_BYTES  # suite, key id, nonce prefix
_XAES_BODY = HEADER_BYTES + XAES_256_GCM.nonce_bytes  # where ciphertext starts
_XAES_MIN = _XAES_BODY + TAG_BYTES
_urandom = os.urandom

_fork_generation = 0

#: A derived key's AES-GCM, cached per ``header || nonce prefix`` (the AAD's first part,
#: the header, is sliced from the blob: one object less to fetch per field).
_Opener = AESGCM


def _after_fork_in_child() -> None:
    # A child shares the parent's memory, hence its nonce prefixes: bump the
    # generation so every writer redraws its prefix before the next encryption.
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


class KeySource(Protocol):
    """What a cipher needs from a keyset (``Keyset`` implements it)."""

    #: Changes whenever a key's state changes (so ciphers drop stale entries).
    generation: int

    @property
    def primary_id(self) -> int: ...

    def key_info(self, key_id: int) -> tuple[str, str] | None:
        """``(state, suite name)`` of a key, or ``None`` if the keyset has no such key."""
        ...

    def data_key(self, key_id: int) -> Secret[bytes]:
        """The unwrapped key (unwrapped once per process, then cached)."""
        ...


class _Reader:
    """Decrypts blobs of one key id."""

    __slots__ = ("_aead", "_deriver", "generation", "suite", "xaes")

    def __init__(self, suite: Suite, key: bytes, generation: int) -> None:
        if len(key) != suite.key_bytes:
            raise ConfigError(f"key length does not match suite {suite.name}")
        self.suite = suite
        self.generation = generation
        self.xaes = suite is XAES_256_GCM
        self._deriver = Deriver(key) if self.xaes else None
        self._aead = None if self.xaes else AESGCM(key)

    def derive(self, prefix: bytes) -> AESGCM:
        """The AES-GCM of the derived key for ``prefix`` (XAES keys only)."""
        if self._deriver is None:
            raise ConfigError(f"suite {self.suite.name} derives no keys")
        return AESGCM(self._deriver.derive(prefix))

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if self._aead is None:
            if len(blob) < _XAES_MIN:
                raise DecryptionError()
            return self.derive(blob[HEADER_BYTES:_XAES_HEAD]).decrypt(
                blob[_XAES_HEAD:_XAES_BODY], blob[_XAES_BODY:], aad)
        start = HEADER_BYTES + self.suite.nonce_bytes
        if len(blob) < start + TAG_BYTES:
            raise DecryptionError()
        return self._aead.decrypt(blob[HEADER_BYTES:start], blob[start:], aad)


class _Writer:
    """Encrypts under the primary key with this process's nonce prefix.

    ``remaining`` is the prefix's budget of nonce tails not yet drawn; tails are
    counted when drawn (a block for ``encrypt``, a batch for ``encrypt_many``), so at
    most ``MESSAGES_PER_PREFIX`` tails are ever drawn under one prefix.
    """

    __slots__ = (
        "aead",
        "fork_generation",
        "head",
        "header",
        "key_generation",
        "key_id",
        "lock",
        "pop",
        "remaining",
        "tails",
    )

    def __init__(self, key_id: int, reader: _Reader, key_generation: int) -> None:
        self.key_id = key_id
        self.header = header(XAES_256_GCM.id, key_id)
        prefix = os.urandom(PREFIX_BYTES)
        self.head = self.header + prefix
        self.aead = reader.derive(prefix)
        self.remaining = MESSAGES_PER_PREFIX
        self.fork_generation = _fork_generation
        self.key_generation = key_generation
        self.lock = threading.Lock()
        # Buffered random tails of this prefix only; popleft is atomic (thread-safe).
        self.tails: deque[bytes] = deque()
        self.pop = self.tails.popleft

    def take(self, n: int) -> int:
        """Reserve up to ``n`` tails from the budget; the number reserved (0: exhausted)."""
        with self.lock:
            k = min(n, self.remaining)
            self.remaining -= k
            return k

    def refill(self) -> bytes | None:
        """Draw a block of tails, return one, buffer the rest; ``None`` once the budget is spent."""
        k = self.take(TAILS_PER_DRAW)
        if k == 0:
            return None
        rand = _urandom(12 * k)
        self.tails.extend([rand[i:i + 12] for i in range(12, 12 * k, 12)])
        return rand[:12]


def _as_bytes(value: str | bytes) -> bytes:
    if type(value) is bytes:
        return value
    if type(value) is str:
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return str(value).encode("utf-8")
    raise ConfigError("FieldCipher encrypts str or bytes")


def _blob_bytes(blob: bytes | str | memoryview) -> bytes:
    if type(blob) is bytes:
        return blob
    if isinstance(blob, str):
        return dearmor(blob)
    if isinstance(blob, (bytes, bytearray, memoryview)):
        return bytes(blob)
    raise DecryptionError()


class CacheInfo(NamedTuple):
    """What a cipher's derived-key cache holds (``FieldCipher.cache_info()``)."""

    #: Derived keys held now (both generations).
    size: int
    #: Entries per generation (the cache holds at most twice this).
    maxsize: int
    #: Keys derived since the cipher was made (one per nonce prefix while they fit).
    derivations: int


class FieldCipher:
    """Encrypt and decrypt fields under a keyset's primary key, bound to a context.

    ``context`` is a mapping of ``str`` to ``str`` (table, column, row identity,
    tenant...) or a precomputed :class:`FieldContext`. It is authenticated as
    associated data and never stored: decrypting under any other context fails.

    Every decryption failure (wrong key, retired key, tampered byte, wrong
    context, bad format, a plaintext that is not UTF-8 under ``as_str``) raises
    :class:`~vaultkit.errors.DecryptionError` with one fixed message and no
    chained exception. A key provider or backend failure while unwrapping a key
    is raised as its own vaultkit error, also without a chain.

    ``derived_key_cache`` is the number of nonce prefixes (writing processes) whose
    derived keys are kept per generation; see the module docstring for its memory.
    """

    def __init__(self, keys: KeySource, *,
                 derived_key_cache: int = DERIVED_KEY_CACHE_SIZE) -> None:
        if not isinstance(derived_key_cache, int) or derived_key_cache < 1:
            raise ConfigError("derived_key_cache must be a positive number of entries")
        self._keys = keys
        self._readers: dict[bytes, _Reader] = {}
        # header || nonce prefix -> the derived key's AESGCM: the young and
        # the old generation of the derived-key cache; both are dropped when the keyset's
        # generation changes (a key retired must stop decrypting at once).
        self._fast: dict[bytes, _Opener] = {}
        self._old: dict[bytes, _Opener] = {}
        self._cache_size = derived_key_cache
        self._derivations = 0
        self._fast_generation = keys.generation
        self._writer: _Writer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FieldCipher({self._keys!r})"

    @property
    def keyset(self) -> KeySource:
        return self._keys

    def cache_info(self) -> CacheInfo:
        """Size and derivation count of the derived-key cache (for monitoring and tests)."""
        return CacheInfo(len(self._fast) + len(self._old), self._cache_size, self._derivations)

    # -- key handling

    def _reader(self, head: bytes) -> _Reader:
        """The reader for header ``head``; DecryptionError if the key is unknown or retired."""
        generation = self._keys.generation
        cached = self._readers.get(head)
        if cached is not None and cached.generation == generation:
            return cached
        if len(head) != HEADER_BYTES or head[0] not in SUITES_BY_ID:
            raise DecryptionError()
        key_id = int.from_bytes(head[1:], "big")
        info = self._keys.key_info(key_id)
        suite = SUITES_BY_ID[head[0]]
        if info is None or info[0] == "retired" or info[1] != suite.name:
            raise DecryptionError()
        with self._lock:
            cached = self._readers.get(head)
            if cached is not None and cached.generation == generation:
                return cached
            reader = _Reader(suite, self._keys.data_key(key_id).reveal(), generation)
            self._readers[head] = reader
            return reader

    def _remember(self, key: bytes, opener: _Opener) -> None:
        """Add a freshly derived (or re-used old) opener to the young generation."""
        with self._lock:
            if len(self._fast) >= self._cache_size:
                # The young generation is full: it becomes the old one, and the old one
                # (entries not used for a whole generation) is dropped.
                self._old = self._fast
                self._fast = {}
            self._fast[key] = opener

    def _new_writer(self) -> _Writer:
        with self._lock:
            generation = self._keys.generation
            key_id = self._keys.primary_id
            info = self._keys.key_info(key_id)
            if info is None or info[1] != XAES_256_GCM.name:
                raise ConfigError("the keyset's primary key must use suite xaes-256-gcm")
        writer = _Writer(key_id, self._reader(header(XAES_256_GCM.id, key_id)), generation)
        with self._lock:
            self._derivations += 1
        # The writer's own prefix is readable at once (reading one's writes derives nothing).
        self._remember(writer.head, writer.aead)
        self._writer = writer
        return writer

    def _current_writer(self) -> _Writer:
        w = self._writer
        if (w is None or w.fork_generation != _fork_generation or w.remaining <= 0
                or w.key_generation != self._keys.generation):
            w = self._new_writer()
        return w

    def _next_tail(self, w: _Writer) -> tuple[_Writer, bytes]:
        """``w``'s tail buffer is empty: refill it, or move to a new prefix if spent."""
        tail = w.refill()
        while tail is None:
            w = self._current_writer()
            tail = w.refill()
        return w, tail

    def _sync_generation(self) -> None:
        with self._lock:
            self._fast = {}
            self._old = {}
            self._fast_generation = self._keys.generation

    def _opener_for(self, raw: bytes) -> _Opener | None:
        """The cached opener of an XAES blob's header and prefix; None for other suites.

        Raises DecryptionError (unknown or retired key) or the key provider's error.
        """
        key = raw[:_XAES_HEAD]
        opener = self._old.pop(key, None)  # used again: back into the young generation
        if opener is None:
            head = raw[:HEADER_BYTES]
            reader = self._readers.get(head)
            if reader is None or reader.generation != self._keys.generation:
                reader = self._reader(head)
            if not reader.xaes or len(raw) < _XAES_MIN:
                return None
            opener = reader.derive(raw[HEADER_BYTES:_XAES_HEAD])
            with self._lock:
                self._derivations += 1
        self._remember(key, opener)
        return opener

    def _open(self, raw: bytes, ctx: bytes) -> bytes:
        """Decrypt through the cache, deriving the prefix's key if needed (may raise anything)."""
        opener = self._fast.get(raw[:_XAES_HEAD]) or self._opener_for(raw)
        if opener is None:  # a GCM suite (or a blob too short for XAES)
            head = raw[:HEADER_BYTES]
            return self._reader(head).open(raw, head + ctx)
        return opener.decrypt(raw[_XAES_HEAD:_XAES_BODY], raw[_XAES_BODY:],
                              raw[:HEADER_BYTES] + ctx)

    def _open_one(self, blob: bytes | str | memoryview, ctx: bytes) -> bytes:
        """Decrypt one blob; every failure leaves as a fresh, unchained vaultkit error."""
        err: VaultkitError
        try:
            raw = blob if type(blob) is bytes else _blob_bytes(blob)
            return self._open(raw, ctx)
        except Exception as exc:  # noqa: BLE001 - sorted into the one error below
            err = _failure(exc)
        raise err  # outside the handler: no __context__

    # -- encryption

    @overload
    def encrypt(self, value: str | bytes, *, context: ContextLike,
                armored: Literal[False] = ...) -> bytes: ...

    @overload
    def encrypt(self, value: str | bytes, *, context: ContextLike,
                armored: Literal[True]) -> str: ...

    @overload
    def encrypt(self, value: str | bytes, *, context: ContextLike,
                armored: bool) -> bytes | str: ...

    def encrypt(self, value: str | bytes, *, context: ContextLike,
                armored: bool = False) -> bytes | str:
        """Encrypt ``value`` (str is encoded as UTF-8) under the primary key.

        Returns the binary vk1 blob, or with ``armored=True`` its ``vk1.`` text form.
        """
        # The hot path is inlined on purpose: it runs once per field.
        w = self._writer
        if (w is None or w.fork_generation != _fork_generation
                or w.key_generation != self._keys.generation):
            w = self._new_writer()
        if type(context) is FieldContext:
            ctx = context.encoded
        else:  # a plain dict: its key set's plan, inlined (encode_context does the rest)
            plan = _PLANS.get(len(context)) if type(context) is dict else None
            ctx = ((plan(context) if plan is not None else None)  # type: ignore[arg-type]
                   or encode_context(context))
        try:
            tail = w.pop()
        except IndexError:  # buffer empty: draw the next block (budget checked there)
            tail = None
        if tail is None:  # outside the handler, so nothing raised here chains the IndexError
            w, tail = self._next_tail(w)
        blob = w.head + tail + w.aead.encrypt(
            tail, value if type(value) is bytes else _as_bytes(value), w.header + ctx)
        return armor(blob) if armored else blob

    def encrypt_many(self, values: Iterable[str | bytes], *,
                     context: ContextLike | Sequence[ContextLike],
                     armored: bool = False) -> list[bytes] | list[str]:
        """Encrypt many values: one context for all, or one context per value.

        Draws all nonce tails with one ``os.urandom`` call (one per prefix if a batch
        outgrows the current prefix's budget).
        """
        items = values if type(values) is list else list(values)
        n = len(items)
        contexts = _contexts(context, n)
        out: list[bytes] = []
        start = 0
        while start < n:
            w = self._current_writer()
            k = w.take(n - start)
            if k == 0:  # this prefix's budget is spent: the next loop draws a new one
                continue
            chunk = items if k == n else items[start:start + k]
            rand = _urandom(12 * k)
            tails = [rand[i:i + 12] for i in range(0, 12 * k, 12)]
            head, hdr, enc = w.head, w.header, w.aead.encrypt
            if isinstance(contexts, bytes):
                aad = hdr + contexts  # one context for the whole batch: one AAD
                out += [head + t + enc(t, v if type(v) is bytes else _as_bytes(v), aad)
                        for v, t in zip(chunk, tails, strict=True)]
            else:
                ctxs = contexts if k == n else contexts[start:start + k]
                out += [head + t + enc(t, v if type(v) is bytes else _as_bytes(v), hdr + c)
                        for v, c, t in zip(chunk, ctxs, tails, strict=True)]
            start += k
        if armored:
            return [armor(b) for b in out]
        return out

    # -- decryption

    @overload
    def decrypt(self, blob: bytes | str | memoryview, *, context: ContextLike,
                as_str: Literal[False] = ...) -> bytes: ...

    @overload
    def decrypt(self, blob: bytes | str | memoryview, *, context: ContextLike,
                as_str: Literal[True]) -> str: ...

    @overload
    def decrypt(self, blob: bytes | str | memoryview, *, context: ContextLike,
                as_str: bool) -> bytes | str: ...

    def decrypt(self, blob: bytes | str | memoryview, *, context: ContextLike,
                as_str: bool = False) -> bytes | str:
        """Decrypt a vk1 blob (binary or armored). ``as_str=True`` decodes UTF-8."""
        if type(context) is FieldContext:
            ctx = context.encoded
        else:  # as in encrypt
            plan = _PLANS.get(len(context)) if type(context) is dict else None
            ctx = ((plan(context) if plan is not None else None)  # type: ignore[arg-type]
                   or encode_context(context))
        if self._fast_generation != self._keys.generation:
            self._sync_generation()
        opener = self._fast.get(blob[:_XAES_HEAD]) if type(blob) is bytes else None
        if opener is None:
            plain = self._open_one(blob, ctx)
        else:
            # The hot path: a known XAES prefix. No length check needed: a blob shorter
            # than _XAES_MIN leaves fewer than 16 bytes (or a nonce under 12 bytes and no
            # data) after the head, which GCM always rejects.
            try:
                raw: bytes = blob  # type: ignore[assignment]  # type(blob) is bytes here
                opened: bytes | None = opener.decrypt(
                    raw[_XAES_HEAD:_XAES_BODY], raw[_XAES_BODY:], raw[:HEADER_BYTES] + ctx)
            except Exception:  # noqa: BLE001 - InvalidTag, ValueError: the one error below
                opened = None
            if opened is None:
                # One error, no cause: which check failed is not revealed, so a caller
                # cannot be used as a padding/format oracle.
                raise DecryptionError()
            plain = opened
        if not as_str:
            return plain
        text = _text(plain)
        if text is None:
            raise DecryptionError()
        return text

    def decrypt_many(self, blobs: Iterable[bytes | str | memoryview], *,
                     context: ContextLike | Sequence[ContextLike],
                     as_str: bool = False) -> list[bytes] | list[str]:
        """Decrypt many blobs; the first failure raises DecryptionError (unchained)."""
        items = blobs if type(blobs) is list else list(blobs)
        n = len(items)
        contexts = _contexts(context, n)
        ctxs = [contexts] * n if isinstance(contexts, bytes) else contexts
        if self._fast_generation != self._keys.generation:
            self._sync_generation()
        out: list[bytes] | None = None
        if n and set(map(type, items)) == _ONLY_BYTES:
            # Fast path, one comprehension: every blob is bytes of an XAES prefix (lengths:
            # see decrypt). Anything else (a GCM suite, a failure) is redone blob by blob
            # below, which also decides which error to raise.
            known = self._fast.get
            learn = self._opener_for
            try:
                out = [(known(b[:_XAES_HEAD]) or learn(b)).decrypt(  # type: ignore[union-attr]
                           b[_XAES_HEAD:_XAES_BODY], b[_XAES_BODY:], b[:HEADER_BYTES] + c)
                       for b, c in zip(items, ctxs, strict=True)]
            except Exception:  # noqa: BLE001 - redone blob by blob, outside this handler
                out = None
        if out is None:
            out = [self._open_one(b, c) for b, c in zip(items, ctxs, strict=True)]
        if not as_str:
            return out
        texts = [_text(p) for p in out]
        if None in texts:
            raise DecryptionError()
        return texts  # type: ignore[return-value]


def _text(plain: bytes) -> str | None:
    """UTF-8 text of ``plain``, or None. The UnicodeDecodeError (whose ``object`` is the
    whole plaintext) never leaves this function, so nothing can chain to it."""
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _failure(exc: Exception) -> VaultkitError:
    """The error to raise for a failed decryption, built fresh (no cause, no context).

    A key provider or backend outage is not a property of the blob and keeps its own
    class and message; everything else is the one DecryptionError.
    """
    from ..errors import BackendError, KeyProviderError

    if isinstance(exc, (KeyProviderError, BackendError)):
        return detached(exc)
    return DecryptionError()


_ONLY_BYTES = {bytes}


def _contexts(context: ContextLike | Sequence[ContextLike], n: int) -> bytes | list[bytes]:
    """One encoded context shared by every value (``bytes``), or one per value (a list)."""
    if isinstance(context, (Mapping, FieldContext)):
        return encode_context(context)
    encoded = [c.encoded if type(c) is FieldContext else encode_context(c) for c in context]
    if len(encoded) != n:
        raise ConfigError("encrypt_many/decrypt_many need one context, or one per value")
    return encoded


# --- known-answer hooks (tests/vectors only) ------------------------------------------------


def _encrypt_from_parts(suite_id: int, key_id: int, key: bytes, nonce: bytes,
                        plaintext: bytes, context: ContextLike) -> bytes:
    """Encrypt with a pinned nonce. Private: only the committed test vectors use it.

    The public API never takes a nonce, so applications cannot reuse one.
    """
    suite = SUITES_BY_ID[suite_id]
    if len(nonce) != suite.nonce_bytes or len(key) != suite.key_bytes:
        raise ConfigError("nonce or key length does not match the suite")
    hdr = header(suite_id, key_id)
    aad = hdr + encode_context(context)
    if suite is XAES_256_GCM:
        aead = AESGCM(derive_key(key, nonce[:PREFIX_BYTES]))
        return hdr + nonce + aead.encrypt(nonce[PREFIX_BYTES:], plaintext, aad)
    return hdr + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt_with_key(key: bytes, blob: bytes, context: ContextLike) -> bytes:
    """Decrypt a blob with a raw key (test vectors; migration of imported keys)."""
    ctx = encode_context(context)
    try:
        suite = SUITES_BY_ID[blob[0]]
        return _Reader(suite, key, 0).open(blob, blob[:HEADER_BYTES] + ctx)
    except Exception:  # noqa: BLE001, S110 - every failure becomes the one DecryptionError
        pass
    raise DecryptionError()


__all__ = ["CacheInfo", "DERIVED_KEY_CACHE_SIZE", "FieldCipher", "KeySource", "MESSAGES_PER_PREFIX"]
