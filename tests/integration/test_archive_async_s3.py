"""The asyncio API against moto over HTTP: 20 concurrent exports while a heartbeat
measures event-loop lag; cancellation mid-upload and a source failing halfway leave no
object and no open multipart upload.

Sizes are scaled down for the suite (20 x 2 MB); benchmarks/bench_archive.py runs the
20 x 20 MB case and holds the lag and throughput targets.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness.chat_history import chat_history
from vaultkit.archive import aexport_chat_log, ashare, preload
from vaultkit.backends import aws
from vaultkit.errors import ArchiveError
from vaultkit.storage.s3 import MIN_PART_SIZE, S3Store

pytestmark = pytest.mark.integration

EXPORTS = 20
MESSAGE_BYTES = 2_000_000


def new_store(moto_server: Any) -> S3Store:
    store = S3Store(f"vk-{uuid.uuid4().hex[:12]}", "bot", config=moto_server.config(),
                    part_size=MIN_PART_SIZE, require_tls=False)
    store.ensure_bucket()
    return store


def leftovers(store: S3Store) -> tuple[list[str], list[str]]:
    c = aws.client("s3", store.config)
    objs = [o["Key"] for o in c.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    ups = [u["Key"] for u in c.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
    return objs, ups


async def heartbeat(stop: asyncio.Event, lags: list[float], period: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - t - period))


def test_twenty_concurrent_exports_keep_the_loop_responsive(moto_server: Any) -> None:
    store = new_store(moto_server)
    lags: list[float] = []
    preload()  # what a bot does at start-up: no import inside the measured window

    async def main() -> list[Any]:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop, lags))
        results = await asyncio.gather(*(aexport_chat_log(chat_history(n, MESSAGE_BYTES),
                                                          store=store, retention="7d")
                                         for n in range(EXPORTS)))
        stop.set()
        await beat
        return results

    results = asyncio.run(main())
    c = aws.client("s3", store.config)
    assert len({r.object_key for r in results}) == EXPORTS
    for r in results:
        body = c.get_object(Bucket=store.bucket, Key=f"bot/{r.object_key}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == r.sha256
    lags.sort()
    p99 = lags[int(len(lags) * 0.99) - 1]
    print(f"\nevent-loop lag over {len(lags)} beats: median {statistics.median(lags) * 1000:.1f} "
          f"ms, p99 {p99 * 1000:.1f} ms, max {lags[-1] * 1000:.1f} ms")
    # Generous bounds only (shared CI cores); the benchmark holds p99 <= 20 ms, max <= 50 ms.
    assert p99 < 0.25 and lags[-1] < 1.0
    assert leftovers(store)[1] == []


def test_cancel_mid_upload_aborts_the_multipart_upload(moto_server: Any) -> None:
    store = new_store(moto_server)
    sent_two_parts = threading.Event()

    async def random_chunks() -> AsyncIterator[bytes]:
        for i in range(64):
            yield os.urandom(1 << 20)
            if i == 12:  # > two 5 MiB parts are out by now
                sent_two_parts.set()
        yield b""

    async def main() -> None:
        task = asyncio.create_task(ashare([("big.bin", random_chunks())], store=store,
                                          compresslevel=0))
        while not sent_two_parts.is_set():
            await asyncio.sleep(0.01)
        for _ in range(200):  # wait until S3 has the open upload with parts
            if leftovers(store)[1]:
                break
            await asyncio.sleep(0.02)
        assert leftovers(store)[1], "no multipart upload in progress"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert leftovers(store) == ([], [])


def test_async_generator_raising_halfway_leaves_nothing(moto_server: Any) -> None:
    store = new_store(moto_server)

    async def failing() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield os.urandom(1 << 20)
        raise ConnectionResetError("chat API went away")

    async def main() -> None:
        # An OSError from a source is an input error, as with sync sources.
        with pytest.raises(ArchiveError, match="ConnectionResetError") as err:
            await ashare([("big.bin", failing())], store=store, compresslevel=0)
        assert isinstance(err.value.__cause__, ConnectionResetError)

    asyncio.run(main())
    assert leftovers(store) == ([], [])
