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
        if not self.validator_key_passphrase_env:
            return None
        value = os.environ.get(self.validator_key_passphrase_env)
        if value is None:
            raise ConfigError(f"expected the passphrase in ${self.validator_key_passphrase_env}, it is not set")
        return value.encode()

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        source = Path(path)
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {source}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        return cls.from_dict(raw, base=source.parent)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: Path = Path(".")) -> NodeConfig:
        def path_of(name: str) -> Path:
            value = raw.get(name)
            if not isinstance(value, str):
                raise ConfigError(f"{name}: expected a path")
            p = Path(value)
            return p if p.is_absolute() else base / p

        listen = raw.get("listen", "127.0.0.1:26600")
        host, _, port = str(listen).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"listen: expected HOST:PORT, got {listen!r}")
        peers_raw = raw.get("peers", {})
        if not isinstance(peers_raw, dict):
            raise ConfigError("peers: expected a table of index = URL")
        try:
            peers = {int(k): str(v).rstrip("/") for k, v in peers_raw.items()}
        except ValueError as exc:
            raise ConfigError("peers: keys must be validator indexes") from exc
        tls = None
        if "tls" in raw:
            t = raw["tls"]
            if not isinstance(t, dict):
                raise ConfigError("tls: expected a table with cert, key and ca")
            tls = TlsSettings(*(path_of_in(t, name, base) for name in ("cert", "key", "ca")))
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
            data_dir=path_of("data_dir"),
            genesis=path_of("genesis"),
            validator_key=path_of("validator_key"),
            listen_host=host,
            listen_port=int(port),
            peers=peers,
            validator_key_passphrase_env=raw.get("validator_key_passphrase_env"),
            tls=tls,
            **ints,
        )


def path_of_in(table: dict[str, Any], name: str, base: Path) -> Path:
    value = table.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"tls.{name}: expected a path")
    p = Path(value)
    return p if p.is_absolute() else base / p


def render_config(config: NodeConfig) -> str:
    """TOML text for ``config`` (used by the devnet to write each node's file)."""
    lines = [
        f'data_dir = "{config.data_dir}"',
        f'genesis = "{config.genesis}"',
        f'validator_key = "{config.validator_key}"',
        f'listen = "{config.listen_host}:{config.listen_port}"',
        f"heartbeat_ms = {config.heartbeat_ms}",
        f"mempool_max_txs = {config.mempool_max_txs}",
        f"max_body_bytes = {config.max_body_bytes}",
        "",
        "[peers]",
        *(f'{index} = "{url}"' for index, url in sorted(config.peers.items())),
    ]
    if config.tls:
        lines += ["", "[tls]", f'cert = "{config.tls.cert}"', f'key = "{config.tls.key}"', f'ca = "{config.tls.ca}"']
    return "\n".join(lines) + "\n"
