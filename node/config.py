"""Node settings: the third tier of configuration (protocol constants live in code,
chain constants in genesis, and these per-node settings in a TOML file).

Example ``node.toml``::

    data_dir = "devnet/EG-TEDA"
    genesis = "devnet/genesis.json"
    validator_key = "devnet/EG-TEDA/validator.pem"
    listen = "127.0.0.1:26600"
    heartbeat_ms = 10000

    [peers]            # validator index -> base URL (this node's own entry is ignored)
    0 = "http://127.0.0.1:26600"
    1 = "http://127.0.0.1:26601"

    [tls]              # optional: serve and dial HTTPS
    cert = "tls/node.pem"
    key = "tls/node.key"
    ca = "tls/ca.pem"

The validator key's passphrase, when it has one, comes from the environment variable
named by ``validator_key_passphrase_env``; it never appears in the file.

An observer (``role = "observer"``, :class:`ObserverConfig`) holds no validator key: it
follows the validators named in ``follow`` with signed member requests, made with
``member_key`` (an auditor's or an officer's key)::

    role = "observer"
    data_dir = "devnet/observer-1"
    genesis = "devnet/genesis.json"
    member_key = "devnet/auditor.pem"
    node_id = "observer-1"          # what member requests to this observer are addressed to
    listen = "127.0.0.1:26700"
    follow = ["http://127.0.0.1:26600", "http://127.0.0.1:26601"]

:func:`load_config` reads either kind.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError
from ledger.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MEMPOOL_MAX_BYTES


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """HTTPS for the API and the peer transport."""

    cert: Path
    """This node's certificate (PEM)."""
    key: Path
    """Its private key (PEM)."""
    ca: Path
    """The CA that signs every node's certificate; peers are verified against it."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One validator's settings."""

    data_dir: Path
    """LevelDB store, write-ahead log and evidence live here."""
    genesis: Path
    """The alliance's genesis file."""
    validator_key: Path
    """This zone's validator key (PKCS#8 PEM)."""
    listen_host: str = "127.0.0.1"
    """Interface the HTTP server binds."""
    listen_port: int = 26600
    """Port of the API and the peer endpoints."""
    peers: dict[int, str] = field(default_factory=dict)
    """Validator index -> base URL of every validator (own entry ignored)."""
    heartbeat_ms: int = 10_000
    """Longest gap between blocks while no transactions arrive."""
    mempool_max_txs: int = 50_000
    """Pending transactions before submissions get 503."""
    mempool_max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    """Pending bytes before submissions get 503."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """The operator's cap on HTTP request bodies over every route (413 beyond); each
    route's own limit comes from :mod:`ledger.limits` and the smaller one applies."""
    max_block_txs: int = 1000
    """This node's cap on the blocks it proposes (at most genesis ``max_block_txs``):
    smaller blocks keep heights short so that commits pipeline."""
    rebroadcast_ms: int = 2000
    """Re-send own latest consensus messages while a round lasts this long."""
    validator_key_passphrase_env: str | None = None
    """Environment variable holding the key's passphrase."""
    tls: TlsSettings | None = None
    """HTTPS settings, when enabled."""

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def passphrase(self) -> bytes | None:
        return read_passphrase(self.validator_key_passphrase_env)

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        source = Path(path)
        return cls.from_dict(read_toml(source), base=source.parent)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path = Path(".")) -> NodeConfig:
        host, port = parse_listen(raw.get("listen", "127.0.0.1:26600"))
        peers_raw = raw.get("peers", {})
        if not isinstance(peers_raw, dict):
            raise ConfigError("peers: expected a table of index = URL")
        try:
            peers = {int(k): str(v).rstrip("/") for k, v in peers_raw.items()}
        except ValueError as exc:
            raise ConfigError("peers: keys must be validator indexes") from exc
        tls = parse_tls(raw, base)
        known_ints = (
            "heartbeat_ms", "mempool_max_txs", "mempool_max_bytes", "max_body_bytes", "rebroadcast_ms", "max_block_txs",
        )
        ints = {}
        for name in known_ints:
            if name in raw:
                value = raw[name]
                if type(value) is not int or value <= 0:
                    raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
                ints[name] = value
        return cls(
            data_dir=path_in(raw, "data_dir", base),
            genesis=path_in(raw, "genesis", base),
            validator_key=path_in(raw, "validator_key", base),
            listen_host=host,
            listen_port=port,
            peers=peers,
            validator_key_passphrase_env=raw.get("validator_key_passphrase_env"),
            tls=tls,
            **ints,
        )


ROLE_VALIDATOR = "validator"
ROLE_OBSERVER = "observer"


@dataclass(frozen=True, slots=True)
class ObserverConfig:
    """One observer's settings: a non-voting node that follows the validators."""

    data_dir: Path
    """LevelDB store (and the empty evidence log) live here."""
    genesis: Path
    """The alliance's genesis file."""
    member_key: Path
    """A member's key (auditor or officer, PKCS#8 PEM): block requests are signed with it."""
    follow: tuple[str, ...]
    """Base URLs of the validators to fetch blocks from, tried in this order."""
    node_id: str
    """This observer's name: member requests to it are addressed to it (``X-ZL-Node``)."""
    listen_host: str = "127.0.0.1"
    listen_port: int = 26700
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """The operator's cap on HTTP request bodies over every route."""
    member_key_passphrase_env: str | None = None
    """Environment variable holding the member key's passphrase."""
    tls: TlsSettings | None = None
    """HTTPS for this observer's API and for the validators it follows (their CA)."""

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def passphrase(self) -> bytes | None:
        return read_passphrase(self.member_key_passphrase_env)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path = Path(".")) -> ObserverConfig:
        if "validator_key" in raw:
            raise ConfigError("validator_key: an observer holds no validator key (it never votes); remove it")
        host, port = parse_listen(raw.get("listen", "127.0.0.1:26700"))
        follow = raw.get("follow")
        if not isinstance(follow, list) or not follow or not all(isinstance(u, str) and u for u in follow):
            raise ConfigError("follow: expected a non-empty list of validator base URLs")
        node_id = raw.get("node_id", f"observer-{port}")
        if not isinstance(node_id, str) or not node_id or not node_id.isprintable() or len(node_id) > 64:
            raise ConfigError(f"node_id: expected a short printable name, got {node_id!r}")
        max_body = raw.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        if type(max_body) is not int or max_body <= 0:
            raise ConfigError(f"max_body_bytes: expected a positive integer, got {max_body!r}")
        tls = parse_tls(raw, base)
        return cls(
            data_dir=path_in(raw, "data_dir", base),
            genesis=path_in(raw, "genesis", base),
            member_key=path_in(raw, "member_key", base),
            follow=tuple(u.rstrip("/") for u in follow),
            node_id=node_id,
            listen_host=host,
            listen_port=port,
            max_body_bytes=max_body,
            member_key_passphrase_env=raw.get("member_key_passphrase_env"),
            tls=tls,
        )


def parse_listen(listen: Any) -> tuple[str, int]:
    host, _, port = str(listen).rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"listen: expected HOST:PORT, got {listen!r}")
    return host, int(port)


def path_in(table: dict[str, Any], name: str, base: Path, prefix: str = "") -> Path:
    """``table[name]`` as a path, relative to ``base`` unless absolute (``prefix`` names
    the table in the error, as ``tls.``)."""
    value = table.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"{prefix}{name}: expected a path")
    p = Path(value)
    return p if p.is_absolute() else base / p


def parse_tls(raw: dict[str, Any], base: Path) -> TlsSettings | None:
    if "tls" not in raw:
        return None
    table = raw["tls"]
    if not isinstance(table, dict):
        raise ConfigError("tls: expected a table with cert, key and ca")
    return TlsSettings(*(path_in(table, name, base, "tls.") for name in ("cert", "key", "ca")))


def read_toml(source: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def read_passphrase(env_name: str | None) -> bytes | None:
    """The key passphrase from the environment variable ``env_name`` names, if any."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(f"expected the passphrase in ${env_name}, it is not set")
    return value.encode()


def load_config(path: str | Path) -> NodeConfig | ObserverConfig:
    """A validator's or an observer's settings, by the file's ``role`` (default validator)."""
    source = Path(path)
    raw = read_toml(source)
    role = raw.pop("role", ROLE_VALIDATOR)
    if role == ROLE_OBSERVER:
        return ObserverConfig.from_dict(raw, base=source.parent)
    if role != ROLE_VALIDATOR:
        raise ConfigError(f"role: expected {ROLE_VALIDATOR!r} or {ROLE_OBSERVER!r}, got {role!r}")
    return NodeConfig.from_dict(raw, base=source.parent)


def render_observer_config(config: ObserverConfig) -> str:
    """TOML text for an observer's ``config`` (``scripts/observers.py`` writes these)."""
    lines = [
        f'role = "{ROLE_OBSERVER}"',
        f'data_dir = "{config.data_dir}"',
        f'genesis = "{config.genesis}"',
        f'member_key = "{config.member_key}"',
        f'node_id = "{config.node_id}"',
        f'listen = "{config.listen_host}:{config.listen_port}"',
        f"max_body_bytes = {config.max_body_bytes}",
        "follow = [" + ", ".join(f'"{url}"' for url in config.follow) + "]",
    ]
    if config.tls:
        lines += ["", "[tls]", f'cert = "{config.tls.cert}"', f'key = "{config.tls.key}"', f'ca = "{config.tls.ca}"']
    return "\n".join(lines) + "\n"


def render_config(config: NodeConfig) -> str:
    """TOML text for ``config`` (used by the devnet to write each node's file)."""
    lines = [
        f'data_dir = "{config.data_dir}"',
        f'genesis = "{config.genesis}"',
        f'validator_key = "{config.validator_key}"',
        f'listen = "{config.listen_host}:{config.listen_port}"',
        f"heartbeat_ms = {config.heartbeat_ms}",
        f"rebroadcast_ms = {config.rebroadcast_ms}",
        f"mempool_max_txs = {config.mempool_max_txs}",
        f"max_body_bytes = {config.max_body_bytes}",
        "",
        "[peers]",
        *(f'{index} = "{url}"' for index, url in sorted(config.peers.items())),
    ]
    if config.tls:
        lines += ["", "[tls]", f'cert = "{config.tls.cert}"', f'key = "{config.tls.key}"', f'ca = "{config.tls.ca}"']
    return "\n".join(lines) + "\n"
