"""Canonical bytes and the hash (DESIGN §2, PROTOCOL §1).

This module owns:

* ``H``, SHA-256 through :mod:`hashlib` (OpenSSL, on the CPU's SHA instructions where it
  has them): the only hash of the protocol;
* the value rules both canonical forms share (:class:`ValueRules`): which Python values
  a form holds, and that a value sits inside at most ``MAX_NESTING_DEPTH`` containers
  (:mod:`ledger.limits`, decision 0008), the outermost value inside none. Written
  once, here; canonical MessagePack and canonical JSON (:mod:`ledger.canonical_json`)
  each instantiate it with their own types and integer range;
* canonical MessagePack: ``cb(x)`` writes it and ``decode_cb`` reads it, on the
  ``msgpack`` library (decision 0013). ``cb`` sorts every map's ``str`` keys by their
  UTF-8 bytes and writes integers in their smallest form, ``bytes`` as bin, ``str`` as
  str; floats and extension types are refused. ``decode_cb`` decodes, checks the value
  rules, re-encodes and refuses bytes that differ: one path, that accepts exactly the
  bytes ``cb`` writes and names what is wrong with any other;
* typed access for the decoders of wire types (``expect_map``, ``expect_str``, ...);
* :func:`bounded_repr`, how error messages quote outside values.

``decode_cb`` names a fault in this order: first what stops the unpacker, in byte
order (``encoding.truncated``, ``encoding.trailing_bytes``, ``encoding.unsupported_type``
for byte 0xc1 or a map key that is an array or a map, ``encoding.invalid`` for text that
is not UTF-8, ``encoding.too_deep`` beyond msgpack's own 1,024 levels,
``encoding.duplicate_key`` and ``encoding.unsorted_keys`` when a map ends); then the
value rules, exactly as ``cb`` applies them to a Python value (``encoding.too_deep``
before anything else, then the first float, extension type or non-``str`` key in
order); last the form (``encoding.non_minimal_integer``: an integer or a length written
longer than its smallest form). A Python value and its bytes therefore get one verdict
whichever of ``cb`` or ``decode_cb`` sees them.

The JSON rules of documents are in :mod:`ledger.canonical_json`; their names are also
importable from here (``parse_json``, ``parse_canonical_json``, ``jcs``,
``compute_doc_hash``, ...), as the rest of the code has always imported them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import msgpack

from ledger.errors import (
    DuplicateKeyError,
    EncodingError,
    FloatError,
    LedgerError,
    NestingTooDeepError,
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
_UINT64_MAX = 2**64 - 1
_INT64_MIN = -(2**63)


def H(data: bytes) -> bytes:  # noqa: N802 - the name DESIGN and the contract give it
    """SHA-256, the only hash of the protocol (the contract calls it ``H``)."""
    return hashlib.sha256(data).digest()


# --- the value rules, shared by both canonical forms ----------------------------------


class ValueRuleError(Exception):
    """A value breaks a rule of :class:`ValueRules`. Internal: each form raises its own
    :class:`~ledger.errors.EncodingError` for it, where it enters.

    ``kind`` is one of ``"too_deep"``, ``"float"``, ``"integer"``, ``"key"`` (a map key
    that is not a ``str``) and ``"type"`` (any other type); ``value`` is the offending
    value (None for ``"too_deep"``).
    """

    def __init__(self, kind: str, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.value = value


class ValueRules:
    """The values a canonical form holds, checked by one walk written once (:meth:`check`).

    A value is a map, an array (one of ``arrays``), ``str``, an integer within
    ``[int_min, int_max]``, or one of ``scalars``; with ``check_keys``, every map key is
    a ``str`` (a form whose writer refuses other keys itself leaves them to it, as it
    leaves text that is not valid Unicode). A value sits inside at most
    ``MAX_NESTING_DEPTH`` containers; the outermost value is inside none. Nesting is
    checked first: a value nested too deep is refused as too deep whatever else it
    holds. Otherwise the first fault in order (depth first, a map's keys before its
    values) is the one reported.
    """

    __slots__ = ("arrays", "scalars", "int_min", "int_max", "check_keys", "types_rule", "integer_rule", "_walk")

    def __init__(
        self, *, arrays: tuple[type, ...], scalars: frozenset[type], int_min: int, int_max: int,
        check_keys: bool, types_rule: str, integer_rule: str,
    ) -> None:
        self.arrays = arrays
        """The Python types that are arrays."""
        self.scalars = scalars
        """Other types accepted as they are (``str``, ``bool`` and ``None`` in both forms)."""
        self.int_min = int_min
        self.int_max = int_max
        self.check_keys = check_keys
        self.types_rule = types_rule
        """The types a message names as expected."""
        self.integer_rule = integer_rule
        """How a message states the integer range."""
        self._walk = _make_walker(self)

    def check(self, value: Any) -> None:
        """Return None, or raise :class:`ValueRuleError` for the first fault of ``value``."""
        fault = self._walk((value,), -1)
        if fault is not None:
            raise fault


def _too_deep() -> ValueRuleError:
    return ValueRuleError(
        "too_deep",
        f"expected containers nested at most {MAX_NESTING_DEPTH} deep (MAX_NESTING_DEPTH), got deeper",
    )


def _make_walker(rules: ValueRules) -> Callable[[Any, int], ValueRuleError | None]:
    """The walk of ``rules``, its constants bound as locals: it runs on every value decoded.

    ``walk(node, depth)`` checks the map or array ``node`` at ``depth`` and everything in
    it. Too deep nesting is raised where it is met, and ends the walk; any other fault is
    kept (the first one met) and the walk goes on, so that nesting is named first
    wherever it is; the kept fault is returned. Written for speed (about 0.1 us per
    value): one call per container, each item's type looked up once.
    """
    arrays = rules.arrays
    scalars = rules.scalars
    int_min = rules.int_min
    int_max = rules.int_max
    check_keys = rules.check_keys
    limit = MAX_NESTING_DEPTH

    def walk(node: Any, depth: int) -> ValueRuleError | None:
        # ``node``'s items sit at ``depth + 1``: none may sit deeper than the limit.
        if depth >= limit and node:
            raise _too_deep()
        first: ValueRuleError | None = None
        if type(node) is dict:
            if check_keys:
                for key in node:
                    if type(key) is not str:
                        first = ValueRuleError("key", f"expected str map keys, got {_type_name(key)}", key)
                        break
            items: Iterable[Any] = node.values()
        else:
            items = node
        for item in items:
            kind = type(item)
            if kind is str or kind in scalars:
                continue
            if kind is dict or kind is list or kind in arrays:
                inner = walk(item, depth + 1)
                if first is None:
                    first = inner
            elif first is not None:
                continue
            elif kind is int:
                if not int_min <= item <= int_max:
                    first = ValueRuleError("integer", f"expected {rules.integer_rule}, got {bounded_repr(str(item))}", item)
            elif kind is float:
                first = ValueRuleError("float", f"expected no floats, got {item!r}", item)
            else:
                first = ValueRuleError("type", f"expected {rules.types_rule}, got {_type_name(item)}", item)
        return first

    return walk


# --- canonical MessagePack --------------------------------------------------------------

CB_RULES = ValueRules(
    arrays=(list, tuple),
    scalars=frozenset({str, bytes, bool, type(None)}),
    int_min=_INT64_MIN,
    int_max=_UINT64_MAX,
    check_keys=True,
    types_rule="a map, array, str, bin, int, bool or nil",
    integer_rule="an integer within 64 bits",
)
"""What canonical bytes hold: maps with ``str`` keys, arrays, str, bin, 64-bit integers,
booleans and nil (tuples are written as arrays; decoding gives lists)."""

_CB_ERRORS: dict[str, type[EncodingError]] = {
    "too_deep": NestingTooDeepError,
    "float": FloatError,
    "integer": UnsupportedTypeError,
    "key": UnsupportedTypeError,
    "type": UnsupportedTypeError,
}


def _validate_cb_value(value: Any) -> None:
    try:
        CB_RULES.check(value)
    except ValueRuleError as fault:
        raise _CB_ERRORS[fault.kind](fault.message) from None


def _sorted_copy(value: Any, depth: int = 0) -> Any:
    """``value`` with every map's keys in UTF-8 byte order (code point order on ``str``).

    The value rules then meet faults in the order the bytes would hold them, so a value
    and its bytes name the same first fault. A map with a key that is not a ``str``
    keeps its order (the rules name that key first), and nothing below the nesting
    bound is copied (the rules refuse it as too deep whatever it holds).
    """
    if depth > MAX_NESTING_DEPTH:
        return value
    kind = type(value)
    if kind is dict:
        keys = list(value)
        if all(type(key) is str for key in keys):
            keys.sort()
        return {key: _sorted_copy(value[key], depth + 1) for key in keys}
    if kind is list or kind is tuple:
        return [_sorted_copy(item, depth + 1) for item in value]
    return value


def cb(value: Any) -> bytes:
    """Canonical bytes of ``value`` (DESIGN §2)."""
    ordered = _sorted_copy(value)
    _validate_cb_value(ordered)
    try:
        packed: bytes = msgpack.packb(ordered, use_bin_type=True)
    except UnicodeEncodeError as exc:  # msgpack writes text as UTF-8; a lone surrogate is none
        raise EncodingError(f"expected valid Unicode text, got {exc.reason}") from None
    return packed


def _map_of_pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """The unpacker's map builder: keys unique and in UTF-8 byte order.

    A map with a key that is not a ``str`` is left to the value rules, which name it.
    """
    out = dict(pairs)
    fault: tuple[str, str] | None = None
    previous: str | None = None
    for key, _ in pairs:
        if type(key) is not str:
            return out
        if previous is not None and key <= previous and fault is None:
            fault = (previous, key)
        previous = key
    if fault is not None:
        before, key = fault
        if key == before:
            raise DuplicateKeyError(f"expected unique map keys, got {bounded_repr(key)} twice")
        raise UnsortedKeysError(f"expected map keys in byte order, got {bounded_repr(key)} after {bounded_repr(before)}")
    return out


def _unpack(data: bytes) -> Any:
    """msgpack's decoding of ``data``, its failures translated into the precise errors."""
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, use_list=True, timestamp=0,
            object_pairs_hook=_map_of_pairs,
        )
    except LedgerError:
        raise
    except msgpack.ExtraData as exc:
        at = len(data) - len(exc.extra)
        raise TrailingBytesError(f"expected end of input at byte {at}, got {len(exc.extra)} more bytes") from None
    except msgpack.StackError:
        raise NestingTooDeepError(
            f"expected containers nested at most {MAX_NESTING_DEPTH} deep (MAX_NESTING_DEPTH), got over 1024"
        ) from None
    except msgpack.FormatError:
        raise UnsupportedTypeError("expected a MessagePack type, got the reserved byte 0xc1") from None
    except UnicodeDecodeError as exc:
        raise EncodingError(f"expected UTF-8 text, got invalid bytes ({exc.reason})") from None
    except TypeError:  # a map key that is an array or a map
        raise UnsupportedTypeError("expected str map keys, got an array or a map") from None
    except ValueError as exc:
        if "timestamp" in str(exc) or "nanoseconds" in str(exc):  # msgpack reads ext type -1 itself
            raise UnsupportedTypeError("expected no extension types, got ext type -1") from None
        raise TruncatedError(f"expected more bytes, input ends ({exc})") from None


def decode_cb(data: bytes) -> Any:
    """Decode canonical bytes; raise a specific :class:`EncodingError` if they are not canonical."""
    if type(data) is not bytes:
        data = bytes(data)
    value = _unpack(data)
    _validate_cb_value(value)
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    if packed != data:
        _raise_longer_form(data, packed)
    return value


def _raise_longer_form(data: bytes, packed: bytes) -> NoReturn:
    # Keys are unique and sorted and every value is canonical: the only difference left
    # is an integer or a length header written longer than its smallest form.
    at = next((i for i, (a, b) in enumerate(zip(data, packed, strict=False)) if a != b), min(len(data), len(packed)))
    raise NonMinimalIntegerError(
        f"expected every integer and length in its smallest form, got a longer one at byte {at}"
    )


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
    names = {str: "str", bytes: "bin", int: "int", bool: "bool", list: "array", dict: "map", float: "float"}
    if value is None:
        return "nil"
    if isinstance(value, msgpack.ExtType):
        return f"ext type {value.code}"
    if isinstance(value, msgpack.Timestamp):
        return "ext type -1 (timestamp)"
    return names.get(type(value), type(value).__name__)


def pack_uint64(value: int) -> bytes:
    """Big-endian fixed-width integer, for storage keys that must sort numerically."""
    return struct.pack(">Q", value)


# The JSON rules of documents, importable from here as they always were. Imported last:
# ledger.canonical_json uses the names above, so either module may be imported first.
from ledger.canonical_json import MAX_SAFE_JSON_INTEGER as MAX_SAFE_JSON_INTEGER  # noqa: E402
from ledger.canonical_json import compute_doc_hash as compute_doc_hash  # noqa: E402
from ledger.canonical_json import jcs as jcs  # noqa: E402
from ledger.canonical_json import parse_canonical_json as parse_canonical_json  # noqa: E402
from ledger.canonical_json import parse_json as parse_json  # noqa: E402
from ledger.canonical_json import validate_json_value as validate_json_value  # noqa: E402
