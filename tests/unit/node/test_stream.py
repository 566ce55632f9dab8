"""Peer streams: the signed key agreement, tagged frames, items, and the accepting loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import cb, decode_cb
from ledger.errors import (
    NotFoundError,
    PeerFrameError,
    PeerMalformedError,
    PeerSignatureError,
    PeerUnknownSenderError,
)
from ledger.keys import STREAM_ACCEPT_DOMAIN, STREAM_OPEN_DOMAIN, SigningKey
from node.peers import PeerMessage
from node.stream import (
    MESSAGE,
    REFUSAL,
    REPLY,
    REQUEST,
    FrameOpener,
    FrameSealer,
    StreamAccept,
    StreamDialer,
    StreamItem,
    StreamOpen,
    accept_stream,
    decode_items,
    encode_items,
)
from node.stream_server import CLOSE_POLICY_VIOLATION, InboundStreams, StreamClosedError, serve_stream

CHAIN = "zoneledger-stream-test"
KEYS = [SigningKey.from_label(f"stream-{i}") for i in range(4)]
VALIDATORS = [k.public for k in KEYS]


def handshake(dialer_index: int = 1, acceptor_index: int = 0) -> tuple[StreamDialer, bytes, Any]:
    dialer = StreamDialer(chain_id=CHAIN, sender=dialer_index, receiver=acceptor_index, key=KEYS[dialer_index])
    accept_bytes, keys = accept_stream(
        dialer.open_bytes, chain_id=CHAIN, validators=VALIDATORS, my_index=acceptor_index,
        session_sender=dialer_index, key=KEYS[acceptor_index],
    )
    return dialer, accept_bytes, keys


# --- the key agreement ---------------------------------------------------------------------


def test_both_ends_derive_the_same_keys_one_per_direction() -> None:
    dialer, accept_bytes, acceptor_keys = handshake()
    dialer_keys = dialer.finish(accept_bytes, VALIDATORS)
    assert dialer_keys.send == acceptor_keys.receive
    assert dialer_keys.receive == acceptor_keys.send
    assert dialer_keys.send != dialer_keys.receive


def test_each_stream_gets_fresh_keys() -> None:
    first, second = handshake(), handshake()
    assert first[0].finish(first[1], VALIDATORS) != second[0].finish(second[1], VALIDATORS)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"chain_id": "another-chain"}, PeerMalformedError, "expected chain"),
        ({"receiver": 2}, PeerSignatureError, "addressed to validator 0"),
        ({"sender": 3}, PeerSignatureError, "whose session this is"),
    ],
)
def test_acceptor_refuses_an_open_for_another_chain_node_or_session(
    change: dict[str, Any], error: type[Exception], match: str
) -> None:
    opening = StreamOpen(
        str(change.get("chain_id", CHAIN)), int(change.get("sender", 1)), int(change.get("receiver", 0)), bytes(range(32))
    )
    data = opening.sign(KEYS[opening.sender])
    with pytest.raises(error, match=match):
        accept_stream(data, chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=1, key=KEYS[0])


def test_acceptor_refuses_an_open_signed_by_another_key() -> None:
    data = StreamOpen(CHAIN, 1, 0, bytes(range(32))).sign(KEYS[2])
    with pytest.raises(PeerSignatureError, match="stream open from validator 1"):
        accept_stream(data, chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=1, key=KEYS[0])


def test_acceptor_refuses_an_unknown_validator_and_oversize_or_garbage() -> None:
    data = StreamOpen(CHAIN, 9, 0, bytes(range(32))).sign(KEYS[1])
    with pytest.raises(PeerUnknownSenderError):
        accept_stream(data, chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=9, key=KEYS[0])
    with pytest.raises(PeerMalformedError, match="at most"):
        accept_stream(b"\x00" * 600, chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=1, key=KEYS[0])
    with pytest.raises(PeerMalformedError):
        accept_stream(b"\xc1", chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=1, key=KEYS[0])


def test_a_low_order_ephemeral_key_is_refused() -> None:
    data = StreamOpen(CHAIN, 1, 0, bytes(32)).sign(KEYS[1])
    with pytest.raises(PeerSignatureError, match="key agreement"):
        accept_stream(data, chain_id=CHAIN, validators=VALIDATORS, my_index=0, session_sender=1, key=KEYS[0])


def test_dialer_refuses_an_accept_from_anyone_but_the_validator_it_dialed() -> None:
    dialer, accept_bytes, _ = handshake()
    accept = StreamAccept.from_wire(decode_cb(accept_bytes)["msg"])
    # A man in the middle answers with its own key: a validator's, but not the one dialed.
    forged = StreamAccept(CHAIN, 0, 1, accept.eph_open, accept.eph_accept).sign(KEYS[3])
    with pytest.raises(PeerSignatureError, match="stream accept from validator 0"):
        dialer.finish(forged, VALIDATORS)
    wrong_echo = StreamAccept(CHAIN, 0, 1, bytes(range(32)), accept.eph_accept).sign(KEYS[0])
    with pytest.raises(PeerSignatureError, match="ephemeral key echoed"):
        dialer.finish(wrong_echo, VALIDATORS)
    wrong_parties = StreamAccept(CHAIN, 2, 1, accept.eph_open, accept.eph_accept).sign(KEYS[2])
    with pytest.raises(PeerSignatureError, match="expected validator 0 answering 1"):
        dialer.finish(wrong_parties, VALIDATORS)


def test_handshake_domains_differ_so_an_open_cannot_pass_as_an_accept() -> None:
    assert STREAM_OPEN_DOMAIN != STREAM_ACCEPT_DOMAIN
    dialer, _, _ = handshake()
    with pytest.raises(PeerMalformedError):  # an open's fields are not an accept's
        dialer.finish(dialer.open_bytes, VALIDATORS)


# --- frames --------------------------------------------------------------------------------


def pair() -> tuple[FrameSealer, FrameOpener]:
    dialer, accept_bytes, acceptor = handshake()
    return FrameSealer(dialer.finish(accept_bytes, VALIDATORS).send), FrameOpener(acceptor.receive)


def test_frames_open_in_order() -> None:
    sealer, opener = pair()
    frames = [sealer.seal(bytes([i]) * i) for i in range(5)]
    assert [opener.open(f) for f in frames] == [bytes([i]) * i for i in range(5)]


@pytest.mark.parametrize("attack", ["tamper", "replay", "reorder", "drop", "truncate", "other_direction"])
def test_a_frame_altered_replayed_reordered_or_dropped_fails_its_tag(attack: str) -> None:
    dialer, accept_bytes, acceptor = handshake()
    keys = dialer.finish(accept_bytes, VALIDATORS)
    sealer, opener = FrameSealer(keys.send), FrameOpener(acceptor.receive)
    first, second = sealer.seal(b"vote-1"), sealer.seal(b"vote-2")
    if attack == "tamper":
        frames = [b"vote-X" + first[6:]]
    elif attack == "replay":
        opener.open(first)
        frames = [first]
    elif attack == "reorder" or attack == "drop":
        frames = [second]
    elif attack == "truncate":
        frames = [first[:10]]
    else:  # the acceptor's own key for its replies: a frame reflected back
        frames = [FrameSealer(acceptor.send).seal(b"vote-1")]
    with pytest.raises(PeerFrameError):
        for frame in frames:
            opener.open(frame)


# --- items ---------------------------------------------------------------------------------


items_strategy = st.lists(
    st.one_of(
        st.builds(lambda k, b: StreamItem(MESSAGE, 0, k, b), st.sampled_from(["vote", "proposal"]), st.binary(max_size=64)),
        st.builds(lambda i, k, b: StreamItem(REQUEST, i, k, b), st.integers(0, 2**64 - 1), st.just("status"), st.binary(max_size=64)),
        st.builds(lambda i, b: StreamItem(REPLY, i, "", b), st.integers(0, 2**64 - 1), st.binary(max_size=64)),
        st.builds(lambda i, c: StreamItem(REFUSAL, i, c, b"why"), st.integers(0, 2**64 - 1), st.just("request.not_found")),
    ),
    max_size=8,
)


@given(items_strategy)
def test_items_round_trip(items: list[StreamItem]) -> None:
    assert decode_items(encode_items(items)) == items


@pytest.mark.parametrize(
    "payload",
    [cb({"m": 1}), cb([["x", "vote", b""]]), cb([["m", "vote"]]), cb([[]]), cb([["q", -1, "status", b""]]),
     cb([["m", 5, b""]]), cb([[["m"], "vote", b""]]), b"\xc1"],
)
def test_malformed_items_are_refused(payload: bytes) -> None:
    with pytest.raises(PeerMalformedError):
        decode_items(payload)


# --- the accepting loop --------------------------------------------------------------------


class MemoryChannel:
    """One end of an in-memory WebSocket: what the test sends, what the server answered."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> bytes:
        data = await self.inbox.get()
        if data is None:
            raise StreamClosedError("closed by the test")
        return data

    async def send(self, data: bytes) -> None:
        await self.outbox.put(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[PeerMessage] = []

    async def __call__(self, message: PeerMessage) -> bytes | None:
        self.seen.append(message)
        if message.kind == "missing":
            raise NotFoundError("expected a known block, got none")
        if message.kind == "crash":
            raise RuntimeError("secret detail")
        if message.kind == "status":
            return b"head"
        return None


async def open_stream(channel: MemoryChannel, handler: Recorder, **kwargs: Any) -> tuple[asyncio.Task[None], Any, Any]:
    task = asyncio.create_task(serve_stream(
        channel, chain_id=CHAIN, validators=VALIDATORS, my_index=0, key=KEYS[0], sender=1, handler=handler,
        max_bytes=kwargs.get("max_bytes", 1 << 20),
    ))
    dialer = StreamDialer(chain_id=CHAIN, sender=1, receiver=0, key=KEYS[1])
    await channel.inbox.put(dialer.open_bytes)
    keys = dialer.finish(await channel.outbox.get(), VALIDATORS)
    return task, FrameSealer(keys.send), FrameOpener(keys.receive)


def test_server_delivers_messages_in_order_and_answers_requests() -> None:
    async def scenario() -> None:
        channel, handler = MemoryChannel(), Recorder()
        task, sealer, opener = await open_stream(channel, handler)
        await channel.inbox.put(sealer.seal(encode_items([
            StreamItem(MESSAGE, kind="vote", body=b"1"), StreamItem(MESSAGE, kind="vote", body=b"2"),
            StreamItem(REQUEST, 7, "status", b""), StreamItem(REQUEST, 8, "missing", b""),
            StreamItem(REQUEST, 9, "crash", b""), StreamItem(MESSAGE, kind="missing", body=b""),
        ])))
        answers = {}
        for _ in range(3):
            for item in decode_items(opener.open(await channel.outbox.get())):
                answers[item.request_id] = item
        assert answers[7] == StreamItem(REPLY, 7, "", b"head")
        assert (answers[8].tag, answers[8].kind) == (REFUSAL, "request.not_found")
        assert (answers[9].tag, answers[9].kind) == (REFUSAL, "node.error")
        assert b"secret" not in answers[9].body
        assert [m.body for m in handler.seen if m.kind == "vote"] == [b"1", b"2"]
        assert all(m.sender == 1 and m.chain_id == CHAIN for m in handler.seen)
        await channel.inbox.put(None)
        await task
        assert channel.closed is None  # a refused message or request does not end the stream

    asyncio.run(scenario())


@pytest.mark.parametrize("fault", ["bad_tag", "reply_from_dialer", "oversize_vote", "bad_kind"])
def test_server_closes_a_stream_that_breaks_the_rules(fault: str) -> None:
    async def scenario() -> None:
        channel, handler = MemoryChannel(), Recorder()
        task, sealer, _ = await open_stream(channel, handler)
        if fault == "bad_tag":
            frame = FrameSealer(b"k" * 32).seal(encode_items([StreamItem(MESSAGE, kind="vote", body=b"x")]))
        elif fault == "reply_from_dialer":
            frame = sealer.seal(encode_items([StreamItem(REPLY, 1, "", b"x")]))
        elif fault == "oversize_vote":
            frame = sealer.seal(encode_items([StreamItem(MESSAGE, kind="vote", body=b"v" * (20 << 10))]))
        else:
            frame = sealer.seal(encode_items([StreamItem(MESSAGE, kind="Vote!", body=b"")]))
        await channel.inbox.put(frame)
        await asyncio.wait_for(task, 5)
        assert channel.closed is not None and channel.closed[0] == CLOSE_POLICY_VIOLATION
        assert handler.seen == []

    asyncio.run(scenario())


def test_server_refuses_an_open_from_another_validator_than_the_session() -> None:
    async def scenario() -> None:
        channel = MemoryChannel()
        task = asyncio.create_task(serve_stream(
            channel, chain_id=CHAIN, validators=VALIDATORS, my_index=0, key=KEYS[0], sender=2, handler=Recorder(),
            max_bytes=1 << 20,
        ))
        await channel.inbox.put(StreamDialer(chain_id=CHAIN, sender=1, receiver=0, key=KEYS[1]).open_bytes)
        await asyncio.wait_for(task, 5)
        assert channel.closed == (CLOSE_POLICY_VIOLATION, "peer.signature_invalid")
        assert channel.outbox.empty()  # no accept, so no keys

    asyncio.run(scenario())


def test_inbound_streams_keep_at_most_two_per_validator() -> None:
    streams = InboundStreams()
    a, b, c = MemoryChannel(), MemoryChannel(), MemoryChannel()
    assert streams.admit(1, a) == [] and streams.admit(1, b) == []
    assert streams.admit(1, c) == [a]
    assert streams.admit(2, MemoryChannel()) == []
    assert streams.count() == 3
    streams.remove(1, b)
    assert streams.count() == 2
