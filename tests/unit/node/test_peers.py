"""PeerMessage: signing, and every reason decode_and_verify refuses bytes."""

from __future__ import annotations

import msgpack
import pytest

from ledger.blocks import PREVOTE, Vote
from ledger.encoding import cb, decode_cb
from ledger.errors import (
    PeerError,
    PeerMalformedError,
    PeerSenderMismatchError,
    PeerSignatureError,
    PeerUnknownSenderError,
)
from ledger.keys import PEER_DOMAIN, VOTE_DOMAIN, SigningKey
from node.peers import (
    BACKOFF_CAP_S,
    DEFAULT_MAX_BYTES,
    PEER_KIND_MAX_BYTES,
    PeerMessage,
    PeerNetwork,
    compute_backoff_s,
    compute_kind_limit,
    decode_and_verify,
)

CHAIN = "zoneledger-test"
KEYS = [SigningKey.from_label(f"peer-validator-{i}") for i in range(4)]
VALIDATORS = [key.public for key in KEYS]
MAX = 1 << 20


def make(sender: int = 1, kind: str = "vote", body: bytes = b"\x01\x02", chain_id: str = CHAIN) -> PeerMessage:
    return PeerMessage(chain_id=chain_id, sender=sender, kind=kind, time_ms=1_700_000_000_000, body=body)


def verify(data: bytes, *, chain_id: str = CHAIN, max_bytes: int = MAX) -> PeerMessage:
    return decode_and_verify(data, chain_id=chain_id, validators=VALIDATORS, max_bytes=max_bytes)


def resign(msg: dict[str, object], key: SigningKey) -> bytes:
    """Sign an arbitrary ``msg`` map the way PeerMessage.sign does (to build bad inputs)."""
    return cb({"msg": msg, "sig": key.sign(PEER_DOMAIN, msg)})


def test_sign_verify_round_trip() -> None:
    message = make(sender=2, kind="get_blocks", body=cb({"from": 5}))
    data = message.sign(KEYS[2])
    assert verify(data) == message
    assert decode_cb(data)["msg"] == message.to_wire()


def test_signature_covers_peer_domain() -> None:
    message = make()
    sig = decode_cb(message.sign(KEYS[1]))["sig"]
    assert sig == KEYS[1].sign(PEER_DOMAIN, message.to_wire())
    # The same payload under another domain must not pass as a peer message.
    forged = cb({"msg": message.to_wire(), "sig": KEYS[1].sign(VOTE_DOMAIN, message.to_wire())})
    with pytest.raises(PeerSignatureError):
        verify(forged)


def test_wrong_chain_refused_as_malformed() -> None:
    data = make(chain_id="other-chain").sign(KEYS[1])
    with pytest.raises(PeerMalformedError, match="expected chain 'zoneledger-test'"):
        verify(data)


def test_message_for_one_chain_refused_by_another() -> None:
    data = make().sign(KEYS[1])
    assert verify(data).chain_id == CHAIN
    with pytest.raises(PeerMalformedError, match="expected chain"):
        verify(data, chain_id="zoneledger-other")


def test_unknown_sender_index() -> None:
    outsider = SigningKey.from_label("not-a-validator")
    data = make(sender=len(VALIDATORS)).sign(outsider)
    with pytest.raises(PeerUnknownSenderError):
        verify(data)


def test_bad_signature() -> None:
    data = bytearray(make().sign(KEYS[1]))
    data[-1] ^= 0x01  # the signature is the last field of the sorted map
    with pytest.raises(PeerSignatureError):
        verify(bytes(data))


def test_tampered_body() -> None:
    wire = decode_cb(make(body=b"original").sign(KEYS[1]))
    wire["msg"]["body"] = b"tampered"
    with pytest.raises(PeerSignatureError):
        verify(cb(wire))


def test_key_of_another_validator_refused() -> None:
    # Validator 0 signs but claims to be validator 1.
    data = make(sender=1).sign(KEYS[0])
    with pytest.raises(PeerSignatureError):
        verify(data)


def test_non_validator_key_claiming_a_validator_index() -> None:
    outsider = SigningKey.from_label("not-a-validator")
    with pytest.raises(PeerSignatureError):
        verify(make(sender=0).sign(outsider))


def test_non_canonical_bytes_refused() -> None:
    message = make()
    wire = decode_cb(message.sign(KEYS[1]))
    # Same content, keys in insertion (unsorted) order: msgpack accepts, canonical decoding must not.
    unsorted = msgpack.packb({"sig": wire["sig"], "msg": wire["msg"]}, use_bin_type=True)
    with pytest.raises(PeerMalformedError):
        verify(unsorted)
    # A non-minimal integer for the sender.
    padded = cb(wire).replace(b"\xa6sender\x01", b"\xa6sender\xcd\x00\x01")
    assert padded != cb(wire)
    with pytest.raises(PeerMalformedError):
        verify(padded)
    with pytest.raises(PeerMalformedError):
        verify(cb(wire) + b"\x00")


def test_oversize_refused_before_decoding() -> None:
    data = make(body=b"x" * 2000).sign(KEYS[1])
    with pytest.raises(PeerMalformedError, match="expected at most 1000 bytes"):
        verify(data, max_bytes=1000)
    assert verify(data, max_bytes=len(data)).body == b"x" * 2000


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"sender": "1"},
        {"sender": -1},
        {"time_ms": -5},
        {"body": "text"},
        {"chain_id": b"zoneledger-test"},
        {"kind": "Vote"},
        {"kind": "a" * 33},
        {"kind": "has space"},
        {"kind": ""},
    ],
)
def test_wrong_fields_or_types_refused(change: dict[str, object]) -> None:
    msg: dict[str, object] = {**make().to_wire(), **change}
    with pytest.raises(PeerMalformedError):
        verify(resign(msg, KEYS[1]))


def test_missing_field_and_wrong_signature_shape() -> None:
    msg = make().to_wire()
    del msg["time_ms"]
    with pytest.raises(PeerMalformedError):
        verify(resign(msg, KEYS[1]))
    with pytest.raises(PeerMalformedError):
        verify(cb({"msg": make().to_wire(), "sig": b"\x00" * 63}))
    with pytest.raises(PeerMalformedError):
        verify(cb([make().to_wire(), b"\x00" * 64]))


def test_check_order_chain_before_sender_before_signature() -> None:
    outsider = SigningKey.from_label("not-a-validator")
    with pytest.raises(PeerMalformedError):
        verify(make(sender=99, chain_id="other").sign(outsider))
    with pytest.raises(PeerUnknownSenderError):
        verify(make(sender=99).sign(outsider))


def test_errors_share_the_peer_root() -> None:
    for cls in (PeerMalformedError, PeerUnknownSenderError, PeerSignatureError):
        assert issubclass(cls, PeerError)


def test_kind_validated_when_building() -> None:
    with pytest.raises(PeerMalformedError):
        make(kind="BAD")
    assert make(kind="a" * 32).kind == "a" * 32


def test_backoff_grows_and_is_capped() -> None:
    delays = [compute_backoff_s(n) for n in range(1, 20)]
    assert delays == sorted(delays)
    assert delays[0] < delays[3]
    assert max(delays) == BACKOFF_CAP_S


def test_network_refuses_itself_as_peer() -> None:
    with pytest.raises(ValueError, match="me"):
        PeerNetwork(chain_id=CHAIN, my_index=0, key=KEYS[0], peers={0: "http://127.0.0.1:1"}, validators=[])


def test_send_before_start_only_queues_and_drops_oldest() -> None:
    net = PeerNetwork(chain_id=CHAIN, my_index=0, key=KEYS[0], peers={1: "http://127.0.0.1:1"}, validators=[], queue_limit=3)
    for i in range(5):
        net.send(1, "vote", bytes([i]))
    stats = net.stats()[1]
    assert (stats.queued, stats.dropped, stats.sent, stats.up) == (3, 2, 0, False)
    with pytest.raises(ValueError):
        net.send(7, "vote", b"")


def test_declared_kind_and_session_sender_are_checked_before_the_signature() -> None:
    outsider = SigningKey.from_label("not-a-validator")
    data = make(sender=2, kind="txs").sign(outsider)  # a bad signature: the earlier checks must fire first
    with pytest.raises(PeerMalformedError, match="as the request declared"):
        decode_and_verify(data, chain_id=CHAIN, validators=VALIDATORS, max_bytes=MAX, kind="vote")
    with pytest.raises(PeerSenderMismatchError) as caught:
        decode_and_verify(data, chain_id=CHAIN, validators=VALIDATORS, max_bytes=MAX, session_sender=1)
    assert caught.value.code == "peer.sender_mismatch" and isinstance(caught.value, PeerUnknownSenderError)
    good = make(sender=1, kind="txs").sign(KEYS[1])
    assert decode_and_verify(good, chain_id=CHAIN, validators=VALIDATORS, max_bytes=MAX, session_sender=1, kind="txs")


def test_kind_limits_never_exceed_the_nodes_limit() -> None:
    assert compute_kind_limit("vote", DEFAULT_MAX_BYTES) == PEER_KIND_MAX_BYTES["vote"] < DEFAULT_MAX_BYTES
    assert compute_kind_limit("proposal", DEFAULT_MAX_BYTES) == DEFAULT_MAX_BYTES
    assert compute_kind_limit("commit", 1000) == 1000
    # A real vote, wrapped and signed, fits its kind's limit many times over.
    vote = Vote(CHAIN, PREVOTE, 10**9, 10**6, b"\xff" * 32, 3).sign(KEYS[3]).encode()
    assert 10 * len(make(kind="vote", body=vote).sign(KEYS[1])) < PEER_KIND_MAX_BYTES["vote"]
