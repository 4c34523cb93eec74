"""Expiring encrypted exports: AES-256 zips, generated passwords, share links that expire.

pyzipper and boto3 are imported only when an archive is written or a store is used,
so importing this package is cheap.

>>> from vaultkit.archive import write_archive
>>> info = write_archive([("messages.jsonl", ['{"text": "hi"}\\n'])], "export.zip")  # doctest: +SKIP
>>> info.password            # doctest: +SKIP
Secret('archive-password', '********')
"""

from __future__ import annotations

from .builder import ArchiveInfo, EntryDigest, verify_archive, write_archive
from .chatlog import bot_messages, export_chat_log
from .names import check_entry_name
from .passwords import generate_password
from .share import ShareResult, relink, revoke, share

__all__ = [
    "ArchiveInfo",
    "EntryDigest",
    "ShareResult",
    "bot_messages",
    "check_entry_name",
    "export_chat_log",
    "generate_password",
    "relink",
    "revoke",
    "share",
    "verify_archive",
    "write_archive",
]
