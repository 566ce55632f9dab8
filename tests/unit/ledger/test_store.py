"""The LevelDB store: its options are compatible with stores written under other ones."""

from __future__ import annotations

from pathlib import Path

import plyvel

from ledger.store import LevelDBStore, WriteBatch


def test_store_writes_uncompressed_blocks_and_reads_snappy_ones(tmp_path: Path) -> None:
    # Stores written before compression was turned off hold snappy blocks; LevelDB records
    # the compression of each block, so they must still read back byte for byte.
    path = tmp_path / "db"
    old = plyvel.DB(str(path), create_if_missing=True, compression="snappy")
    document = b'{"a":"' + b"x" * 5000 + b'"}'
    old.put(b"x/old", document)
    old.compact_range()
    old.close()

    store = LevelDBStore(path)
    batch = WriteBatch()
    batch.put(b"x/new", document)
    store.write(batch)
    assert store.get(b"x/old") == document
    assert dict(store.iterate(b"x/")) == {b"x/new": document, b"x/old": document}
    # Uncompressed: once flushed to a table under the store's options, the new document's
    # bytes are there as they are (the old one's table may be kept, compressed, as it is).
    store.db.compact_range()
    store.close()
    tables = b"".join(p.read_bytes() for p in path.glob("*.ldb"))
    assert tables.count(b"x" * 5000) >= 1
