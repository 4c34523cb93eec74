"""Parallel raw-deflate: zlib on worker threads, output identical in format to one stream.

This is pigz's construction (Mark Adler, ``pigz.c``): the input is cut into blocks;
each block is compressed by its own ``zlib.compressobj`` primed with the previous 32 KiB
of input as a preset dictionary (so matches may reach back across the cut, and the ratio
barely changes), and ends with ``Z_SYNC_FLUSH`` (an empty stored block that byte-aligns
the stream without setting BFINAL). Concatenating the blocks in order is one valid
RFC 1951 deflate stream; only the last block ends with ``Z_FINISH``.

CPython's zlib releases the GIL while it compresses, so the workers run truly in
parallel with each other and with the thread that encrypts and writes. Memory is
bounded: at most ``max_pending`` blocks (input plus output) are in flight.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Executor, Future

#: Deflate's window: a back-reference reaches at most 32 KiB (RFC 1951 section 2).
WINDOW = 32 * 1024
BLOCK_SIZE = 1024 * 1024


def _deflate_block(block: bytes, zdict: bytes, level: int, final: bool) -> bytes:
    if zdict:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(block) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class ParallelDeflater:
    """A drop-in for ``zlib.compressobj(level, DEFLATED, -15)`` (``compress``/``flush``)."""

    def __init__(self, level: int, executor: Executor, *, block_size: int = BLOCK_SIZE,
                 max_pending: int = 4) -> None:
        self._level = level
        self._executor = executor
        self._block_size = block_size
        self._max_pending = max_pending
        self._buf = bytearray()
        self._window = b""
        self._pending: deque[Future[bytes]] = deque()

    def _submit(self, block: bytes, final: bool) -> None:
        self._pending.append(
            self._executor.submit(_deflate_block, block, self._window, self._level, final))
        self._window = (self._window + block)[-WINDOW:]

    def compress(self, data: bytes) -> bytes:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= self._block_size:
            block = bytes(self._buf[: self._block_size])
            del self._buf[: self._block_size]
            self._submit(block, final=False)
            while len(self._pending) > self._max_pending:
                out.append(self._pending.popleft().result())
        while self._pending and self._pending[0].done():
            out.append(self._pending.popleft().result())
        return b"".join(out)

    def flush(self) -> bytes:
        self._submit(bytes(self._buf), final=True)
        self._buf.clear()
        out = [f.result() for f in self._pending]
        self._pending.clear()
        return b"".join(out)

    def cancel(self) -> None:
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        self._buf.clear()
