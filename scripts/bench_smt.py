"""Benchmark of the state tree (ledger/smt.py) on LevelDB: updates/s and proof time.

    .venv/bin/python -m scripts.bench_smt --sizes 100000 1000000

For each size: build a tree of that many random keys in batches of ``--build-batch``,
then time blocks of ``--block`` keys, each ``tree.update`` into a fresh batch plus
``store.write``, for fresh keys (inserts) and for existing keys (replacements), then
time ``prove`` for present and absent keys on a fresh, cold :class:`StateTree`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time

from ledger.encoding import cb
from ledger.smt import NodeCache, StateTree
from ledger.store import LevelDBStore, Overlay, WriteBatch


def make_value(rng: random.Random, index: int) -> bytes:
    return cb({"doc_hash": rng.randbytes(32), "status": "active", "version": 1, "log_index": index})


def apply_block(store: LevelDBStore, cache: NodeCache, items: dict[bytes, bytes]) -> float:
    """Apply one block; return the seconds spent in ``tree.update`` alone."""
    batch = WriteBatch()
    started = time.perf_counter()
    StateTree(Overlay(store, batch), cache=cache).update(batch, items)
    elapsed = time.perf_counter() - started
    store.write(batch, sync=False)
    return elapsed


def bench_size(size: int, args: argparse.Namespace) -> None:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory(prefix="bench-smt-") as tmp:
        store = LevelDBStore(tmp)
        cache = NodeCache()
        keys: list[bytes] = []
        started = time.perf_counter()
        while len(keys) < size:
            count = min(args.build_batch, size - len(keys))
            items = {rng.randbytes(32): make_value(rng, len(keys) + i) for i in range(count)}
            keys.extend(items)
            apply_block(store, cache, items)
        built = time.perf_counter() - started
        print(f"size {size}: built in {built:.1f} s ({size / built:,.0f} keys/s, batches of {args.build_batch})")

        for label in ("insert", "replace"):
            blocks = [
                {
                    (rng.randbytes(32) if label == "insert" else keys[rng.randrange(len(keys))]): make_value(rng, i)
                    for i in range(args.block)
                }
                for _ in range(args.blocks)
            ]
            profiler = cProfile.Profile() if args.profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            in_update = 0.0
            for items in blocks:
                in_update += apply_block(store, cache, items)
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - started
            total = sum(len(items) for items in blocks)
            print(f"  {label:7s}: {total / elapsed:>9,.0f} updates/s incl. store.write, "
                  f"{total / in_update:>9,.0f} updates/s in tree.update ({args.blocks} blocks of {args.block})")
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            if label == "insert":
                for items in blocks:
                    keys.extend(items)

        for label, cold in (("cold", True), ("warm", False)):
            tree = StateTree(store, cache=NodeCache() if cold else cache)
            present = [keys[rng.randrange(len(keys))] for _ in range(args.proofs)]
            absent = [rng.randbytes(32) for _ in range(args.proofs)]
            for kind, sample in (("present", present), ("absent", absent)):
                started = time.perf_counter()
                for key in sample:
                    tree.prove(key)
                elapsed = time.perf_counter() - started
                print(f"  prove {kind:7s} ({label} cache): {elapsed / len(sample) * 1e6:7.1f} us/proof")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--build-batch", type=int, default=10_000)
    parser.add_argument("--block", type=int, default=1_000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for size in args.sizes:
        bench_size(size, args)


if __name__ == "__main__":
    main()
