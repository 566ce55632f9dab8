"""Where an audit's blocks come from: the :class:`BlockSource` protocol and a stopped node's LevelDB.

A source yields every stored block with its stored commit certificate in height order,
including any after the head it claims, and says what it records besides (the genesis
hash, separately stored headers, equivocation evidence), so that the replay can hold each
of those against the chain. :class:`StoreSource` reads a stopped node's store directly;
the source that reads a running node over HTTP lives with the command
(``scripts/audit_cmd.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import msgpack

from ledger.blocks import Block
from ledger.chain import KEY_GENESIS, KEY_HEAD, StoredBlock, key_commit, key_header, validate_store_format
from ledger.errors import LedgerError, StoreCorruptError, StoreError, StoreFormatError
from ledger.store import LevelDBStore

SourceBlock = bytes | Block | LedgerError
"""A block as a source gives it: wire bytes to decode, a block a store put back together,
or the reason the source could not produce it (reported at that height)."""


class BlockSource(Protocol):
    """Where the blocks come from: yields ``(height, block, commit_bytes)`` in order."""

    description: str
    """Shown in the report (a path or a URL)."""

    def claimed_head(self) -> tuple[int, bytes | None]:
        """The head height the source claims, and its block hash when known."""
        ...

    def genesis_hash(self) -> bytes | None:
        """The genesis hash the source records, when it records one."""
        ...

    def blocks(self) -> Iterator[tuple[int, SourceBlock, bytes | None]]:
        """Every stored block in height order (including any after the claimed head)."""
        ...

    def stored_header(self, height: int) -> bytes | None:
        """The separately stored header of ``height``, when the source keeps one."""
        ...

    def evidence(self) -> list[dict[str, Any]]:
        """Equivocation evidence the node recorded (none from the chain itself)."""
        ...

    def close(self) -> None: ...


class StoreSource:
    """A stopped node's LevelDB, read directly: a data dir (``<dir>/ledger``) or the store itself."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        root = Path(path)
        # A node's home (as the devnet lays it out), its data directory, or the store.
        data_dir = next((d for d in (root / "data", root) if (d / "ledger").is_dir()), None)
        if data_dir is not None:
            self.store_path = data_dir / "ledger"
            # The node's evidence log (node/evidence.py), then the file nodes wrote before it.
            self.evidence_paths = [data_dir / "evidence" / "evidence.jsonl", data_dir / "evidence.jsonl"]
        elif (root / "CURRENT").is_file():
            self.store_path = root
            self.evidence_paths = []
        else:
            raise StoreError(
                f"{root}: expected a stopped node's data directory (holding ledger/) or its ledger store, "
                "got neither"
            )
        self.description = str(self.store_path)
        self.store = LevelDBStore(self.store_path, create=False)
        if self.store.get(KEY_GENESIS) is not None:
            try:
                validate_store_format(self.store)
            except StoreFormatError:
                self.store.close()
                raise

    def claimed_head(self) -> tuple[int, bytes | None]:
        raw = self.store.get(KEY_HEAD)
        if raw is None:
            return 0, None
        try:
            head = msgpack.unpackb(raw, raw=False)
            return int(head["height"]), bytes(head["block_hash"])
        except Exception as exc:  # any undecodable head record is store corruption
            raise StoreCorruptError(f"m/head: expected a head record, got undecodable bytes: {exc}") from exc

    def genesis_hash(self) -> bytes | None:
        return self.store.get(KEY_GENESIS)

    def blocks(self) -> Iterator[tuple[int, SourceBlock, bytes | None]]:
        for key, value in self.store.iterate(b"b/"):
            height = int.from_bytes(key[2:], "big")
            block: SourceBlock
            try:
                block = StoredBlock.decode(value, height).assemble(self.store)
            except LedgerError as exc:
                block = exc
            yield height, block, self.store.get(key_commit(height))

    def stored_header(self, height: int) -> bytes | None:
        return self.store.get(key_header(height))

    def evidence(self) -> list[dict[str, Any]]:
        return [entry for path in self.evidence_paths for entry in read_evidence(path)]

    def close(self) -> None:
        self.store.close()


def read_evidence(path: Path) -> list[dict[str, Any]]:
    """The node's ``evidence.jsonl``: one JSON object per line; unreadable lines kept as text."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = {"unparsed": line}
        out.append(value if isinstance(value, dict) else {"value": value})
    return out
