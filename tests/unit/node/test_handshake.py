"""The peer handshake's server side: challenges, hellos, session tokens, and every refusal."""

from __future__ import annotations

import pytest

from ledger.encoding import cb, decode_cb
from ledger.errors import (
    NodeUnavailableError,
    PeerHelloError,
    PeerMalformedError,
    PeerSessionError,
    PeerSignatureError,
    PeerUnknownSenderError,
)
from ledger.keys import PEER_DOMAIN, PEER_HELLO_DOMAIN, SigningKey
from node.handshake import (
    CHALLENGE_TTL_MS,
    HELLO_MAX_BYTES,
    SESSION_TTL_MS,
    SPENT_PER_SENDER,
    TOKENS_PER_SENDER,
    Challenge,
    PeerHello,
    PeerSessions,
    SessionGrant,
    format_token,
    parse_token,
)

CHAIN = "handshake-test"
KEYS = [SigningKey.from_label(f"handshake validator {i}") for i in range(4)]
VALIDATORS = [k.public for k in KEYS]


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def node(index: int, clock: Clock, *, my_index: int | None = -1) -> PeerSessions:
    return PeerSessions(
        chain_id=CHAIN, validators=VALIDATORS, my_index=index if my_index == -1 else my_index, clock=clock
    )


def hello(server: PeerSessions, sender: int, receiver: int, *, key: SigningKey | None = None,
          chain: str = CHAIN) -> bytes:
    return PeerHello(chain, sender, receiver, server.issue_challenge()).sign(key or KEYS[sender])


def session(server: PeerSessions, sender: int) -> str:
    assert server.my_index is not None
    grant = server.accept_hello(hello(server, sender, server.my_index))
    return format_token(sender, grant.token)


def test_hello_opens_a_session_that_names_its_validator() -> None:
    clock = Clock()
    server = node(0, clock)
    data = hello(server, 2, 0)
    assert len(data) <= HELLO_MAX_BYTES // 2
    grant = server.accept_hello(data)
    assert len(grant.token) == 32 and grant.ttl_ms == SESSION_TTL_MS
    assert server.authenticate(format_token(2, grant.token)) == 2
    assert SessionGrant.decode(grant.encode()) == grant


def test_hello_signature_covers_the_hello_domain() -> None:
    server = node(0, Clock())
    h = PeerHello(CHAIN, 1, 0, server.issue_challenge())
    wire = decode_cb(h.sign(KEYS[1]))
    assert wire["sig"] == KEYS[1].sign(PEER_HELLO_DOMAIN, h.to_wire())
    # A peer-message signature over the same map is no hello.
    forged = cb({"hello": h.to_wire(), "sig": KEYS[1].sign(PEER_DOMAIN, h.to_wire())})
    with pytest.raises(PeerSignatureError):
        server.accept_hello(forged)


def test_hello_replayed_at_another_node_is_refused() -> None:
    clock = Clock()
    a, b = node(0, clock), node(3, clock)
    data = hello(a, 1, 0)
    # Node 3 refuses it by name: it is addressed to validator 0.
    with pytest.raises(PeerHelloError, match="receiver"):
        b.accept_hello(data)
    # A node that does not know its index still refuses it: the challenge is not its own.
    with pytest.raises(PeerHelloError, match="issued"):
        node(3, clock, my_index=None).accept_hello(data)
    # And a hello naming node 3 on node 0's challenge fails at node 3 the same way.
    with pytest.raises(PeerHelloError, match="issued"):
        b.accept_hello(PeerHello(CHAIN, 1, 3, a.issue_challenge()).sign(KEYS[1]))
    assert a.accept_hello(data).token


def test_hello_replayed_at_the_same_node_is_refused() -> None:
    server = node(0, Clock())
    data = hello(server, 1, 0)
    server.accept_hello(data)
    with pytest.raises(PeerHelloError, match="already answered"):
        server.accept_hello(data)


def test_hello_after_its_challenge_expired_is_refused() -> None:
    clock = Clock()
    server = node(0, clock)
    data = hello(server, 1, 0)
    clock.ms += CHALLENGE_TTL_MS
    with pytest.raises(PeerHelloError, match="expired"):
        server.accept_hello(data)


def test_token_expires() -> None:
    clock = Clock()
    server = node(0, clock)
    token = session(server, 1)
    clock.ms += SESSION_TTL_MS - 1
    assert server.authenticate(token) == 1
    clock.ms += 1
    with pytest.raises(PeerSessionError, match="unknown or expired"):
        server.authenticate(token)


def test_token_of_validator_1_does_not_pass_as_validator_2() -> None:
    server = node(0, Clock())
    token = session(server, 1)
    session(server, 2)
    _, raw = parse_token(token)
    with pytest.raises(PeerSessionError):
        server.authenticate(format_token(2, raw))


def test_a_restarted_node_knows_no_token() -> None:
    clock = Clock()
    token = session(node(0, clock), 1)
    with pytest.raises(PeerSessionError):
        node(0, clock).authenticate(token)


@pytest.mark.parametrize(
    "header",
    [None, "", "1", "1." + "ab" * 31, "x." + "ab" * 32, "1." + "zz" * 32, "-1." + "ab" * 32, "١." + "ab" * 32],
)
def test_missing_or_malformed_token_is_session_invalid(header: str | None) -> None:
    with pytest.raises(PeerSessionError) as caught:
        node(0, Clock()).authenticate(header)
    assert caught.value.code == "peer.session_invalid"


def test_bad_hellos_by_their_error() -> None:
    server = node(0, Clock())
    outsider = SigningKey.from_label("outsider")
    with pytest.raises(PeerSignatureError):
        server.accept_hello(hello(server, 1, 0, key=KEYS[2]))  # validator 2 claims to be 1
    with pytest.raises(PeerUnknownSenderError):
        server.accept_hello(hello(server, 4, 0, key=outsider))
    with pytest.raises(PeerMalformedError, match="expected chain"):
        server.accept_hello(hello(server, 1, 0, chain="other-chain"))
    with pytest.raises(PeerMalformedError, match="at most"):
        server.accept_hello(hello(server, 1, 0) + b"\x00" * HELLO_MAX_BYTES)
    with pytest.raises(PeerMalformedError):
        server.accept_hello(b"\xc1")
    tampered = bytearray(hello(server, 1, 0))
    # The key "challenge", a 2-byte bin header, 8 bytes of issue time: then the random bytes.
    tampered[tampered.index(b"challenge") + len("challenge") + 2 + 8] ^= 1
    with pytest.raises(PeerHelloError, match="issued"):
        server.accept_hello(bytes(tampered))


def test_sessions_are_bounded_per_validator() -> None:
    server = node(0, Clock())
    tokens = [session(server, 1) for _ in range(TOKENS_PER_SENDER + 2)]
    for old in tokens[:2]:
        with pytest.raises(PeerSessionError):
            server.authenticate(old)
    assert all(server.authenticate(t) == 1 for t in tokens[2:])
    assert server.session_count() == TOKENS_PER_SENDER


def test_hello_rate_is_bounded_per_validator_only() -> None:
    clock = Clock()
    server = node(0, clock)
    for _ in range(SPENT_PER_SENDER):
        session(server, 1)
    with pytest.raises(NodeUnavailableError):
        session(server, 1)
    assert server.authenticate(session(server, 2)) == 2  # the others are not held back
    clock.ms += CHALLENGE_TTL_MS
    session(server, 1)  # spent challenges are forgotten once they could not be used anyway


def test_challenge_reply_round_trip() -> None:
    value = node(0, Clock()).issue_challenge()
    assert Challenge.decode(Challenge(value).encode()).value == value
    with pytest.raises(PeerMalformedError):
        Challenge.decode(cb({"challenge": value[:-1]}))
