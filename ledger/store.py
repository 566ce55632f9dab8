"""The one narrow key-value interface the ledger persists through.

Two implementations: :class:`LevelDBStore` (plyvel, the real one) and
:class:`MemoryStore` (tests and simulations). Writes happen only through a
:class:`WriteBatch` applied atomically with :meth:`KVStore.write`; that is how a block's
every record, log node and tree node lands all at once or not at all.

plyvel errors are translated here, once, into :class:`~ledger.errors.StoreError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ledger.errors import StoreError, StoreLockedError


class KVReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class KVStore(KVReader, Protocol):
    """Byte keys to byte values; atomic batches; ordered prefix iteration."""

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None: ...

    def iterate(self, prefix: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]: ...

    def close(self) -> None: ...


class WriteBatch:
    """Pending puts and deletes; later operations on a key win. Readable through ``get``."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        self.ops[key] = None

    def __len__(self) -> int:
        return len(self.ops)


class Overlay:
    """A read view of ``base`` with ``batch`` applied on top (uncommitted block state)."""

    __slots__ = ("base", "batch")

    def __init__(self, base: KVReader, batch: WriteBatch) -> None:
        self.base = base
        self.batch = batch

    def get(self, key: bytes) -> bytes | None:
        ops = self.batch.ops
        if key in ops:
            return ops[key]
        return self.base.get(key)


class MemoryStore:
    """In-memory store with the same semantics as :class:`LevelDBStore`."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.closed = False

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        for key, value in batch.ops.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def iterate(self, prefix: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.data if k.startswith(prefix))
        if reverse:
            keys.reverse()
        for key in keys:
            yield key, self.data[key]

    def close(self) -> None:
        self.closed = True


class LevelDBStore:
    """LevelDB through plyvel. One process may open a directory at a time."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        import plyvel  # here, not at module level: in-memory users never load LevelDB

        # Kept for the translation of foreign errors; reads and writes are the hot path.
        self._error: type[Exception] = plyvel.Error

        self.path = str(path)
        if create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = plyvel.DB(
                self.path,
                create_if_missing=create,
                paranoid_checks=True,
                lru_cache_size=64 * 1024 * 1024,
                # Most reads on the hot path are misses (not replayed, not yet issued):
                # a bloom filter answers those without touching the table files.
                bloom_filter_bits=10,
                write_buffer_size=16 * 1024 * 1024,
                # The plyvel wheel's bundled snappy is built without optimisation: it cost
                # about 33 us to decompress each 4.6 KB document read back, ten times the
                # rest of the read, and as much again to compress on compaction. JSON on
                # disk takes 1.5x the space uncompressed; CPU is what a node runs short of.
                # Blocks record their own compression, so stores written with snappy
                # still read.
                compression=None,
            )
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(f"store {self.path} is open in another process") from exc
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        except plyvel.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self.db.get(key)
        except self._error as exc:
            raise StoreError(f"read failed in {self.path}: {exc}") from exc
        return value

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        try:
            with self.db.write_batch(sync=sync) as wb:
                for key, value in batch.ops.items():
                    if value is None:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
        except self._error as exc:
            raise StoreError(f"write failed in {self.path}: {exc}") from exc

    def iterate(self, prefix: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        try:
            yield from self.db.iterator(prefix=prefix, reverse=reverse)
        except self._error as exc:
            raise StoreError(f"iteration failed in {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()
