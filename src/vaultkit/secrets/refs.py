"""Secret references: one URI syntax for every backend.

::

    vault://<mount>/<path>[?version=N][&kv=1|2]#<key>      Vault/OpenBao KV v1 or v2
    vault+dyn://<mount>/<path>#<key>                         a leased (dynamic) secret, e.g.
                                                             vault+dyn://database/creds/app#password
    awssm://<name or ARN>[?stage=S|version=V]#<json key>     AWS Secrets Manager
    ssm:///<path>[?version=N]                                SSM Parameter Store (SecureString decrypted)
    kms:<base64 ciphertext>[?ctx.<k>=<v>...][&key=<key id>]  a KMS ciphertext blob
    keyring://<service>/<user>                               the OS keyring
    env://<NAME>                                             an environment variable
    file://<path>#<key>                                      a vaultkit-encrypted local file
    memory://<name>                                          the in-memory source (tests, demos)

Common options: ``#fragment`` selects a key of the JSON object the backend
returns (``a/b`` walks nested objects when ``a/b`` itself is not a key);
``?optional=1`` turns *not found* into "absent"; ``?default=<text>`` turns
*not found* into that text (and implies ``optional``); ``?encoding=base64``
returns binary values as base64 text instead of refusing non-UTF-8 bytes.

References are not secrets (they name where a secret lives), which is why
they may travel in argv, config files and error messages. The one exception
to "no secret in a reference" is ``kms:``, whose payload is *ciphertext*; it
is still shortened in messages (:attr:`Reference.display`).

>>> ref = parse_reference("vault://kv/app/db?version=3#password")
>>> (ref.scheme, ref.locator, ref.key, ref.version)
('vault', 'kv/app/db', 'password', '3')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..errors import InvalidReferenceError

#: The built-in schemes (a source passed to ``load_secrets`` may add its own).
SCHEMES = ("vault", "vault+dyn", "awssm", "ssm", "kms", "keyring", "env", "file", "memory")

#: Query options every scheme accepts; a source declares the rest in its ``options``.
_COMMON = frozenset({"optional", "default", "encoding"})
#: In a source's ``options``: accept ``ctx.<k>=<v>`` (an encryption context).
CONTEXT_OPTION = "ctx.*"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Reference:
    """A parsed secret reference. ``unit`` identifies what is fetched (without the fragment)."""

    raw: str = field(repr=False)
    scheme: str
    locator: str
    key: str | None = None
    optional: bool = False
    default: str | None = field(default=None, repr=False)
    version: str | None = None
    stage: str | None = None
    context: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"Reference({self.display!r})"

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        """The reference as shown in messages: ``default=`` masked, kms payloads shortened."""
        text = self.raw
        if self.scheme == "kms":
            head, sep, tail = text.partition("?")
            body = head[len("kms:"):]
            if len(body) > 16:
                head = f"kms:{body[:12]}...({len(body)} chars)"
            text = head + sep + tail
        if self.default is not None:
            text = re.sub(r"(default=)[^&#]*", r"\1***", text)
        return text

    @property
    def unit(self) -> tuple[Any, ...]:
        """What the backend fetches: references differing only by fragment share one fetch."""
        return (self.scheme, self.locator, self.version, self.stage, self.context, self.options)

    def option(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.options:
            if k == name:
                return v
        return default

    @property
    def wildcard(self) -> str | None:
        """``*`` (the level below) or ``**`` (recursive) when the locator ends with one."""
        if self.locator.endswith("/**") or self.locator == "**":
            return "**"
        if self.locator.endswith("/*") or self.locator == "*":
            return "*"
        return None

    @property
    def base(self) -> str:
        """The locator without its wildcard: ``secret/app`` for ``secret/app/*``."""
        return self.locator[:-len(self.wildcard)].rstrip("/") if self.wildcard else self.locator

    @property
    def encoding(self) -> str:
        return self.option("encoding") or "utf-8"


def _bad(message: str, ref: str) -> InvalidReferenceError:
    shown = ref if not ref.startswith("kms:") else ref[:16] + "..."
    return InvalidReferenceError(message, reference=shown[:300])


def parse_reference(ref: str, sources: Mapping[str, Any] | None = None) -> Reference:
    """Parse one reference. A malformed one raises :class:`InvalidReferenceError` naming it.

    ``sources`` (scheme -> source, as :func:`default_sources` builds it) decides which
    schemes exist; each source declares the query ``options`` it takes and checks its
    own locators (``check_locator``). Without it, the built-in sources are used.

    >>> parse_reference("awssm://prod/db?stage=AWSPREVIOUS#password").stage
    'AWSPREVIOUS'
    >>> parse_reference("nope://x")
    Traceback (most recent call last):
    ...
    vaultkit.errors.InvalidReferenceError: unknown reference scheme 'nope'; expected one of ...
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidReferenceError("a secret reference must be a non-empty string",
                                    reference=repr(ref)[:80])
    table = builtin_sources() if sources is None else sources
    ref = ref.strip()
    if ref.startswith("kms:") and not ref.startswith("kms://"):
        scheme, rest = "kms", ref[len("kms:"):]
    elif "://" in ref:
        scheme, rest = ref.split("://", 1)
    else:
        raise _bad("a secret reference looks like scheme://...; schemes: "
                   + ", ".join(sorted(table)), ref)
    scheme = scheme.lower()
    source = table.get(scheme)
    if source is None:
        raise _bad(f"unknown reference scheme {scheme!r}; expected one of "
                   f"{', '.join(sorted(table))}", ref)
    rest, _, fragment = rest.partition("#")
    locator, _, query = rest.partition("?")
    key = unquote(fragment) if fragment else None
    if fragment == "" and ref.endswith("#"):
        raise _bad("empty #fragment (JSON key)", ref)

    allowed = frozenset(getattr(source, "options", frozenset()))
    options: dict[str, str] = {}
    context: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if k.startswith("ctx."):
            if CONTEXT_OPTION not in allowed:
                raise _bad(f"ctx.<key> options do not apply to {scheme} references", ref)
            if not k[4:]:
                raise _bad("empty ctx.<key> name", ref)
            context[k[4:]] = v
            continue
        if k not in _COMMON and k not in allowed:
            shown = sorted(_COMMON | (allowed - {CONTEXT_OPTION}))
            raise _bad(f"unknown option {k!r} for {scheme}; allowed: {', '.join(shown)}", ref)
        if k in options:
            raise _bad(f"option {k!r} given twice", ref)
        options[k] = v

    optional_raw = options.pop("optional", None)
    if optional_raw is not None and optional_raw.lower() not in _TRUE | _FALSE:
        raise _bad("optional must be 1/0, true/false", ref)
    default = options.pop("default", None)
    optional = (optional_raw or "").lower() in _TRUE or default is not None
    enc = options.get("encoding")
    if enc is not None and enc not in ("utf-8", "base64"):
        raise _bad("encoding must be utf-8 or base64", ref)
    check = getattr(source, "check_locator", None)
    try:
        locator = check(scheme, locator, options) if check else _any_locator(scheme, locator)
    except InvalidReferenceError as exc:
        raise _bad(exc.message, ref) from None
    version = options.pop("version", None)
    stage = options.pop("stage", None)
    parsed = Reference(
        raw=ref, scheme=scheme, locator=locator, key=key, optional=optional, default=default,
        version=version, stage=stage, context=tuple(sorted(context.items())),
        options=tuple(sorted(options.items())),
    )
    if parsed.wildcard and (key or version or stage):
        raise _bad("a wildcard reference (/* or /**) takes no #key, ?version or ?stage", ref)
    if parsed.wildcard and not hasattr(source, "expand"):
        raise _bad(f"{scheme} references cannot use wildcards", ref)
    return parsed


def _any_locator(scheme: str, locator: str) -> str:
    if not locator:
        raise InvalidReferenceError(f"{scheme}:// needs a locator")
    return locator


def builtin_sources() -> Mapping[str, Any]:
    """scheme -> the built-in source (cheap: SDK clients are made on first use)."""
    global _builtin
    if _builtin is None:
        from .sources import default_sources

        _builtin = default_sources()
    return _builtin


_builtin: Mapping[str, Any] | None = None


def is_reference(value: str) -> bool:
    """True if ``value`` looks like a reference (used to pick env vars that hold references)."""
    if not isinstance(value, str):
        return False
    if value.startswith("kms:"):
        return True
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


__all__ = ["CONTEXT_OPTION", "SCHEMES", "Reference", "builtin_sources", "is_reference",
           "parse_reference"]
