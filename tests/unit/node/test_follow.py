"""The observer's follower (node/follow.py): it takes nothing on a validator's word.

The followed validators are played by :class:`FakeSources`, which answers ``status`` and
``get_blocks`` as the HTTP requester would, from a chain built with the alliance's keys;
each source can be honest, down, lie about its head, or serve a tampered block or
certificate. The follower applies blocks into its own chain through the validators'
catch-up code, so the assertions are on that chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ledger.blocks import Block, CommitCertificate
from ledger.chain import Chain
from ledger.encoding import cb, decode_cb, expect_map
from ledger.errors import PeerUnavailableError
from ledger.transition import ExecutedBlock
from node.follow import FANOUT, Follower, Source, compute_backoff_s, compute_order
from scripts.devkit import Alliance, load_example, make_alliance, with_number

HEIGHT = 5


def build_reference(alliance: Alliance, height: int = HEIGHT) -> Chain:
    """The validators' chain: ``height`` blocks, each registering one certificate."""
    chain = alliance.chain()
    template = load_example("coo_preferential.json")
    for h in range(1, height + 1):
        document = with_number(template, "certificate_of_origin", f"FOL-{h}")
        envelope, content = alliance.issue("EG-TEDA", "certificate_of_origin", document, f"FOL-{h}")
        alliance.commit_next(chain, [(envelope, content)])
    return chain


def served_items(chain: Chain) -> list[dict[str, bytes]]:
    items = []
    for h in range(1, chain.height + 1):
        raw = chain.get_block_bytes(h)
        commit = chain.get_commit(h)
        assert raw is not None and commit is not None
        items.append({"block": raw, "commit": commit.encode()})
    return items


class FakeSources:
    """``PeerRequester`` of the follower: each source's head and blocks, as scripted."""

    def __init__(self, behaviours: list[dict[str, Any]]) -> None:
        self.behaviours = behaviours
        self.asked: int | None = None
        self.calls: list[tuple[int, str]] = []

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        self.calls.append((index, kind))
        b = self.behaviours[index]
        if b.get("down"):
            raise PeerUnavailableError(f"source {index} is down")
        if kind == "status":
            return cb({"height": b["head"]})
        assert kind == "get_blocks"
        self.asked = index
        start = expect_map(decode_cb(body), "get_blocks")["from"]
        items: list[dict[str, bytes]] = b["items"]
        return cb(items[start - 1:start - 1 + 50])


def honest(chain: Chain) -> dict[str, Any]:
    return {"head": chain.height, "items": served_items(chain)}


def make_follower(
    alliance: Alliance, sources: FakeSources, count: int, clock: list[float] | None = None,
) -> tuple[Follower, list[ExecutedBlock]]:
    applied: list[ExecutedBlock] = []
    now = clock if clock is not None else [0.0]
    follower = Follower(
        alliance.chain(), [Source(i, f"http://v{i}") for i in range(count)], sources,
        on_applied=lambda executed, commit: applied.append(executed), clock=lambda: now[0],
    )
    return follower, applied


def follow(follower: Follower, rounds: int = 1) -> int:
    async def go() -> int:
        total = 0
        for _ in range(rounds):
            total += await follower.follow_once()
        return total

    return asyncio.run(go())


def tampered(items: list[dict[str, bytes]], height: int, change: Any) -> list[dict[str, bytes]]:
    out = [dict(item) for item in items]
    out[height - 1] = change(out[height - 1])
    return out


@pytest.fixture(scope="module")
def alliance() -> Alliance:
    return make_alliance(4)


@pytest.fixture(scope="module")
def reference(alliance: Alliance) -> Chain:
    return build_reference(alliance)


def test_follows_an_honest_validator_to_identical_block_hashes(alliance: Alliance, reference: Chain) -> None:
    follower, applied = make_follower(alliance, FakeSources([honest(reference)]), 1)
    assert follow(follower) == HEIGHT
    assert follower.chain.height == HEIGHT
    for h in range(1, HEIGHT + 1):
        ours, theirs = follower.chain.get_header(h), reference.get_header(h)
        assert ours is not None and theirs is not None and ours.block_hash == theirs.block_hash
    assert [e.block.height for e in applied] == list(range(1, HEIGHT + 1))
    assert follower.sources[0].blocks == HEIGHT and follower.sources[0].up


def weak_certificate(alliance: Alliance, item: dict[str, bytes]) -> dict[str, bytes]:
    """The block's real certificate cut to 2 of 4 signatures (a quorum needs 3)."""
    block = Block.decode(item["block"])
    commit = alliance.certify(block.block_hash, block.height, block.header.round, signers=[0, 1])
    return {"block": item["block"], "commit": commit.encode()}


def forged_signature(item: dict[str, bytes]) -> dict[str, bytes]:
    commit = CommitCertificate.decode(item["commit"])
    first = commit.signatures[0]
    bad = dataclasses.replace(first, sig=bytes(64))
    return {"block": item["block"], "commit": dataclasses.replace(commit, signatures=(bad, *commit.signatures[1:])).encode()}


def wrong_state_root(alliance: Alliance, item: dict[str, bytes]) -> dict[str, bytes]:
    """A block whose header claims another state root, certified by every validator:
    even a quorum's signature does not make the observer skip re-execution."""
    block = Block.decode(item["block"])
    header = dataclasses.replace(block.header, state_root=bytes(32))
    forged = dataclasses.replace(block, header=header)
    commit = alliance.certify(forged.block_hash, forged.height, header.round)
    return {"block": forged.encode(), "commit": commit.encode()}


@pytest.mark.parametrize("fault", ["too_few_signers", "forged_signature", "wrong_state_root"])
def test_refuses_a_bad_block_or_certificate_and_takes_it_from_the_next_validator(
    alliance: Alliance, reference: Chain, fault: str
) -> None:
    good = served_items(reference)
    change = {
        "too_few_signers": lambda item: weak_certificate(alliance, item),
        "forged_signature": forged_signature,
        "wrong_state_root": lambda item: wrong_state_root(alliance, item),
    }[fault]
    liar = {"head": HEIGHT, "items": tampered(good, 3, change)}
    sources = FakeSources([liar, honest(reference)])
    follower, _ = make_follower(alliance, sources, 2)
    follow(follower)
    assert follower.chain.height == HEIGHT
    header = follower.chain.get_header(3)
    expected = reference.get_header(3)
    assert header is not None and expected is not None and header.block_hash == expected.block_hash
    assert follower.sources[0].blocks == 2, "the liar's blocks up to the bad one are valid; nothing after"
    assert follower.sources[1].blocks == HEIGHT - 2
    assert follower.sources[0].failures == 1 and not follower.sources[0].up
    assert follower.sources[1].up


def test_refuses_every_block_when_the_only_validator_serves_a_weak_certificate(
    alliance: Alliance, reference: Chain
) -> None:
    good = served_items(reference)
    liar = {"head": HEIGHT, "items": tampered(good, 1, lambda item: weak_certificate(alliance, item))}
    follower, applied = make_follower(alliance, FakeSources([liar]), 1)
    assert follow(follower) == 0
    assert follower.chain.height == 0 and applied == []
    assert follower.sources[0].consecutive_failures == 1


def test_a_validator_claiming_a_head_it_cannot_serve_is_judged_and_rested(alliance: Alliance, reference: Chain) -> None:
    """Claims height 1000 but holds 5: the follower stops at 5 and does not spin on it."""
    boaster = {"head": 1000, "items": served_items(reference)}
    clock = [100.0]
    sources = FakeSources([boaster])
    follower, _ = make_follower(alliance, sources, 1, clock)
    follow(follower)
    assert follower.chain.height == HEIGHT
    source = follower.sources[0]
    assert source.head == 1000 and source.consecutive_failures == 1
    assert source.retry_at == pytest.approx(100.0 + compute_backoff_s(1))
    calls = len(sources.calls)
    follow(follower)  # resting: not asked again before retry_at
    assert len(sources.calls) == calls
    clock[0] = source.retry_at
    follow(follower)
    assert len(sources.calls) > calls


def test_a_validator_reporting_an_old_head_does_not_hold_the_observer_back(alliance: Alliance, reference: Chain) -> None:
    stale_chain = alliance.chain()
    for item in served_items(reference)[:2]:
        from ledger.transition import apply_block

        apply_block(stale_chain, Block.decode(item["block"]), CommitCertificate.decode(item["commit"]))
    sources = FakeSources([honest(stale_chain), honest(reference)])
    follower, _ = make_follower(alliance, sources, 2)
    follow(follower)
    assert follower.chain.height == HEIGHT
    assert follower.sources[0].up, "behind is not lying: it claimed what it had"


def test_recovers_from_an_unreachable_validator(alliance: Alliance, reference: Chain) -> None:
    behaviours = [{"down": True, **honest(reference)}, honest(reference)]
    sources = FakeSources(behaviours)
    follower, _ = make_follower(alliance, sources, 2)
    follow(follower)
    assert follower.chain.height == HEIGHT, "the next validator in line served"
    assert follower.sources[0].consecutive_failures == 1 and not follower.sources[0].up
    assert follower.sources[1].blocks == HEIGHT


def test_resumes_when_the_only_validator_comes_back(alliance: Alliance, reference: Chain) -> None:
    behaviours = [{"down": True, **honest(reference)}]
    clock = [0.0]
    follower, _ = make_follower(alliance, FakeSources(behaviours), 1, clock)
    follow(follower)
    assert follower.chain.height == 0
    behaviours[0]["down"] = False
    clock[0] += compute_backoff_s(1)
    follow(follower)
    assert follower.chain.height == HEIGHT
    assert follower.sources[0].up and follower.sources[0].consecutive_failures == 0


def test_order_puts_failing_sources_last_rests_them_and_spreads_observers() -> None:
    sources = [Source(i, f"http://v{i}") for i in range(4)]
    assert compute_order(sources, 0.0, 0, None) == [0, 1, 2, 3]
    assert compute_order(sources, 0.0, 2, None) == [2, 3, 0, 1]
    assert compute_order(sources, 0.0, 0, FANOUT) == [0, 1][:FANOUT]
    sources[0].on_failure(10.0)
    assert compute_order(sources, 10.0, 0, None) == [1, 2, 3]
    assert compute_order(sources, 10.0 + compute_backoff_s(1), 0, None) == [1, 2, 3, 0]
    assert compute_backoff_s(1) < compute_backoff_s(2) <= compute_backoff_s(50)
