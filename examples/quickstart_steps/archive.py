"""Archive: a chat log exported as a private AES-256 zip to a LocalStore, link + password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vaultkit.archive import bot_messages, export_chat_log, revoke, verify_archive
from vaultkit.storage import LocalStore


def step(workdir: Path, say: Callable[[str], None]) -> None:
    store = LocalStore(workdir / "exports")
    messages = ({"author": "ana", "text": f"hello {i}"} for i in range(1000))
    result = export_chat_log(messages, store=store, retention="7d")
    link_message, password_message = bot_messages(result)
    say(f"shared {result.size} bytes as {result.object_key} (retention {result.retention})")
    say("bot message 1: " + link_message.splitlines()[0])
    # The password is the point of this step: the user must see it to open the zip.
    say("bot message 2: " + password_message.splitlines()[0])
    (entry,) = verify_archive(store.path(result.object_key), result.password)
    say(f"verified: {entry.name}, {entry.size} bytes; the result prints as {result!r}"[:160])
    say(f"revoked early: {revoke(result.object_key, store=store)}")
