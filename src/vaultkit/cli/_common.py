"""Shared by every command module: config from ``ctx.obj``, errors to exit codes, JSON output.

The exit-code table of ``docs/cli.md`` lives here, in :data:`EXIT_CODES`, and nowhere else:
:func:`exit_code_for` is what :func:`handle_errors` and the root group's safety net use, and
what ``vaultkit run`` derives its own codes from.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click

from ..errors import (
    ArchivePasswordError,
    BackendError,
    CAKeyError,
    CertificateRejectedError,
    ConfigError,
    CryptoError,
    InsecureFileError,
    KeysetConflictError,
    SecretsLoadError,
    StorageError,
    VaultkitError,
)
from ..secret import Secret

if TYPE_CHECKING:
    from ..config import Config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_BACKEND = 4
EXIT_CRYPTO = 5

#: The error hierarchy -> exit code, most specific class first (the first match wins).
#: Anything not listed (CAError, ArchiveError, ...) is "the operation ran and failed": 1.
EXIT_CODES: tuple[tuple[type[VaultkitError], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (CertificateRejectedError, EXIT_FAILED),
    # A keyset write lost a check-and-set race: nothing cryptographic failed; run it again.
    (KeysetConflictError, EXIT_FAILED),
    (CAKeyError, EXIT_CRYPTO),
    (ArchivePasswordError, EXIT_CRYPTO),
    (CryptoError, EXIT_CRYPTO),
    (InsecureFileError, EXIT_CRYPTO),
    (BackendError, EXIT_BACKEND),
    (StorageError, EXIT_BACKEND),
)

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: VaultkitError) -> int:
    """The documented exit code of ``exc``.

    A :class:`SecretsLoadError` gathers one error per secret: it takes the smallest code
    among them, so a malformed reference (3) is reported before a missing secret (4),
    which is what has to be fixed first.

    >>> exit_code_for(ConfigError("bad"))
    3
    """
    if isinstance(exc, SecretsLoadError):
        return min((exit_code_for(e) for e in exc.failures.values()), default=EXIT_FAILED)
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_FAILED


def error_document(exc: VaultkitError | click.ClickException, code: int) -> dict[str, Any]:
    """The ``--json`` form of a failure: ``{"error": {type, category, message, reference,
    exit_code}}``. Built from the error's message and reference only, never a value."""
    if isinstance(exc, VaultkitError):
        return {"error": {"type": type(exc).__name__, "category": exc.category,
                          "message": exc.message, "reference": exc.reference,
                          "exit_code": code}}
    return {"error": {"type": type(exc).__name__, "category": "usage",
                      "message": exc.format_message(), "reference": None, "exit_code": code}}


def json_requested(ctx: click.Context | None = None) -> bool:
    """Whether the command being run was given ``--json``."""
    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False


class VaultkitClickError(click.ClickException):
    """A vaultkit error on its way out: one line on stderr (or one JSON object) and its code."""

    def __init__(self, exc: VaultkitError, *, as_json: bool = False) -> None:
        super().__init__(str(exc))
        self.error = exc
        self.as_json = as_json
        # click declares exit_code as a ClassVar; each instance needs its own.
        object.__setattr__(self, "exit_code", exit_code_for(exc))

    def show(self, file: IO[Any] | None = None) -> None:
        if self.as_json:
            click.echo(json.dumps(error_document(self.error, self.exit_code), sort_keys=True),
                       err=True)
        else:
            click.echo(f"vaultkit: error: {self.format_message()}", err=True)


def handle_errors(fn: F) -> F:
    """Turn a VaultkitError into a one-line message on stderr and its documented exit code;
    with ``--json``, into one ``{"error": {...}}`` object on stderr.

    vaultkit errors never carry values, so printing them is safe.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VaultkitError as exc:
            raise VaultkitClickError(
                exc, as_json=bool(kwargs.get("as_json")) or json_requested()) from exc

    return cast(F, wrapper)


def load_config(ctx: click.Context | None = None) -> Config:
    from ..config import Config

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    obj = root.obj or {}
    cached = obj.get("config")
    if cached is None:
        cached = Config.load(obj.get("config_path"))
        obj["config"] = cached
        root.obj = obj
    return cast(Config, cached)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def is_tty() -> bool:
    return sys.stdout.isatty()


def stdin_is_tty() -> bool:
    """Whether a prompt can be answered: stdin is a terminal (not closed, a pipe or a file)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def prompt_hidden(label: str, *, confirm: bool = False, supply: str) -> Secret[str]:
    """A hidden prompt, or at once a :class:`ConfigError` (exit 3) when stdin is no terminal.

    ``supply`` says what to set instead, e.g. ``"set VAULTKIT_CA_PASSPHRASE or store it in
    the OS keyring (service 'vaultkit-ca')"``. Without a terminal ``click.prompt`` would warn
    that the input may be echoed, then read whatever stdin holds; cron jobs and CI need the
    error that names the variable instead.
    """
    if not stdin_is_tty():
        raise ConfigError(f"{label}: stdin is not a terminal, so vaultkit cannot prompt; "
                          f"{supply}")
    return Secret(str(click.prompt(label, hide_input=True, confirmation_prompt=confirm,
                                   err=True)))
