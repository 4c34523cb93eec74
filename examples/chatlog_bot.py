"""An asyncio chat bot that serves encrypted exports while it keeps answering.

    python examples/chatlog_bot.py                       # LocalStore in a temp dir
    python examples/chatlog_bot.py --store s3://my-exports/bot --messages 200000

The chat client here is a fake (no network), shaped like discord.py's: commands arrive
as events, ``channel.history()`` is an async iterator that pages, and ``send`` is a
coroutine. A real bot swaps in its library's client and keeps the handlers.

What it shows:

* ``!export`` runs ``await aexport_chat_log(...)`` as its own task: reading the history,
  JSON, deflate, AES and the upload never block the loop, so ``!ping`` is answered while
  the export is still running (the transcript shows the order).
* The link goes to the channel and the password to the user's DMs: two messages, so a
  forwarded or screenshotted link alone opens nothing.
* ``!shares`` lists the states of the store's shares; ``!revoke LINK`` revokes by the link.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from vaultkit.archive import aexport_chat_log, bot_messages, list_shares, preload, revoke
from vaultkit.storage import ObjectStore, get_store

# --- a fake chat library (stands in for discord.py; no network) ------------------------


@dataclass
class Message:
    id: int
    author: str
    content: str
    created_at: datetime


class FakeChannel:
    def __init__(self, name: str, backlog: int) -> None:
        self.name = name
        start = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
        self._backlog = [Message(i, ("ana", "bo", "cy")[i % 3], f"message number {i}",
                                 start + timedelta(seconds=37 * i)) for i in range(backlog)]

    async def history(self, limit: int | None = 100) -> AsyncIterator[Message]:
        """Pages of 100 like the real API, with a network-like pause per page."""
        items = self._backlog if limit is None else self._backlog[:limit]
        for i, message in enumerate(items):
            if i % 100 == 0:
                await asyncio.sleep(0.001)
            yield message


@dataclass
class Event:
    channel: FakeChannel
    author: str
    content: str


@dataclass
class FakeClient:
    """Delivers scripted commands and records what the bot sends."""

    script: list[tuple[float, Event]]
    transcript: list[str] = field(default_factory=list)

    async def events(self) -> AsyncIterator[Event]:
        for delay, event in self.script:
            await asyncio.sleep(delay)
            self.transcript.append(f"[#{event.channel.name}] {event.author}: {event.content}")
            yield event

    async def send(self, channel: FakeChannel, text: str) -> None:
        await asyncio.sleep(0)  # a network round trip in a real client
        self.transcript.append(f"[#{channel.name}] bot: {text}")

    async def send_dm(self, user: str, text: str) -> None:
        await asyncio.sleep(0)
        # Only the user sees a DM: the transcript (printed below) records that one was
        # sent and how long it was, never its text (it holds the archive's password).
        first_words = text.split(":", 1)[0]
        self.transcript.append(f"[DM {user}] bot: {first_words}: <{len(text)} characters, "
                               "shown only to the user>")


# --- the bot -------------------------------------------------------------------------------


def as_record(message: Message) -> dict[str, Any]:
    return {"id": message.id, "author": message.author, "text": message.content,
            "at": message.created_at.isoformat()}


class ExportBot:
    def __init__(self, client: FakeClient, store: ObjectStore) -> None:
        self.client = client
        self.store = store
        self.tasks: set[asyncio.Task[None]] = set()

    async def export(self, event: Event) -> None:
        await self.client.send(event.channel, f"{event.author}: preparing your export...")
        records = (as_record(m) async for m in event.channel.history(limit=None))
        try:
            result = await aexport_chat_log(records, store=self.store, retention="7d")
        except Exception as exc:  # noqa: BLE001 - tell the user, keep serving
            await self.client.send(event.channel, f"export failed: {type(exc).__name__}")
            return
        link_message, password_message = bot_messages(result)
        await self.client.send(event.channel, link_message)      # message 1: the link
        await self.client.send_dm(event.author, password_message)  # message 2: the password

    async def handle(self, event: Event) -> None:
        command, _, arg = event.content.partition(" ")
        if command == "!ping":
            await self.client.send(event.channel, "pong")
        elif command == "!export":
            task = asyncio.create_task(self.export(event))  # never awaited inline
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif command == "!shares":
            rows = await asyncio.to_thread(list_shares, store=self.store)
            states = ", ".join(s.state for s in rows) or "none"
            await self.client.send(event.channel, f"shares: {states}")
        elif command == "!revoke":
            gone = await asyncio.to_thread(revoke, arg, store=self.store)
            await self.client.send(event.channel, "revoked" if gone else "already gone")

    async def run(self) -> None:
        async for event in self.client.events():
            await self.handle(event)
        if self.tasks:
            await asyncio.gather(*self.tasks)


async def main_async(store: ObjectStore, messages: int) -> list[str]:
    general = FakeChannel("general", messages)
    script = [(0.0, Event(general, "ana", "!export"))]
    script += [(0.02, Event(general, "bo", "!ping")) for _ in range(3)]
    client = FakeClient(script)
    bot = ExportBot(client, store)
    await bot.run()
    link = next(line.split("ready: ", 1)[1].split("\n", 1)[0]
                for line in client.transcript if "Your export is ready" in line)
    for delay, event in [(0.0, Event(general, "ana", "!shares")),
                         (0.0, Event(general, "ana", f"!revoke {link}")),
                         (0.0, Event(general, "ana", "!shares"))]:
        client.script = [(delay, event)]
        await bot.run()
    return client.transcript


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="s3://bucket[/prefix] or file://DIR")
    parser.add_argument("--messages", type=int, default=30_000)
    args = parser.parse_args()
    store = get_store(args.store or f"file://{tempfile.mkdtemp(prefix='vaultkit-bot-')}")
    preload()  # import the archive writer before serving (an import would stall the loop)
    for line in asyncio.run(main_async(store, args.messages)):
        print(line)
        print("--")


if __name__ == "__main__":
    main()
