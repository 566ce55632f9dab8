"""Canonical bytes, hashing and JSON canonicalisation (DESIGN §2).

``cb(x)`` is the one canonical MessagePack form: maps with ``str`` keys sorted by their
UTF-8 bytes, integers in their smallest form, ``bytes`` as bin, ``str`` as str, no
floats and no extension types. ``decode_cb`` accepts exactly the bytes ``cb`` would
produce and raises a specific :mod:`ledger.errors` class for anything else.

The decoder has a fast path (the C msgpack decoder plus a re-encode comparison) and
a slow, byte-by-byte reader used only to name what is wrong with rejected input.

Documents are hashed over their RFC 8785 (JCS) form. For the JSON this ledger
accepts (no floats, integers below 2^53) JCS coincides with a sorted, compact
``json.dumps`` except for key order between astral and high-BMP characters; the fast
path is taken only when that cannot arise, and the maintained ``rfc8785`` package
handles everything else. A property test keeps the two in agreement.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any, NoReturn

import msgpack
import orjson
import rfc8785

from ledger.compiled import load_compiled
from ledger.errors import (
    DuplicateKeyError,
    EncodingError,
    FloatError,
    JsonError,
    NestingTooDeepError,
    NonCanonicalError,
    NonMinimalIntegerError,
    TrailingBytesError,
    TruncatedError,
    UnsortedKeysError,
    UnsupportedTypeError,
    WrongTypeError,
)
from ledger.limits import MAX_ECHO_CHARS, MAX_NESTING_DEPTH

HASH_SIZE = 32
ZERO_HASH = bytes(32)
MAX_SAFE_JSON_INTEGER = 2**53 - 1
_UINT64_MAX = 2**64 - 1
_INT64_MIN = -(2**63)


def _sha256_hashlib(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _select_sha256() -> Callable[[bytes], bytes]:
    # The state tree's C helper carries SHA-256 on the CPU's SHA instructions: for the
    # 32- to 300-byte inputs that make up most hashing here it costs a quarter of
    # hashlib's call (whose object set-up dominates), and a 4.6 KB document a fifth
    # less. Without those instructions its portable C is no match for OpenSSL's.
    native = load_compiled("_smtpage")
    if native is None or not native.SHA_EXTENSIONS:  # pragma: no cover - CPU or build without them
        return _sha256_hashlib
    sha256: Callable[[bytes], bytes] = native.sha256
    return sha256


H: Callable[[bytes], bytes] = _select_sha256()
"""SHA-256, the only hash of the protocol (the contract calls it ``H``)."""


# --- canonical MessagePack -------------------------------------------------


def _canonical(value: Any) -> Any:
    """Return ``value`` with every map's keys in UTF-8 byte order, checking types."""
    kind = type(value)
    if kind is dict:
        out = {}
        # Code point order equals UTF-8 byte order, so sorted() on str is correct.
        for key in sorted(value):
            if type(key) is not str:
                raise UnsupportedTypeError(
                    f"expected str map keys, got {type(key).__name__}"
                )
            out[key] = _canonical(value[key])
        return out
    if kind is list or kind is tuple:
        return [_canonical(item) for item in value]
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        if value > _UINT64_MAX or value < _INT64_MIN:
            raise UnsupportedTypeError(f"expected an integer within 64 bits, got {value}")
        return value
    if kind is float:
        raise FloatError("expected no floats, got a float")
    raise UnsupportedTypeError(f"expected a canonical type, got {kind.__name__}")


def cb(value: Any) -> bytes:
    """Canonical bytes of ``value`` (DESIGN §2)."""
    try:
        packed: bytes = msgpack.packb(_canonical(value), use_bin_type=True)
    except UnicodeEncodeError as exc:
        raise EncodingError(f"expected valid Unicode text, got {exc.reason}") from exc
    return packed


def _is_sorted_and_plain(value: Any) -> bool:
    """Every map has str keys in UTF-8 order, and nothing is a float (decoder fast path)."""
    kind = type(value)
    if kind is dict:
        previous: str | None = None
        for key, item in value.items():
            if type(key) is not str or (previous is not None and key <= previous):
                return False
            previous = key
            if not _is_sorted_and_plain(item):
                return False
        return True
    if kind is list:
        return all(_is_sorted_and_plain(item) for item in value)
    return kind is not float


def _reject_ext(code: int, data: bytes) -> Any:
    raise UnsupportedTypeError(f"expected no extension types, got ext type {code}")


MAX_CB_DEPTH = MAX_NESTING_DEPTH
"""Containers nest at most this deep in canonical bytes (a bound on decoding work; no
format of the ledger comes near it)."""


def decode_cb(data: bytes) -> Any:
    """Decode canonical bytes; raise a specific :class:`EncodingError` if not canonical.

    The compiled decoder reads canonical bytes in one pass; on anything else the
    Python reader names the fault. :func:`decode_cb_reference` is the specification.
    """
    if type(data) is not bytes:
        data = bytes(data)
    try:
        return _decode_native(data)
    except ValueError:
        pass
    _raise_encoding_fault(data)


def decode_cb_reference(data: bytes) -> Any:
    """:func:`decode_cb` through msgpack's decoder and the canonical checks, for tests."""
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, ext_hook=_reject_ext,
            timestamp=0,
        )
    except EncodingError:
        raise
    except Exception:  # noqa: BLE001 - msgpack raises many types; the reader names the fault
        value = None
    else:
        # The C packer writes maps in the order they were decoded, so equal bytes plus
        # sorted keys everywhere means canonical, without rebuilding every map.
        if (
            not _is_nested_deeper(value, MAX_CB_DEPTH)
            and _is_sorted_and_plain(value)
            and msgpack.packb(value, use_bin_type=True) == data
        ):
            return value
    _raise_encoding_fault(data)


def _raise_encoding_fault(data: bytes) -> NoReturn:
    """Name why ``data`` is not canonical bytes (the reader raises the precise error)."""
    _CanonicalReader(data).read_document()
    raise NonCanonicalError("expected canonical bytes, got a different encoding")


def _is_nested_deeper(value: Any, limit: int) -> bool:
    """Whether some value inside ``value`` sits deeper than ``limit`` (the outermost at 0)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if type(item) is dict:
            stack.extend((child, depth + 1) for child in item.values())
        elif type(item) is list:
            stack.extend((child, depth + 1) for child in item)
    return False


class _CanonicalReader:
    """Byte-by-byte MessagePack reader that raises the precise canonicality error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = -1  # of the value being read: 0 for the outermost

    def read_document(self) -> Any:
        value = self.read()
        if self.pos != len(self.data):
            raise TrailingBytesError(
                f"expected end of input at byte {self.pos}, got {len(self.data) - self.pos} more bytes"
            )
        return value

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise TruncatedError(f"expected {count} more bytes at byte {self.pos}, input ends")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def length(self, size: int, minimum: int, what: str, at: int) -> int:
        count = self.uint(size)
        if count < minimum:
            raise NonMinimalIntegerError(
                f"expected the shortest {what} header at byte {at}, got a {size}-byte length {count}"
            )
        return count

    def read(self) -> Any:
        self.depth += 1
        if self.depth > MAX_CB_DEPTH:
            raise NestingTooDeepError(f"expected containers nested at most {MAX_CB_DEPTH} deep, got deeper at byte {self.pos}")
        value = self.read_value()
        self.depth -= 1
        return value

    def read_value(self) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per MessagePack type
        at = self.pos
        tag = self.take(1)[0]
        if tag <= 0x7F:
            return tag
        if tag >= 0xE0:
            return tag - 0x100
        if 0x80 <= tag <= 0x8F:
            return self.read_map(tag & 0x0F, at)
        if 0x90 <= tag <= 0x9F:
            return [self.read() for _ in range(tag & 0x0F)]
        if 0xA0 <= tag <= 0xBF:
            return self.read_str(tag & 0x1F, at)
        if tag == 0xC0:
            return None
        if tag == 0xC2:
            return False
        if tag == 0xC3:
            return True
        if tag in (0xC4, 0xC5, 0xC6):
            size = {0xC4: 1, 0xC5: 2, 0xC6: 4}[tag]
            count = self.length(size, {1: 0, 2: 0x100, 4: 0x10000}[size], "bin", at)
            return self.take(count)
        if tag in (0xCA, 0xCB):
            raise FloatError(f"expected no floats, got a float at byte {at}")
        if tag in (0xCC, 0xCD, 0xCE, 0xCF):
            size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[tag]
            value = self.uint(size)
            smallest = {1: 0x80, 2: 0x100, 4: 0x10000, 8: 0x100000000}[size]
            if value < smallest:
                raise NonMinimalIntegerError(
                    f"expected the smallest form of {value} at byte {at}, got a {size}-byte unsigned integer"
                )
            return value
        if tag in (0xD0, 0xD1, 0xD2, 0xD3):
            size = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}[tag]
            value = int.from_bytes(self.take(size), "big", signed=True)
            smallest = {1: -0x20, 2: -0x80, 4: -0x8000, 8: -0x80000000}[size]
            if value >= smallest:
                raise NonMinimalIntegerError(
                    f"expected the smallest form of {value} at byte {at}, got a {size}-byte signed integer"
                )
            return value
        if tag in (0xD9, 0xDA, 0xDB):
            size = {0xD9: 1, 0xDA: 2, 0xDB: 4}[tag]
            count = self.length(size, {1: 32, 2: 0x100, 4: 0x10000}[size], "str", at)
            return self.read_str(count, at)
        if tag in (0xDC, 0xDD):
            size = {0xDC: 2, 0xDD: 4}[tag]
            count = self.length(size, {2: 16, 4: 0x10000}[size], "array", at)
            return [self.read() for _ in range(count)]
        if tag in (0xDE, 0xDF):
            size = {0xDE: 2, 0xDF: 4}[tag]
            count = self.length(size, {2: 16, 4: 0x10000}[size], "map", at)
            return self.read_map(count, at)
        if tag in (0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
            raise UnsupportedTypeError(f"expected no extension types, got ext at byte {at}")
        raise UnsupportedTypeError(f"expected a MessagePack type, got byte 0x{tag:02x} at {at}")

    def read_str(self, count: int, at: int) -> str:
        raw = self.take(count)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"expected UTF-8 text at byte {at}, got invalid bytes") from exc

    def read_map(self, count: int, at: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        previous: bytes | None = None
        for _ in range(count):
            key_at = self.pos
            key = self.read()
            if type(key) is not str:
                raise UnsupportedTypeError(
                    f"expected str map keys at byte {key_at}, got {type(key).__name__}"
                )
            encoded = key.encode("utf-8")
            if previous is not None:
                if encoded == previous:
                    raise DuplicateKeyError(f"expected unique map keys, got {bounded_repr(key)} twice")
                if encoded < previous:
                    raise UnsortedKeysError(
                        f"expected map keys in byte order, got {bounded_repr(key)} after "
                        f"{bounded_repr(previous.decode())}"
                    )
            previous = encoded
            out[key] = self.read()
        return out


# --- typed access, for decoders of wire types -------------------------------


def expect_map(value: Any, what: str, fields: frozenset[str] | None = None) -> dict[str, Any]:
    """``value`` as a map; with ``fields``, exactly those keys must be present."""
    if type(value) is not dict:
        raise WrongTypeError(f"{what}: expected a map, got {_type_name(value)}")
    if fields is not None and value.keys() != fields:
        missing = sorted(fields - value.keys())
        extra = sorted(value.keys() - fields)
        raise WrongTypeError(
            f"{what}: expected fields {sorted(fields)}, missing {missing}, unexpected {_bounded_names(extra)}"
        )
    return value


def expect_str(value: Any, what: str) -> str:
    if type(value) is not str:
        raise WrongTypeError(f"{what}: expected str, got {_type_name(value)}")
    return value


def expect_int(value: Any, what: str, minimum: int = 0) -> int:
    if type(value) is not int:
        raise WrongTypeError(f"{what}: expected int, got {_type_name(value)}")
    if value < minimum:
        raise WrongTypeError(f"{what}: expected an integer >= {minimum}, got {value}")
    return value


def expect_bytes(value: Any, what: str, size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise WrongTypeError(f"{what}: expected bin, got {_type_name(value)}")
    if size is not None and len(value) != size:
        raise WrongTypeError(f"{what}: expected {size} bytes, got {len(value)}")
    return value


def expect_list(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise WrongTypeError(f"{what}: expected an array, got {_type_name(value)}")
    return value


def expect_bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise WrongTypeError(f"{what}: expected bool, got {_type_name(value)}")
    return value


def bounded_repr(value: str) -> str:
    """``repr(value)`` for an error message, cut after ``MAX_ECHO_CHARS`` characters and
    then naming the value's full size, as in ``'abc…'…(15000 bytes)``.

    Messages quote values that came from outside; the message is kept (a rejected
    transaction's record) and sent back, so it must not grow with the input.
    """
    if len(value) <= MAX_ECHO_CHARS:
        return repr(value)
    size = len(value.encode("utf-8", "surrogatepass"))
    return f"{value[:MAX_ECHO_CHARS]!r}…({size} bytes)"


def _bounded_names(names: list[str]) -> str:
    # An outsider chooses how many unexpected keys a map has, and how long they are.
    text = str(names)
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return f"{text[:MAX_ECHO_CHARS]}…({len(names)} keys)"


def _type_name(value: Any) -> str:
    names = {str: "str", bytes: "bin", int: "int", bool: "bool", list: "array", dict: "map"}
    if value is None:
        return "nil"
    return names.get(type(value), type(value).__name__)


# --- JSON canonicalisation (RFC 8785) --------------------------------------

def _has_astral_character(encoded: bytes) -> bool:
    # Lead bytes F0-F4 begin every 4-byte UTF-8 sequence. Five substring searches
    # (memchr speed) cost a tenth of one character-class regex over a 5 KB document.
    return (
        b"\xf0" in encoded or b"\xf1" in encoded or b"\xf2" in encoded or b"\xf3" in encoded
        or b"\xf4" in encoded
    )


def _reject_float(text: str) -> Any:
    raise JsonError(f"expected no floats in a document (decimals are strings), got {bounded_repr(text)}")


def _reject_constant(text: str) -> Any:
    raise JsonError(f"expected JSON values only, got {bounded_repr(text)}")


def _check_integer(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_JSON_INTEGER:
        raise JsonError(f"expected an integer of magnitude below 2^53, got {bounded_repr(text)}")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"expected unique object keys, got {bounded_repr(key)} twice")
            seen.add(key)
    return out


def parse_json(data: bytes | str, *, allow_duplicates: bool = False) -> Any:
    """Parse submitted JSON under the document rules: no floats, safe integers, unique keys."""
    try:
        return json.loads(
            data,
            parse_float=_reject_float,
            parse_int=_check_integer,
            parse_constant=_reject_constant,
            object_pairs_hook=None if allow_duplicates else _no_duplicate_keys,
        )
    except JsonError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise JsonError(f"expected JSON, got {exc}") from exc


def _check_json_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_NESTING_DEPTH:
        raise JsonError(f"expected nesting at most {MAX_NESTING_DEPTH} deep")
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise JsonError(f"expected string object keys, got {type(key).__name__}")
            _check_json_value(item, depth + 1)
    elif kind is list:
        for item in value:
            _check_json_value(item, depth + 1)
    elif kind is int:
        if abs(value) > MAX_SAFE_JSON_INTEGER:
            raise JsonError(f"expected an integer of magnitude below 2^53, got {bounded_repr(str(value))}")
    elif kind is float:
        raise JsonError("expected no floats in a document (decimals are strings)")
    elif not (kind is str or kind is bool or value is None):
        raise JsonError(f"expected a JSON value, got {kind.__name__}")


def _dumps_sorted(value: Any) -> bytes:
    # orjson's compact, key-sorted output escapes exactly as RFC 8785 does (differential
    # test against the rfc8785 package); only astral-vs-high-BMP key order differs.
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise JsonError(f"expected well-formed JSON values, got {exc}") from exc


def _jcs_of_checked(value: Any) -> bytes:
    """JCS of a value already known to hold only JSON types, no floats, safe integers."""
    encoded = _dumps_sorted(value)
    # Python sorts keys by code point, JCS by UTF-16 unit: they differ only when an
    # astral character meets a high-BMP one, which needs a 4-byte UTF-8 sequence.
    if encoded.isascii() or not _has_astral_character(encoded):
        return encoded
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise JsonError(f"expected a canonicalisable JSON value, got {exc}") from exc


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a document value."""
    _check_json_value(value)
    return _jcs_of_checked(value)


def jcs_of_parsed(value: Any) -> bytes:
    """JCS of a value that :func:`parse_json` produced (so its types are already checked)."""
    return _jcs_of_checked(value)


def jcs_reference(value: Any) -> bytes:
    """The maintained RFC 8785 implementation, for differential tests."""
    return rfc8785.dumps(value)


def _holds_float_or_long_integer(value: Any) -> bool:
    """Whether a parsed JSON value holds a float or an integer beyond 2^53 anywhere.

    An explicit stack over containers only (strings are skipped by type): on a 5 KB
    certificate this costs about half of any scan of the raw bytes.
    """
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float or kind is int and not -MAX_SAFE_JSON_INTEGER <= item <= MAX_SAFE_JSON_INTEGER:
            return True
    return False


def may_hold_float_or_long_integer(data: bytes) -> bool:
    """False only if the JSON text ``data`` certainly holds no float and no integer beyond 2^53.

    The screen reads the bytes once, skipping strings: a digit followed by ``.``, ``e``
    or ``E`` begins a fraction or exponent, and only an integer of 16 or more digits can
    exceed 2^53 - 1. This is the specification of ``ledger._jsonscan``, the compiled
    twin used on the hot path; a property test keeps the two equal.
    """
    digits = 0
    in_string = False
    escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
            digits = 0
        elif 0x30 <= byte <= 0x39:
            digits += 1
            if digits >= 16:
                return True
        else:
            if digits and byte in b".eE":
                return True
            digits = 0
    return False


def _compiled(module: str, name: str, fallback: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """The compiled ``module.name``, or ``fallback`` if it was not built."""
    native = load_compiled(module)
    if native is None:  # pragma: no cover - nothing compiled
        return fallback
    function: Callable[[bytes], Any] = getattr(native, name)
    return function


def _decode_by_reference(data: bytes) -> Any:
    try:
        return decode_cb_reference(data)
    except EncodingError as exc:
        raise ValueError(str(exc)) from exc


# Without the compiled screen every value takes the exact walk (the Python screen costs
# more than the walk it would save); without the compiled check every document takes
# the exact path.
_may_hold_float_or_long_integer: Callable[[bytes], bool] = _compiled(
    "_jsonscan", "may_hold_float_or_long_integer", lambda data: True
)
_decode_native: Callable[[bytes], Any] = _compiled("_cbdecode", "decode", _decode_by_reference)
_is_canonical_document: Callable[[bytes], bool] = _compiled(
    "_jsonscan", "is_canonical_document", lambda data: False
)
"""True only if the bytes are JCS of a float-free value with safe integers (compiled;
the exact path in :func:`parse_canonical_json` is its specification)."""


def parse_canonical_json(data: bytes) -> Any:
    """Parse JSON that must already be in JCS form (document contents in a block).

    This is on the ledger's hot path: orjson parses (it accepts floats, and integers
    beyond 2^53 that documents may not hold), and a compiled check of the bytes shows
    almost every document canonical in one pass. Any other takes the exact path,
    :func:`parse_canonical_json_exact`, which is the specification.
    """
    value = _load_json(data)
    if _is_canonical_document(data):
        return value
    return _check_canonical(data, value)


def parse_canonical_json_exact(data: bytes) -> Any:
    """:func:`parse_canonical_json` without the compiled check: the reference for tests."""
    return _check_canonical(data, _load_json(data))


def _load_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JsonError(f"expected JSON, got {exc}") from exc


def _check_canonical(data: bytes, value: Any) -> Any:
    # A compiled screen of the bytes decides whether the parsed value must be walked for
    # floats and long integers; the precise parser names them. Then the canonical form
    # is rebuilt and compared.
    if _may_hold_float_or_long_integer(data) and _holds_float_or_long_integer(value):
        value = parse_json(data, allow_duplicates=True)
    if _jcs_of_checked(value) != data:
        raise JsonError("expected the document in RFC 8785 canonical form, got other bytes")
    return value


def compute_doc_hash(document: Any) -> bytes:
    """``doc_hash = H(JCS(document))`` (DESIGN §2)."""
    return H(jcs(document))


def pack_uint64(value: int) -> bytes:
    """Big-endian fixed-width integer, for storage keys that must sort numerically."""
    return struct.pack(">Q", value)
