"""Shared by every command module: config from ``ctx.obj``, errors to exit codes, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from ..config import Config
from ..errors import (
    BackendError,
    ConfigError,
    CryptoError,
    InsecureFileError,
    VaultkitError,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_BACKEND = 4
EXIT_CRYPTO = 5

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: VaultkitError) -> int:
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, (CryptoError, InsecureFileError)):
        return EXIT_CRYPTO
    if isinstance(exc, BackendError):
        return EXIT_BACKEND
    return EXIT_FAILED


class VaultkitClickError(click.ClickException):
    def __init__(self, exc: VaultkitError) -> None:
        super().__init__(str(exc))
        # click declares exit_code as a ClassVar; each instance needs its own.
        object.__setattr__(self, "exit_code", exit_code_for(exc))

    def show(self, file: Any = None) -> None:
        click.echo(f"vaultkit: error: {self.format_message()}", err=True)


def handle_errors(fn: F) -> F:
    """Turn a VaultkitError into a one-line message on stderr and its documented exit code.

    vaultkit errors never carry values, so printing them is safe.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VaultkitError as exc:
            raise VaultkitClickError(exc) from exc

    return cast(F, wrapper)


def load_config(ctx: click.Context | None = None) -> Config:
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
