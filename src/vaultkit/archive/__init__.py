"""Expiring encrypted exports: AES-256 zips, generated passwords, share links that expire.

pyzipper and boto3 are imported only when an archive is written or a store is used,
so importing this package is cheap.

>>> from vaultkit.archive import write_archive
>>> info = write_archive([("messages.jsonl", ['{"text": "hi"}\\n'])], "export.zip")  # doctest: +SKIP
>>> info.password            # doctest: +SKIP
Secret('archive-password', '********')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .builder import ArchiveInfo, EntryDigest, verify_archive, write_archive
from .chatlog import bot_messages, export_chat_log
from .manage import ShareInfo, list_shares, relink, revoke
from .names import check_entry_name
from .passwords import generate_password
from .share import ExportCancelledError, ShareResult, share

if TYPE_CHECKING:
    from .aio import aexport_chat_log, ashare, preload

# The asyncio API imports asyncio (~75 ms): only when it is first used.
__getattr__, __dir__ = lazy_exports(
    __name__, {"aexport_chat_log": "aio", "ashare": "aio", "preload": "aio"}, globals())

__all__ = [
    "ArchiveInfo",
    "EntryDigest",
    "ExportCancelledError",
    "ShareInfo",
    "ShareResult",
    "aexport_chat_log",
    "ashare",
    "bot_messages",
    "check_entry_name",
    "export_chat_log",
    "generate_password",
    "list_shares",
    "preload",
    "relink",
    "revoke",
    "share",
    "verify_archive",
    "write_archive",
]
