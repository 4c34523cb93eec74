"""The encrypted local secrets file (``file://path#key``), sops-style.

Each *value* is encrypted on its own and the keys stay readable, so a diff of
the file shows which entry changed (and ``edit`` re-encrypts only the values
that changed). JSON (``.json``) and TOML (``.toml``) documents are supported;
nested tables are kept, every non-table value is a leaf.

Format (version 1)::

    {
      "db": {"password": "ENC[v1,<base64 nonce||ciphertext||tag>]"},
      "api_token": "ENC[v1,...]",
      "vaultkit_envfile": {
        "version": 1,
        "cipher": "AES-256-GCM",
        "key_provider": "local://default",
        "wrapped_key": "<base64: the data key wrapped by the key provider>",
        "mac": "<base64 HMAC-SHA256 over every (path, ciphertext) pair>"
      }
    }

Choices, and why:

* One random 256-bit data key per file, wrapped by a :class:`KeyProvider` URI
  recorded in the file, with the context ``{"vaultkit": "envfile/v1"}``.
* Two subkeys are derived with HKDF-SHA256 (RFC 5869) from the data key,
  ``info=b"vaultkit envfile/v1 enc"`` and ``... mac``, so the encryption key
  and the MAC key are never the same key.
* Each leaf is the UTF-8 JSON encoding of the value (types survive), sealed with
  AES-256-GCM under a fresh random 96-bit nonce. A file has tens of values and
  each edit re-encrypts only the changed ones, far below NIST SP 800-38D's 2^32
  random-nonce limit per key.
* The associated data is ``b"vaultkit envfile/v1\\x00" + path`` where ``path`` is
  the RFC 6901 JSON pointer of the leaf (``/db/password``), so a ciphertext
  moved to another key does not decrypt.
* The MAC covers the provider URI and every ``(path, ciphertext)`` pair in
  sorted order, so deleting, adding or swapping entries is detected (GCM alone
  only protects each value). Rolling the whole file back to an older version is
  not detected; that is what version control is for.

Any failure to open the file is one :class:`DecryptionError` with a fixed
message (pyca Fernet's rule: say nothing about which check failed).

>>> from vaultkit.keys.memory import MemoryKeyProvider
>>> kek = MemoryKeyProvider("doc")
>>> enc = encrypt_document({"pw": "s3cret"}, kek)
>>> enc["pw"].startswith("ENC[v1,")
True
>>> decrypt_document(enc, provider=kek)
{'pw': 's3cret'}
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError, DecryptionError, KeyProviderError, NotFoundError
from ..files import atomic_write
from ..keys import KeyProvider, get_key_provider

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

META = "vaultkit_envfile"
VERSION = 1
CONTEXT = {"vaultkit": "envfile/v1"}
_AAD_PREFIX = b"vaultkit envfile/v1\x00"
_ENC = re.compile(r"^ENC\[v1,([A-Za-z0-9+/=]+)\]$")
_NONCE = 12
#: JSON text never starts with NUL, so this prefix marks a TOML-encoded leaf unambiguously.
_TOML_LEAF = b"\x00toml\n"
#: ``file://`` documents larger than this are refused (a secrets file is kilobytes).
MAX_FILE_BYTES = 1024 * 1024


def _pointer(parts: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _leaves(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], Any]
]:
    for key, value in doc.items():
        if not prefix and key == META:
            continue
        if not isinstance(key, str):
            raise ConfigError("document keys must be strings")
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _set(doc: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    node = doc
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _subkeys(data_key: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

    return derive(b"vaultkit envfile/v1 enc"), derive(b"vaultkit envfile/v1 mac")


def _mac(mac_key: bytes, provider_uri: str, entries: list[tuple[str, str]]) -> str:
    h = hmac.new(mac_key, digestmod="sha256")
    h.update(b"vaultkit envfile/v1\x00" + provider_uri.encode() + b"\x00")
    for path, enc in sorted(entries):
        h.update(path.encode() + b"\x00" + enc.encode() + b"\n")
    return base64.b64encode(h.digest()).decode()


def is_encrypted(doc: Mapping[str, Any]) -> bool:
    return isinstance(doc.get(META), dict)


def encrypt_document(doc: Mapping[str, Any], provider: KeyProvider, *,
                     previous: Mapping[str, Any] | None = None,
                     config: Config | None = None) -> dict[str, Any]:
    """Encrypt every leaf of ``doc`` under a data key wrapped by ``provider``.

    With ``previous`` (the encrypted file being edited, same provider), the data
    key is reused and unchanged values keep their exact ciphertext, so a diff
    shows only what changed.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if META in doc:
        raise ConfigError(f"the document is already encrypted (it has a {META!r} table)")
    old_plain: dict[str, Any] = {}
    old_enc: dict[str, str] = {}
    data_key: bytes | None = None
    wrapped: bytes | None = None
    if previous is not None and is_encrypted(previous) and \
            previous[META].get("key_provider") == provider.uri:
        data_key, wrapped = _unwrap(previous, provider)
        enc_key, _ = _subkeys(data_key)
        for parts, value in _leaves(previous):
            if isinstance(value, str):
                old_enc[_pointer(parts)] = value
                old_plain[_pointer(parts)] = _open_leaf(enc_key, parts, value)
    if data_key is None or wrapped is None:
        dk = provider.generate_data_key(context=CONTEXT)
        data_key, wrapped = dk.plaintext.reveal(), dk.wrapped
    enc_key, mac_key = _subkeys(data_key)
    aead = AESGCM(enc_key)
    out: dict[str, Any] = {}
    entries: list[tuple[str, str]] = []
    for parts, value in _leaves(doc):
        path = _pointer(parts)
        if path in old_plain and old_plain[path] == value and \
                type(old_plain[path]) is type(value):
            token = old_enc[path]
        else:
            nonce = os.urandom(_NONCE)
            plaintext = _encode_leaf(value)
            sealed = nonce + aead.encrypt(nonce, plaintext, _AAD_PREFIX + path.encode())
            token = f"ENC[v1,{base64.b64encode(sealed).decode()}]"
        _set(out, parts, token)
        entries.append((path, token))
    out[META] = {
        "version": VERSION,
        "cipher": "AES-256-GCM",
        "key_provider": provider.uri,
        "wrapped_key": base64.b64encode(wrapped).decode(),
        "mac": _mac(mac_key, provider.uri, entries),
    }
    return out


def _unwrap(doc: Mapping[str, Any], provider: KeyProvider) -> tuple[bytes, bytes]:
    meta = doc[META]
    try:
        wrapped = base64.b64decode(str(meta["wrapped_key"]), validate=True)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise DecryptionError() from exc
    try:
        return provider.decrypt_data_key(wrapped, context=CONTEXT).reveal(), wrapped
    except KeyProviderError as exc:
        raise DecryptionError() from exc


def _encode_leaf(value: Any) -> bytes:
    """A leaf's plaintext: its JSON; a value JSON cannot hold (TOML dates and times, also
    inside arrays of tables) is ``_TOML_LEAF`` + a TOML document ``v = <value>``."""
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except TypeError:
        import tomli_w

        try:
            return _TOML_LEAF + tomli_w.dumps({"v": value}).encode()
        except TypeError as exc:
            raise ConfigError(f"values of type {type(value).__name__} cannot be stored"
                              ) from exc


def _decode_leaf(plaintext: bytes) -> Any:
    if plaintext.startswith(_TOML_LEAF):
        return tomllib.loads(plaintext[len(_TOML_LEAF):].decode())["v"]
    return json.loads(plaintext)


def _open_leaf(enc_key: bytes, parts: tuple[str, ...], token: str) -> Any:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    m = _ENC.match(token) if isinstance(token, str) else None
    if m is None:
        raise DecryptionError()
    try:
        sealed = base64.b64decode(m.group(1), validate=True)
        plaintext = AESGCM(enc_key).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                            _AAD_PREFIX + _pointer(parts).encode())
        return _decode_leaf(plaintext)
    except (InvalidTag, binascii.Error, ValueError, tomllib.TOMLDecodeError) as exc:
        raise DecryptionError() from exc


def provider_for(doc: Mapping[str, Any], config: Config | None = None) -> KeyProvider:
    if not is_encrypted(doc):
        raise ConfigError(f"not a vaultkit encrypted file (no {META!r} table)")
    meta = doc[META]
    if meta.get("version") != VERSION:
        raise ConfigError(f"unsupported encrypted file version {meta.get('version')!r}")
    return get_key_provider(str(meta.get("key_provider")), config=config)


def decrypt_document(doc: Mapping[str, Any], *, config: Config | None = None,
                     provider: KeyProvider | None = None) -> dict[str, Any]:
    """Check the MAC, then decrypt every leaf. Any mismatch is one :class:`DecryptionError`."""
    provider = provider or provider_for(doc, config)
    data_key, _ = _unwrap(doc, provider)
    enc_key, mac_key = _subkeys(data_key)
    leaves = list(_leaves(doc))
    entries = [(_pointer(p), v) for p, v in leaves]
    if any(not isinstance(v, str) for _, v in entries):
        raise DecryptionError()
    expected = _mac(mac_key, provider.uri, entries)
    if not hmac.compare_digest(expected, str(doc[META].get("mac", ""))):
        raise DecryptionError()
    out: dict[str, Any] = {}
    for parts, token in leaves:
        _set(out, parts, _open_leaf(enc_key, parts, token))
    return out


# --- reading and writing files --------------------------------------------------------

def file_format(path: str | os.PathLike[str]) -> str:
    return "toml" if str(path).endswith(".toml") else "json"


def parse(text: str, fmt: str, *, reference: str) -> dict[str, Any]:
    failure = ""
    try:
        doc = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        doc, failure = None, type(exc).__name__
    if failure:
        # The message of a JSON/TOML error can quote the offending line, and the error
        # keeps the whole text (.doc): raised here, so it is not even the __context__.
        raise ConfigError(f"the file is not valid {fmt.upper()} ({failure})",
                          reference=reference)
    if not isinstance(doc, dict):
        raise ConfigError("the document must be an object/table", reference=reference)
    return doc


def dumps(doc: Mapping[str, Any], fmt: str) -> str:
    if fmt == "toml":
        return toml_dumps(doc)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON/TOML document: a regular file of at most :data:`MAX_FILE_BYTES`.

    ``/dev/zero``, a FIFO or a directory is refused before anything is read (the file is
    opened non-blocking, so a FIFO with no writer cannot hang the boot), and a file
    that grows past the cap while being read is refused too.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise NotFoundError("file not found", source="file", reference=str(p)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read file ({type(exc).__name__})", reference=str(p)) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file", source="file", reference=str(p))
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError(f"file larger than {MAX_FILE_BYTES} bytes", source="file",
                              reference=str(p))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"file larger than {MAX_FILE_BYTES} bytes", source="file",
                          reference=str(p))
    text = utf8_or_none(data)
    if text is None:
        raise ConfigError("cannot read file (not UTF-8)", reference=str(p))
    return parse(text, file_format(p), reference=str(p))


def utf8_or_none(data: bytes) -> str | None:
    """``data`` as UTF-8 text, or ``None``: a UnicodeDecodeError keeps the bytes (``.object``),
    so the caller raises its own error outside any ``except`` (no ``__context__``)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def write_document(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> None:
    """Write an *encrypted* document atomically (0644 is fine: every value is ciphertext)."""
    atomic_write(path, dumps(doc, file_format(path)).encode(), mode=0o644)


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """TOML text for ``doc`` with tomli-w: ``inf``/``nan``, dates and times, arrays of
    tables all round-trip through :func:`parse`. A value TOML cannot hold (``None``)
    is a :class:`ConfigError`."""
    import tomli_w

    try:
        return tomli_w.dumps(doc)
    except TypeError as exc:
        # the message names the type only, but stay on the safe side: no value text
        raise ConfigError("the document cannot be written as TOML (it holds a value TOML "
                          f"has no type for: {type(exc).__name__})") from None


__all__ = ["META", "decrypt_document", "dumps", "encrypt_document", "file_format",
           "is_encrypted", "parse", "provider_for", "read_document", "toml_dumps", "utf8_or_none",
           "write_document"]
