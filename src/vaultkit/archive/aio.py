"""``await ashare(...)`` and ``await aexport_chat_log(...)``: exports for asyncio bots.

A chat bot (discord.py and its peers) runs on one event loop; a blocking call stalls
every other command. These coroutines keep the loop free:

* **Off the loop.** Planning, JSON encoding, deflate, AES, HMAC and the upload run in a
  worker thread (a dedicated pool, so exports never starve the loop's default executor,
  which also resolves host names). The loop only iterates the caller's async iterator.
* **Async or sync sources.** A message source or an entry's chunks may be an async
  iterator (``channel.history()``) or a plain iterable. Async items are handed to the
  worker through a bounded channel (at most 4 batches of 256 items or 256 KiB), so
  memory stays bounded whatever the export's size; the producer waits when the worker
  is behind, and yields to the loop after every batch.
* **Cancellation.** Cancelling the task sets a stop flag that the worker checks on every
  archive write and every hand-over (cancelling the awaiting task alone would not stop
  the thread: ``asyncio.to_thread`` cannot interrupt it). The upload is aborted: no
  object, no open multipart upload, no temporary file. The coroutine waits for that
  abort to finish before the ``CancelledError`` propagates, so the caller sees a clean
  store. A cancel that comes too late to stop the upload (while the worker commits or
  signs the link) revokes the finished share instead: the caller never got its link
  or password. A source that raises does the same and its exception propagates.

>>> import asyncio
>>> from vaultkit.storage import get_store
>>> async def history():
...     for i in range(3):
...         yield {"id": i, "text": f"m{i}"}
>>> result = asyncio.run(aexport_chat_log(history(), store=get_store("memory://aio-doc")))
>>> result.private
True
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from ..secret import Secret
from ..storage import ObjectStore
from ..storage.base import Retention
from .chatlog import ENTRY_NAME, jsonl_lines
from .inputs import ChunkSource, InputItem, PlannedEntry
from .share import ExportCancelledError, ShareResult, share

#: Items per hand-over from the loop to the worker, and bytes (for chunk sources).
BATCH_ITEMS = 256
BATCH_BYTES = 256 * 1024
#: Batches waiting in a channel before the producer has to wait.
CHANNEL_DEPTH = 4

logger = logging.getLogger("vaultkit.archive")

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def default_executor() -> Executor:
    """The shared pool export workers run in (created on first use): one worker per CPU,
    at least two.

    Every worker competes with the event loop for the GIL (JSON encoding and pyzipper's
    bookkeeping hold it; zlib, AES and SHA release it). Measured on 2 cores with 20
    concurrent exports: 2 workers kept the loop's p99 lag near 5 ms, 6 workers pushed
    it to ~80 ms for no gain in throughput. Exports beyond the pool size queue (their
    sources wait, bounded). Pass ``executor=`` for a different trade-off, e.g. more
    workers when uploads wait on a slow network.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1),
                                       thread_name_prefix="vaultkit-export")
        return _pool


def preload() -> None:
    """Import and exercise the archive writer once (pyzipper, pycryptodomex, zlib).

    The first export otherwise imports them in its worker thread, and an import holds
    the GIL: the loop stalls for ~100 ms once. Call this at bot start-up, before the loop
    serves users (it takes a few milliseconds after the imports).
    """
    import io

    from .builder import write_archive

    write_archive([("warm-up", [b"x"])], io.BytesIO(), threads=1)


class _Stopped(Exception):
    """Tells a producer that the export it feeds is over."""


class _Channel:
    """A bounded hand-over from the event loop (producer) to one worker thread (consumer)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        self._loop = loop
        self._stop = stop
        self._cond = threading.Condition()
        self._items: deque[list[Any]] = deque()
        self._closed = False
        self._error: BaseException | None = None
        self._space: asyncio.Future[None] | None = None

    # --- loop side ---
    async def put(self, batch: list[Any]) -> None:
        while True:
            with self._cond:
                if self._stop.is_set():
                    raise _Stopped  # the export is over: stop reading the source
                if len(self._items) < CHANNEL_DEPTH:
                    self._items.append(batch)
                    self._cond.notify()
                    return
                space = self._space = self._loop.create_future()
            await space

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake a worker blocked in :meth:`__iter__` (after ``stop`` was set)."""
        with self._cond:
            self._cond.notify_all()

    # --- worker side ---
    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._cond:
                while not self._items and not self._closed and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    raise ExportCancelledError("export cancelled")
                if self._items:
                    batch = self._items.popleft()
                    space, self._space = self._space, None
                elif self._error is not None:
                    raise self._error
                else:
                    return
            if space is not None:
                _call_soon(self._loop, _release, space)
            yield from batch


def _release(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """``call_soon_threadsafe`` from the worker; a loop closed meanwhile has nobody left
    to wake, which is not the worker's error."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _size(item: Any) -> int:
    return len(item) if isinstance(item, (bytes, bytearray, memoryview, str)) else 0


async def _pump(source: AsyncIterable[Any], channel: _Channel, started: asyncio.Event) -> None:
    """Move ``source``'s items into ``channel`` in batches, on the loop, once a worker has
    picked the export up (an export queued behind others holds no messages meanwhile)."""
    batch: list[Any] = []
    size = 0
    try:
        await started.wait()
        async for item in source:
            batch.append(item)
            size += _size(item)
            if len(batch) >= BATCH_ITEMS or size >= BATCH_BYTES:
                await channel.put(batch)
                batch, size = [], 0
                # A source that never suspends would otherwise hold the loop to the end.
                await asyncio.sleep(0)
        if batch:
            await channel.put(batch)
    except asyncio.CancelledError:
        channel.close(ExportCancelledError("export cancelled: its source was cancelled"))
        raise
    except _Stopped:
        return
    except Exception as exc:  # noqa: BLE001 - handed to the worker, which re-raises it
        channel.close(exc)
        return
    channel.close()


class _Run:
    """One export: the channels its async sources feed, and the stop flag."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self.started = asyncio.Event()
        self.channels: list[_Channel] = []
        self.pumps: list[asyncio.Task[None]] = []

    def bridge(self, source: AsyncIterable[Any]) -> _Channel:
        channel = _Channel(self.loop, self.stop)
        self.channels.append(channel)
        self.pumps.append(self.loop.create_task(_pump(source, channel, self.started)))
        return channel

    def _job(self, share_kwargs: dict[str, Any]) -> ShareResult:
        _call_soon(self.loop, self.started.set)
        return share(cancel=self.stop, **share_kwargs)

    async def run(self, executor: Executor | None, **share_kwargs: Any) -> ShareResult:
        job = functools.partial(self._job, share_kwargs)
        ctx = contextvars.copy_context()  # audit and logging context, as to_thread does
        cf = (executor or default_executor()).submit(ctx.run, job)
        worker = asyncio.wrap_future(cf, loop=self.loop)
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            self.stop.set()
            for channel in self.channels:
                channel.wake()
            if not cf.cancel():  # already running: let it abort the upload first
                await _finish(worker)
                await self._discard(worker, executor, share_kwargs["store"])
            raise
        finally:
            for pump in self.pumps:
                pump.cancel()
            await asyncio.gather(*self.pumps, return_exceptions=True)


    async def _discard(self, worker: asyncio.Future[Any], executor: Executor | None,
                       store: ObjectStore | str) -> None:
        """A worker that finished anyway (the cancel came after the last archive write,
        while it committed or signed the link) has stored an object whose link and
        password the cancelled caller never receives: revoke it, off the loop."""
        if worker.cancelled() or worker.exception() is not None:
            return
        result: ShareResult = worker.result()
        from .manage import revoke

        cleanup = self.loop.run_in_executor(executor or default_executor(), functools.partial(
            revoke, result.object_key, store=store))
        await _finish(cleanup)
        if not cleanup.cancelled() and cleanup.exception() is not None:
            # Lifecycle expiry removes it at the end of its retention; say so.
            logger.warning("cancelled export %s could not be revoked: %s", result.object_key,
                           type(cleanup.exception()).__name__)


async def _finish(worker: asyncio.Future[Any]) -> None:
    """Wait for a stopped worker to finish its cleanup, whatever else gets cancelled."""
    while not worker.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({worker})
    if not worker.cancelled():
        worker.exception()  # retrieved: the expected ExportCancelledError (or None)


async def ashare(
    inputs: Iterable[InputItem | PlannedEntry | tuple[str, AsyncIterable[Any]]],
    *,
    store: ObjectStore | str,
    retention: str | int | Retention = "7d",
    password: Secret[str] | str | None = None,
    private: bool = False,
    filename: str = "export.zip",
    link_lifetime: timedelta | None = None,
    compresslevel: int = 6,
    threads: int = 1,
    executor: Executor | None = None,
) -> ShareResult:
    """:func:`~vaultkit.archive.share` for asyncio: the same arguments and result.

    An entry's chunks may be an async iterable of ``bytes``/``str``. Everything blocking
    runs in a worker thread; cancelling the task aborts the upload (see the module doc).
    ``threads`` is the deflate threads of this one export: 1 by default, because a bot's
    exports run side by side and each extra thread adds GIL contention (loop lag);
    ``threads=2`` makes a lone large export faster.

    >>> result = await ashare([("log.txt", lines_from_api())], store=store)  # doctest: +SKIP
    """
    run = _Run()
    items: list[InputItem | PlannedEntry] = []
    for item in inputs:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], AsyncIterable):
            items.append((item[0], _chunks(run.bridge(item[1]))))
        else:
            items.append(item)
    return await run.run(executor, inputs=items, store=store, retention=retention,
                         password=password, private=private, filename=filename,
                         link_lifetime=link_lifetime, compresslevel=compresslevel,
                         threads=threads)


def _chunks(channel: _Channel) -> ChunkSource:
    return iter(channel)


async def aexport_chat_log(
    messages: AsyncIterable[Mapping[str, Any] | str] | Iterable[Mapping[str, Any] | str],
    *,
    store: ObjectStore | str,
    retention: str | int | Retention = "7d",
    filename: str = "chat-export.zip",
    private: bool = True,
    link_lifetime: timedelta | None = None,
    threads: int = 1,
    executor: Executor | None = None,
) -> ShareResult:
    """:func:`~vaultkit.archive.export_chat_log` for asyncio. ``messages`` may be an async
    iterator (``channel.history(limit=None)`` mapped to dicts) or any iterable; JSON
    encoding happens in the worker, not on the loop.
    """
    run = _Run()
    source: Iterable[Any] = iter(run.bridge(messages)) if isinstance(messages, AsyncIterable) \
        else messages
    return await run.run(executor, inputs=[(ENTRY_NAME, jsonl_lines(source))], store=store,
                         retention=retention, private=private, filename=filename,
                         link_lifetime=link_lifetime, threads=threads)


__all__ = ["aexport_chat_log", "ashare", "default_executor", "preload"]
