"""Heavy work a public request brings, run beside the event loop instead of on it.

The loop that serves the API also runs consensus. Parsing a submitted body (JSON with
the duplicate-key hook, JCS, hashing an upload) and verifying the signatures of a batch
are pure and scale with the body: up to a second for the largest body a route admits,
during which no vote would be counted. They run on a small pool of threads: the loop
keeps turning (the interpreter hands it the lock at least every switch interval) and
at most ``WORKERS`` requests' worth of such work competes with it at a time; the rest
wait their turn without holding anything.

Small inputs are handled in place: handing them over costs more than it saves.
Nothing here mutates node state; mempool admission stays on the loop, in chunks of
``ADMISSION_CHUNK`` with the loop served between chunks. The API's requests and the
peers' transaction batches go through the same pool.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from ledger.limits import KIB

WORKERS = 2
"""Threads for request work: one per core of the smallest machine a validator runs on."""
INLINE_BYTES = 16 * KIB
"""Inputs up to this size are handled on the loop: the worst JSON of this size (nested
empty objects) parses and canonicalises in about 5 ms, less than a hand-over under load."""

ADMISSION_CHUNK = 64
"""Transactions admitted to the mempool per turn of the loop (about 10 ms of work)."""

_P = ParamSpec("_P")
_R = TypeVar("_R")

_pool: ThreadPoolExecutor | None = None


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="zoneledger-request")
    return _pool


async def run_off_loop(size: int, function: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """``function(*args, **kwargs)``, in a worker thread when ``size`` (the bytes it works
    through) is over ``INLINE_BYTES``, else here. Its exceptions are raised here as is."""
    if size <= INLINE_BYTES:
        return function(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_pool(), _call_and_let_go, lambda: function(*args, **kwargs))


def _call_and_let_go(call: Callable[[], _R]) -> _R:
    # The cyclic collector, run while a parser builds a million containers in one call,
    # walks them again and again with the interpreter held: 457 instead of 43 ms for the
    # worst MiB of JSON, 532 instead of 79 for MessagePack. It is paused for the call (not
    # counted across threads: the first call to end turns it back on, so it cannot stay
    # off while calls overlap without end).
    gc.disable()
    try:
        return call()
    except BaseException as exc:
        # The traceback keeps the failed call's frames alive, and with them whatever it
        # had parsed (a million objects for the largest body): drop them here, in the
        # worker, rather than on the event loop when the error is handled there.
        _drop_tracebacks(exc)
        raise
    finally:
        gc.enable()


def _drop_tracebacks(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
