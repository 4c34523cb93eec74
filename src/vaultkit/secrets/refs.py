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

SCHEMES = ("vault", "vault+dyn", "awssm", "ssm", "kms", "keyring", "env", "file", "memory")

#: Query options each scheme accepts (``optional``, ``default`` and ``encoding`` are common).
_COMMON = frozenset({"optional", "default", "encoding"})
_ALLOWED: dict[str, frozenset[str]] = {
    "vault": frozenset({"version", "kv"}),
    "vault+dyn": frozenset(),
    "awssm": frozenset({"stage", "version"}),
    "ssm": frozenset({"version", "label"}),
    "kms": frozenset({"key"}),  # plus ctx.<k>
    "keyring": frozenset(),
    "env": frozenset(),
    "file": frozenset(),
    "memory": frozenset(),
}

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
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
    def encoding(self) -> str:
        return self.option("encoding") or "utf-8"


def _bad(message: str, ref: str) -> InvalidReferenceError:
    shown = ref if not ref.startswith("kms:") else ref[:16] + "..."
    return InvalidReferenceError(message, reference=shown[:300])


def parse_reference(ref: str) -> Reference:
    """Parse one reference. A malformed one raises :class:`InvalidReferenceError` naming it.

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
    ref = ref.strip()
    if ref.startswith("kms:") and not ref.startswith("kms://"):
        scheme, rest = "kms", ref[len("kms:"):]
    elif "://" in ref:
        scheme, rest = ref.split("://", 1)
    else:
        raise _bad("a secret reference looks like scheme://...; schemes: " + ", ".join(SCHEMES),
                   ref)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise _bad(f"unknown reference scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
                   ref)
    rest, _, fragment = rest.partition("#")
    locator, _, query = rest.partition("?")
    key = unquote(fragment) if fragment else None
    if fragment == "" and ref.endswith("#"):
        raise _bad("empty #fragment (JSON key)", ref)

    options: dict[str, str] = {}
    context: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if k.startswith("ctx."):
            if scheme != "kms":
                raise _bad("ctx.<key> options only apply to kms: references", ref)
            if not k[4:]:
                raise _bad("empty ctx.<key> name", ref)
            context[k[4:]] = v
            continue
        if k not in _COMMON and k not in _ALLOWED[scheme]:
            allowed = sorted(_COMMON | _ALLOWED[scheme])
            raise _bad(f"unknown option {k!r} for {scheme}; allowed: {', '.join(allowed)}", ref)
        if k in options:
            raise _bad(f"option {k!r} given twice", ref)
        options[k] = v

    optional_raw = options.pop("optional", None)
    if optional_raw is not None and optional_raw.lower() not in _TRUE | _FALSE:
        raise _bad("optional must be 1/0, true/false", ref)
    default = options.pop("default", None)
    optional = (optional_raw or "").lower() in _TRUE or default is not None
    version = options.pop("version", None)
    stage = options.pop("stage", None)
    enc = options.get("encoding")
    if enc is not None and enc not in ("utf-8", "base64"):
        raise _bad("encoding must be utf-8 or base64", ref)

    locator = _check_locator(scheme, locator, ref, version, stage, options)
    if scheme == "awssm" and version and stage:
        raise _bad("give ?stage= or ?version=, not both", ref)
    if version is not None and scheme in ("vault", "ssm") and not version.isdigit():
        raise _bad("version must be a positive integer", ref)
    return Reference(
        raw=ref, scheme=scheme, locator=locator, key=key, optional=optional, default=default,
        version=version, stage=stage, context=tuple(sorted(context.items())),
        options=tuple(sorted(options.items())),
    )


def _check_locator(scheme: str, locator: str, ref: str, version: str | None,
                   stage: str | None, options: Mapping[str, str]) -> str:
    if scheme in ("vault", "vault+dyn"):
        path = locator.strip("/")
        if "/" not in path:
            raise _bad(f"{scheme}:// needs <mount>/<path>", ref)
        if options.get("kv") not in (None, "1", "2"):
            raise _bad("kv must be 1 or 2", ref)
        return path
    if scheme == "awssm":
        if not locator:
            raise _bad("awssm:// needs a secret name or ARN", ref)
        return unquote(locator)
    if scheme == "ssm":
        # ssm:///prod/db/password (absolute, the usual form) or ssm://name (a plain name).
        if not locator or locator == "/":
            raise _bad("ssm:// needs a parameter name: ssm:///path/name", ref)
        if version and options.get("label"):
            raise _bad("give ?version= or ?label=, not both", ref)
        return unquote(locator)
    if scheme == "kms":
        blob = locator.strip()
        if not blob or not _B64.match(blob):
            raise _bad("kms: needs base64 ciphertext: kms:<base64>", ref)
        return blob
    if scheme == "keyring":
        service, sep, user = locator.partition("/")
        if not sep or not service or not user:
            raise _bad("keyring:// needs <service>/<user>", ref)
        return unquote(locator)
    if scheme == "env":
        if not _ENV_NAME.match(locator):
            raise _bad("env:// needs a variable name: env://NAME", ref)
        return locator
    if scheme == "file":
        if not locator:
            raise _bad("file:// needs a path: file:///abs/path.json#key or file://rel.json#key",
                       ref)
        return unquote(locator)
    # memory
    if not locator:
        raise _bad("memory:// needs a name", ref)
    return locator


def is_reference(value: str) -> bool:
    """True if ``value`` looks like a reference (used to pick env vars that hold references)."""
    if not isinstance(value, str):
        return False
    if value.startswith("kms:"):
        return True
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


__all__ = ["SCHEMES", "Reference", "is_reference", "parse_reference"]
