"""The chat bot's job: a user's messages -> JSONL -> private AES zip -> expiring link.

The library function the bot calls is :func:`export_chat_log`; :func:`bot_messages`
gives the two messages to send, link first and password second, so that the two never
travel in the same message (a forwarded or screenshotted link alone opens nothing).

>>> from vaultkit.storage import get_store
>>> result = export_chat_log([{"author": "ana", "text": "hi"}], store=get_store("memory://bot"))
>>> link_msg, pw_msg = bot_messages(result)
>>> link_msg.startswith("Your export is ready")
True
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from ..errors import ConfigError
from ..storage import ObjectStore
from ..storage.base import Retention
from .share import ShareResult, share

ENTRY_NAME = "messages.jsonl"


def jsonl_lines(messages: Iterable[Mapping[str, Any] | str]) -> Iterator[str]:
    """One JSON object per line (RFC 8259 text, UTF-8, keys sorted), streamed."""
    for message in messages:
        if isinstance(message, str):
            message = {"text": message}
        yield json.dumps(message, ensure_ascii=False, sort_keys=True, default=str) + "\n"


def export_chat_log(
    messages: Iterable[Mapping[str, Any] | str],
    *,
    store: ObjectStore | str,
    retention: str | int | Retention = "7d",
    filename: str = "chat-export.zip",
    private: bool = True,
    link_lifetime: timedelta | None = None,
) -> ShareResult:
    """Export ``messages`` (dicts or strings, any iterable, e.g. a paginating generator)
    as ``messages.jsonl`` inside a private AES-256 zip and share it.

    Nothing about the user goes into the object key, metadata or tags; the file name the
    user sees is set on the link only.
    """
    if isinstance(messages, AsyncIterable):  # e.g. discord.py's channel.history()
        raise ConfigError("messages is an async iterator: use "
                          "`await vaultkit.archive.aexport_chat_log(...)`")
    return share([(ENTRY_NAME, jsonl_lines(messages))], store=store, retention=retention,
                 private=private, filename=filename, link_lifetime=link_lifetime)


def bot_messages(result: ShareResult) -> tuple[str, str]:
    """The two messages a bot sends: the link (with its expiry), then the password."""
    when = result.link_expires_at.strftime("%Y-%m-%d %H:%M UTC")
    inner = (" Inside is payload.zip: open it too (it has no password)."
             if result.private else "")
    link_msg = (f"Your export is ready: {result.link}\n"
                f"The link works until {when}. Open the zip with 7-Zip, WinRAR, Keka or "
                f"The Unarchiver (Windows Explorer cannot open AES zips).{inner}")
    pw_msg = (f"Password for {result.filename}: {result.password.reveal()}\n"
              "It is shown only this once and nobody else has a copy.")
    return link_msg, pw_msg


__all__ = ["ENTRY_NAME", "bot_messages", "export_chat_log", "jsonl_lines"]
