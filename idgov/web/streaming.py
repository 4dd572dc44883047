"""Streaming a blocking generator as an HTTP body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import anyio
from starlette.concurrency import run_in_threadpool


async def threaded_body(stream: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The generator's chunks, each produced in a worker thread (it may block on the
    database or the disk); whatever ends the response (the last chunk, an error, the client
    going away) closes the generator, so that its ``finally`` runs at once."""
    try:
        while True:
            chunk = await run_in_threadpool(next, stream, None)
            if chunk is None:
                return
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(stream.close)
