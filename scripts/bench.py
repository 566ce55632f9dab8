"""``zoneledger bench``: throughput figures, always beside a baseline from the same run.

The machine this runs on is shared and noisy, so every figure is reported next to raw
Ed25519 verifications per second measured in the same process moments before, and
as a ratio to it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.encoding import H, jcs
from scripts.devkit import EXAMPLES_DIR, Alliance, make_alliance, with_number


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput against a same-run Ed25519 baseline")
    which = parser.add_subparsers(dest="bench", metavar="SUITE", required=True)
    core = which.add_parser("core", help="ledger core: apply_block, log, state tree, proofs")
    core.add_argument("--docs", type=int, default=4000, help="documents pushed through apply_block")
    core.add_argument("--block-size", type=int, default=500, help="documents per block")
    core.add_argument("--proof-docs", type=int, default=1_000_000, help="ledger size for the proof timing")
    core.add_argument("--json", type=Path, help="also write the figures as JSON here")
    core.set_defaults(func=run_core)
    ingest = which.add_parser("ingest", help="committed docs/s and finality latency on a local devnet")
    ingest.add_argument("--zones", type=int, default=4)
    ingest.add_argument("--docs", type=int, default=5000)
    ingest.add_argument("--rate", type=float, default=1000.0, help="offered documents per second")
    ingest.add_argument("--clients", type=int, default=0,
                        help="concurrent officer clients (default: enough to keep --rate in flight for 4 s)")
    ingest.add_argument("--batch", type=int, default=25, help="documents per request")
    ingest.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ingest.set_defaults(func=run_ingest)
    replay = which.add_parser("replay", help="auditor replay (audit_chain) docs/s against cores x verify/s")
    replay.add_argument("--docs", type=int, default=20_000, help="certificates in the chain replayed")
    replay.add_argument("--block-size", type=int, default=500, help="documents per block")
    replay.add_argument("--workers", type=int, default=None, help="signature workers (default: every core)")
    replay.add_argument("--json", type=Path, help="also write the figures as JSON here")
    replay.set_defaults(func=run_replay)
    verify = which.add_parser("verify", help="proof bundle build time, size and offline verify time by ledger size")
    verify.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    verify.add_argument("--repeats", type=int, default=50, help="timings per size (medians reported)")
    verify.add_argument("--json", type=Path, help="also write the figures as JSON here")
    verify.set_defaults(func=run_verify)
    from scripts.bench_hostile import register as register_hostile
    from scripts.bench_observers import register as register_observers
    from scripts.bench_scale import register as register_scale

    register_hostile(which)
    register_observers(which)
    register_scale(which)


def measure_verify_rate(seconds: float = 1.5) -> float:
    """Raw Ed25519 verifications per second on ~300-byte messages (the baseline)."""
    from ledger.keys import SigningKey

    key = SigningKey.from_label("bench baseline")
    public = Ed25519PublicKey.from_public_bytes(key.public)
    messages = [os.urandom(300) for _ in range(64)]
    sigs = [key.sign_bytes(m) for m in messages]
    count = 0
    start = time.perf_counter()
    while True:
        for m, s in zip(messages, sigs, strict=True):
            public.verify(s, m)
        count += len(messages)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def example_certificate() -> dict[str, Any]:
    path = EXAMPLES_DIR / "coo_preferential.json"
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def _rate(count: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def bench_apply_block(
    alliance: Alliance, docs: int, block_size: int, store_dir: Path, repeats: int = 3
) -> tuple[float, float, int]:
    """Best-of-``repeats`` docs/s through execute + commit on LevelDB, and the best baseline.

    Signing and proposing happen beforehand on a scratch chain; each repetition replays
    the same blocks into a fresh store. The Ed25519 baseline is measured right before
    each repetition, so both figures come from the same moments of a noisy machine.
    """
    from ledger.store import LevelDBStore
    from ledger.transactions import forget_decoded_envelopes
    from ledger.transition import apply_block

    template = example_certificate()
    doc_size = len(jcs(template))
    scratch = alliance.chain(LevelDBStore(store_dir / "scratch"))
    blocks = []
    for start in range(0, docs, block_size):
        entries = []
        for i in range(start, min(start + block_size, docs)):
            number = f"BENCH-{i:07d}"
            document = with_number(template, "certificate_of_origin", number)
            entries.append(alliance.issue("EG-TEDA", "certificate_of_origin", document, number))
        block = alliance.commit_next(scratch, entries)
        blocks.append(block)
    commits = [scratch.get_commit(b.height) for b in blocks]
    scratch.store.close()
    best_rate = 0.0
    best_baseline = 0.0
    for attempt in range(repeats):
        best_baseline = max(best_baseline, measure_verify_rate(1.0))
        # Measured as a node applying a block of transactions it has never seen: building
        # the blocks above decoded every envelope, and that memory would skip the decode.
        forget_decoded_envelopes()
        chain = alliance.chain(LevelDBStore(store_dir / f"measured-{attempt}"))
        start_time = time.perf_counter()
        for block, commit in zip(blocks, commits, strict=True):
            assert commit is not None
            apply_block(chain, block, commit)
        elapsed = time.perf_counter() - start_time
        chain.store.close()
        best_rate = max(best_rate, docs / elapsed)
    return best_rate, best_baseline, doc_size


def bench_log_appends(count: int, store_dir: Path) -> float:
    from ledger.merkle import MerkleLog
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "log")
    leaves = [os.urandom(400) for _ in range(1000)]
    per_batch = 1000
    start = time.perf_counter()
    for _ in range(count // per_batch):
        batch = WriteBatch()
        log = MerkleLog(Overlay(store, batch))
        for leaf in leaves:
            log.append(batch, leaf)
        log.root()
        store.write(batch)
    rate = count / (time.perf_counter() - start)
    store.close()
    return rate


def bench_tree_updates(count: int, preload: int, store_dir: Path) -> float:
    from ledger.smt import NodeCache, StateTree
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "smt")
    rng = random.Random(7)
    per_batch = 1000
    cache = NodeCache()

    def load(n: int) -> None:
        for _ in range(n // per_batch):
            batch = WriteBatch()
            tree = StateTree(Overlay(store, batch), cache=cache)
            tree.update(batch, {rng.randbytes(32): rng.randbytes(60) for _ in range(per_batch)})
            # The block's fsync is counted in apply_block; here: the tree's work and its writes.
            store.write(batch, sync=False)

    load(preload)
    rate = _rate(count, lambda: load(count))
    store.close()
    return rate


def bench_proofs(size: int, store_dir: Path, progress: Callable[[str], None]) -> dict[str, float]:
    """Fill a log and a state tree to ``size`` documents, then time inclusion + state proofs."""
    from ledger.merkle import MerkleLog, verify_inclusion_hash
    from ledger.smt import NodeCache, StateTree, verify_state_proof
    from ledger.store import LevelDBStore, Overlay, WriteBatch

    store = LevelDBStore(store_dir / "proofs")
    cache = NodeCache()
    rng = random.Random(11)
    keys: list[bytes] = []
    per_batch = 10_000
    done = 0
    while done < size:
        n = min(per_batch, size - done)
        batch = WriteBatch()
        overlay = Overlay(store, batch)
        log = MerkleLog(overlay, prefix=b"L/")
        tree = StateTree(overlay, prefix=b"S/", cache=cache)
        items = {}
        for i in range(n):
            leaf = rng.randbytes(300)
            log.append(batch, leaf)
            key = H(f"EG-TEDA/P-{done + i}".encode())
            items[key] = rng.randbytes(60)
            if (done + i) % 997 == 0:
                keys.append(key)
        tree.update(batch, items)
        store.write(batch, sync=False)
        done += n
        if done % 100_000 == 0:
            progress(f"  filled {done:,} / {size:,}")
    log = MerkleLog(store, prefix=b"L/")
    tree = StateTree(store, prefix=b"S/")  # a cold cache: proofs as a freshly started node serves them
    root = log.root()
    state_root = tree.root()
    samples = []
    for key in keys[:200]:
        index = rng.randrange(size)
        t0 = time.perf_counter()
        proof = log.inclusion_proof(index, size)
        state_proof = tree.prove(key)
        samples.append(time.perf_counter() - t0)
        verify_inclusion_hash(log.leaf_hash_at(index), index, size, proof, root)
        value = tree.get(key)
        verify_state_proof(key, value, state_proof, state_root)
    store.close()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": sorted(samples)[int(len(samples) * 0.95) - 1] * 1000,
    }


def run_core(args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    alliance = make_alliance(4, label="bench")
    figures: dict[str, Any] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="zoneledger-bench-") as tmp:
        work = Path(tmp)
        say(f"apply_block: {args.docs:,} certificates in blocks of {args.block_size}, best of 3, "
            "each beside an Ed25519 baseline ...")
        rate, baseline, doc_size = bench_apply_block(alliance, args.docs, args.block_size, work)
        figures["ed25519_verify_per_s"] = baseline
        say(f"  baseline: {baseline:,.0f} verify/s (best of 3)")
        figures |= {"apply_block_docs_per_s": rate, "apply_block_ratio": rate / baseline, "document_bytes": doc_size}
        say(f"  apply_block: {rate:,.0f} docs/s ({rate / baseline:.2f} x baseline), {doc_size:,}-byte certificates")
        baseline_again = measure_verify_rate(1.0)
        figures["ed25519_verify_per_s_after"] = baseline_again
        say("log appends ...")
        figures["log_appends_per_s"] = bench_log_appends(100_000, work)
        say(f"  log appends: {figures['log_appends_per_s']:,.0f}/s")
        say("state tree updates (tree of 100,000 keys, batches of 1,000) ...")
        figures["tree_updates_per_s"] = bench_tree_updates(50_000, 100_000, work)
        say(f"  tree updates: {figures['tree_updates_per_s']:,.0f}/s")
        say(f"proofs in a ledger of {args.proof_docs:,} documents (filling it takes a while) ...")
        proofs = bench_proofs(args.proof_docs, work, say)
        figures["proof_docs"] = args.proof_docs
        figures |= {f"proof_{k}": v for k, v in proofs.items()}
        say(f"  inclusion + state proof: median {proofs['median_ms']:.3f} ms, p95 {proofs['p95_ms']:.3f} ms")
    say("")
    say(
        f"baseline {baseline:,.0f} verify/s | apply_block {rate:,.0f} docs/s = {rate / baseline:.2f} x baseline | "
        f"log {figures['log_appends_per_s']:,.0f} appends/s | tree {figures['tree_updates_per_s']:,.0f} updates/s | "
        f"proof {proofs['median_ms']:.3f} ms at {args.proof_docs:,} docs"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def sign_certificates(
    alliance: Alliance, zones: list[str], count: int, prefix: str, template: dict[str, Any]
) -> list[dict[str, Any]]:
    """``count`` certificates numbered ``PREFIX-0000000`` on, issued by the zones in turn,
    as submission items (``{"envelope": hex, "document": {...}}``)."""
    from ledger.documents import document_number

    items = []
    for i in range(count):
        document = with_number(template, "certificate_of_origin", f"{prefix}-{i:07d}")
        envelope, _ = alliance.issue(
            zones[i % len(zones)], "certificate_of_origin", document, document_number("certificate_of_origin", document)
        )
        items.append({"envelope": envelope.encode().hex(), "document": document})
    return items


def run_ingest(args: argparse.Namespace) -> int:
    """Offer ``--docs`` certificates at ``--rate`` to a fresh devnet; measure finality."""
    import asyncio

    from scripts.devnet import Devnet, create_devnet, free_port_block

    def say(text: str) -> None:
        print(text, flush=True)

    say("measuring raw Ed25519 verify/s (baseline) ...")
    baseline = measure_verify_rate()
    say(f"  baseline: {baseline:,.0f} verify/s")
    template = example_certificate()
    with tempfile.TemporaryDirectory(prefix="zoneledger-ingest-") as tmp:
        layout = create_devnet(Path(tmp), args.zones, free_port_block(args.zones), heartbeat_ms=5000)
        alliance = layout.alliance()
        say(f"signing {args.docs:,} certificates ...")
        items = sign_certificates(alliance, [z.zone_id for z in layout.zones], args.docs, "ING", template)
        batches = [items[i:i + args.batch] for i in range(0, len(items), args.batch)]
        # Clients wait for finality, so keeping the offered rate needs rate x latency in flight.
        clients = args.clients or max(8, int(args.rate * 4 / args.batch) + 1)
        devnet = Devnet(layout)
        devnet.start()
        try:
            devnet.wait_healthy()
            say(f"offering {args.docs:,} docs at {args.rate:,.0f}/s from {clients} clients in batches of {args.batch} ...")
            latencies, committed, elapsed = asyncio.run(
                _offer(batches, [z.url for z in layout.zones], args.rate, args.batch, clients)
            )
        finally:
            devnet.stop()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    rate = committed / elapsed if elapsed else 0.0
    figures = {
        "zones": args.zones, "docs": args.docs, "offered_rate": args.rate, "committed": committed,
        "committed_docs_per_s": rate, "latency_p50_s": pct(0.50), "latency_p95_s": pct(0.95),
        "latency_p99_s": pct(0.99), "ed25519_verify_per_s": baseline, "cores": os.cpu_count(),
    }
    say("")
    say(
        f"committed {committed:,}/{args.docs:,} docs in {elapsed:.1f} s = {rate:,.0f} docs/s final | "
        f"finality p50 {pct(0.5):.3f} s, p95 {pct(0.95):.3f} s, p99 {pct(0.99):.3f} s | "
        f"baseline {baseline:,.0f} verify/s | {args.zones} validators on {os.cpu_count()} cores"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


async def _offer(
    batches: list[list[dict[str, Any]]], urls: list[str], rate: float, batch_size: int, clients: int
) -> tuple[list[float], int, float]:
    """Send batches on a fixed schedule (rate), each waiting for finality; return per-doc latencies."""
    import asyncio

    import httpx

    latencies: list[float] = []
    committed = 0
    queue: asyncio.Queue[tuple[int, list[dict[str, Any]]]] = asyncio.Queue()
    start = time.perf_counter()
    interval = batch_size / rate

    async def producer() -> None:
        for i, batch in enumerate(batches):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put((i, batch))
        for _ in range(clients):
            await queue.put((-1, []))

    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)

    async def client(k: int) -> None:
        nonlocal committed
        async with httpx.AsyncClient(timeout=120.0, limits=limits) as http:
            while True:
                i, batch = await queue.get()
                if i < 0:
                    return
                sent = time.perf_counter()
                url = urls[i % len(urls)]
                try:
                    response = await http.post(f"{url}/v1/transactions", params={"wait": 60}, json={"transactions": batch})
                    results = response.json().get("results", [])
                except (httpx.HTTPError, ValueError):
                    continue
                took = time.perf_counter() - sent
                for result in results:
                    if result.get("status") == "committed":
                        committed += 1
                        latencies.append(took)

    await asyncio.gather(producer(), *(client(k) for k in range(clients)))
    return latencies, committed, time.perf_counter() - start


# --- auditor replay and proof bundles (zoneledger bench replay | verify) -------------


def build_replay_chain(alliance: Alliance, docs: int, block_size: int, path: Path, say: Callable[[str], None]) -> None:
    """A chain of ``docs`` ~5 KB certificates in blocks of ``block_size`` in a LevelDB at ``path``."""
    from ledger.store import LevelDBStore

    template = example_certificate()
    chain = alliance.chain(LevelDBStore(path))
    zones = [z.zone_id for z in alliance.genesis.zones]
    for start in range(0, docs, block_size):
        entries = []
        for i in range(start, min(start + block_size, docs)):
            number = f"REPLAY-{i:07d}"
            zone = zones[i % len(zones)]
            entries.append(alliance.issue(zone, "certificate_of_origin", with_number(template, "certificate_of_origin", number), number))
        alliance.commit_next(chain, entries)
        if (start // block_size) % 10 == 9:
            say(f"  built {start + len(entries):,} / {docs:,}")
    chain.store.close()


def _replay_alliance() -> Alliance:
    return make_alliance(4, label="bench", officers_per_zone=1)


def _build_replay_chain_elsewhere(docs: int, block_size: int, path: str) -> None:
    """In a process of its own (see :func:`run_replay`)."""
    build_replay_chain(_replay_alliance(), docs, block_size, Path(path), lambda text: print(text, flush=True))


def run_replay(args: argparse.Namespace) -> int:
    """``audit_chain`` over a LevelDB chain of realistic certificates, against the same-run baseline.

    The chain is built by another process, as a node would have built it: the replay
    then runs in a process that holds nothing but what the auditor itself reads, as
    ``zoneledger audit`` does (no decoded envelopes to reuse, no builder's heap for the
    workers it forks to copy).
    """
    from ledger.audit import AuditProgress, StoreSource, audit_chain

    def say(text: str) -> None:
        print(text, flush=True)

    cores = os.cpu_count() or 1
    workers = args.workers or cores
    alliance = _replay_alliance()
    with tempfile.TemporaryDirectory(prefix="zoneledger-replay-") as tmp:
        path = Path(tmp) / "ledger"
        say(f"building a chain of {args.docs:,} certificates ({len(jcs(example_certificate())):,} bytes each) "
            f"in blocks of {args.block_size} ...")
        builder = multiprocessing.get_context("spawn").Process(
            target=_build_replay_chain_elsewhere, args=(args.docs, args.block_size, str(path))
        )
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            say(f"building the chain failed (exit status {builder.exitcode})")
            return 1
        say("measuring raw Ed25519 verify/s (baseline) ...")
        baseline = measure_verify_rate()
        say(f"  baseline: {baseline:,.0f} verify/s per core, {cores} cores")

        def show(p: AuditProgress) -> None:
            say(f"  replayed {p.blocks_done:,}/{p.head:,} blocks, {p.docs_per_s:,.0f} docs/s")

        source = StoreSource(path)
        try:
            report = audit_chain(source, alliance.genesis, workers=workers, progress=show)
        finally:
            source.close()
        baseline_after = measure_verify_rate(1.0)
    if not report.passed:
        assert report.failure is not None
        say("\n".join(report.failure.describe()))
        return 1
    rate = report.docs_per_s
    ratio = rate / (cores * baseline)
    figures = {
        "docs": args.docs, "block_size": args.block_size, "workers": workers, "cores": cores,
        "replay_docs_per_s": rate, "ed25519_verify_per_s": baseline, "ed25519_verify_per_s_after": baseline_after,
        "ratio_replay_to_cores_x_verify": ratio, "elapsed_s": report.elapsed_s,
    }
    say("")
    say(
        f"replay {rate:,.0f} docs/s ({args.docs:,} docs, {workers} signature workers) | baseline {baseline:,.0f} "
        f"verify/s x {cores} cores | ratio replay / (cores x verify/s) = {ratio:.2f} (target >= 0.5)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def fill_synthetic(store: Any, start: int, stop: int, rng: random.Random) -> None:
    """Append synthetic leaves ``start..stop`` to the document log and matching keys to the
    state tree, directly (as ``bench_proofs`` does): a large ledger without the blocks."""
    from ledger.chain import LOG_PREFIX, STATE_PREFIX
    from ledger.merkle import MerkleLog
    from ledger.smt import StateTree
    from ledger.store import Overlay, WriteBatch

    per_batch = 10_000
    done = start
    while done < stop:
        n = min(per_batch, stop - done)
        batch = WriteBatch()
        overlay = Overlay(store, batch)
        log = MerkleLog(overlay, prefix=LOG_PREFIX)
        items = {}
        for i in range(done, done + n):
            log.append(batch, rng.randbytes(400))
            items[H(f"XX-SYNTH/S-{i}".encode())] = rng.randbytes(60)
        StateTree(overlay, prefix=STATE_PREFIX).update(batch, items)
        store.write(batch, sync=False)
        done += n


def run_verify(args: argparse.Namespace) -> int:
    """Bundle build time, size and offline verification time at growing ledger sizes."""
    from api.app import GZIP_LEVEL
    from ledger.encoding import compute_doc_hash
    from ledger.proofs import build_bundle, verify_bundle
    from ledger.store import LevelDBStore

    def say(text: str) -> None:
        print(text, flush=True)

    alliance = make_alliance(4, label="bench")
    template = example_certificate()
    rng = random.Random(5)
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoneledger-bundles-") as tmp:
        chain = alliance.chain(LevelDBStore(Path(tmp) / "ledger"))
        for size in sorted(args.sizes):
            # Synthetic leaves up to size - 2, then one real document chain (issue, amend) in
            # real blocks with real certificates, so the bundle is built and verified for real.
            say(f"filling the ledger to {size:,} documents ...")
            fill_synthetic(chain.store, chain.log().size, size - 2, rng)
            number = f"PROOF-{size}"
            original = with_number(template, "certificate_of_origin", number)
            amended = json.loads(json.dumps(original))
            amended["name"] = f"{original.get('name', 'Certificate')} (corrected)"
            doc_id = f"EG-TEDA/{number}"
            alliance.commit_next(chain, [alliance.issue("EG-TEDA", "certificate_of_origin", original, number)])
            alliance.commit_next(chain, [alliance.amend("EG-TEDA", doc_id, amended, compute_doc_hash(original), "name corrected")])
            build_times, verify_times = [], []
            bundle: dict[str, Any] = {}
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                bundle = build_bundle(chain, doc_id)
                build_times.append(time.perf_counter() - t0)
            copy_hash = compute_doc_hash(amended)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                verdict = verify_bundle(bundle, alliance.genesis, copy_hash=copy_hash)
                verify_times.append(time.perf_counter() - t0)
            if verdict.verdict != "valid":
                say(f"  bundle at {size:,} docs verified as {verdict.verdict!r}, expected 'valid'")
                return 1
            encoded = json.dumps(bundle, separators=(",", ":")).encode()
            row = {
                "ledger_docs": chain.log().size, "build_ms": statistics.median(build_times) * 1000,
                "bundle_bytes": len(encoded), "verify_ms": statistics.median(verify_times) * 1000,
                # What the API sends a client that accepts gzip (api.app.ClientGZipMiddleware).
                "bundle_gzip_bytes": len(gzip.compress(encoded, compresslevel=GZIP_LEVEL)),
            }
            rows.append(row)
            say(f"  {row['ledger_docs']:>9,} docs: build {row['build_ms']:.3f} ms, {row['bundle_bytes']:,} bytes "
                f"({row['bundle_gzip_bytes']:,} gzipped), verify {row['verify_ms']:.3f} ms (medians of {args.repeats})")
        chain.store.close()
    say("")
    say("| ledger documents | bundle build (median) | bundle JSON (no document) | as served, gzip | offline verify (median) |")
    say("|---|---|---|---|---|")
    for row in rows:
        say(f"| {row['ledger_docs']:,} | {row['build_ms']:.3f} ms | {row['bundle_bytes']:,} B | "
            f"{row['bundle_gzip_bytes']:,} B | {row['verify_ms']:.3f} ms |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
