"""A fake chat history for the async export tests and benchmark, shaped like discord.py's
``channel.history()``: an async iterator that pages (one await per 100 messages)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator


async def chat_history(seed: int, total_bytes: int) -> AsyncIterator[dict[str, object]]:
    """Messages of ~170 bytes of JSON each until about ``total_bytes``; text from SHA-256, so
    it compresses like real chat (about 2:1), and ``seed`` makes each history distinct."""
    sent = i = 0
    while sent < total_bytes:
        if i % 100 == 0:
            await asyncio.sleep(0)
        text = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() * 2
        yield {"id": i, "author": f"user{i % 13}", "text": text}
        sent += len(text) + 40
        i += 1
