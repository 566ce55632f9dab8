"""Documents as JSON: the rules their values obey, and their canonical form (DESIGN §2).

This module owns:

* :func:`validate_json_value`, the rules of a document's values, for a value given as
  Python objects: objects with string keys, arrays, strings (valid Unicode), integers of
  magnitude below 2^53, booleans and null; no floats (decimal quantities are strings);
  a value sits inside at most ``MAX_NESTING_DEPTH`` containers (:mod:`ledger.limits`,
  decision 0008; the same walk and the same bound as canonical MessagePack,
  :class:`ledger.encoding.ValueRules`);
* :func:`parse_json`, JSON text under those rules, with every object's keys unique;
* :func:`jcs`, the RFC 8785 (JCS) bytes of a value, and ``compute_doc_hash`` =
  ``H(JCS(document))``;
* :func:`parse_canonical_json`, JSON text that must already be the JCS form of a value
  under those rules (a document's content in a block).

Every fault is a :class:`~ledger.errors.JsonError` (``encoding.json``) whose message
names the rule. Each entry point is one path, and they share their steps, in this
order: the text is parsed by ``orjson`` (RFC 8259, UTF-8; ``orjson`` refuses nesting
beyond 1,024 levels by itself, input our bound refuses anyway, and reported as ours);
the value rules (:data:`JSON_RULES`, the walk of :class:`ledger.encoding.ValueRules`:
nesting first, then types, floats and integers); JCS written by ``orjson``, which
refuses keys that are not strings and text that is not valid Unicode as it writes; then
unique keys (:func:`parse_json`) or, for :func:`parse_canonical_json`, that the text is
exactly the JCS written (a repeated key is named as such). A value and its text thus get
one verdict whichever entry point sees them.

JCS is ``orjson``'s compact, key-sorted output, whose escaping and integers are RFC
8785's (a property test holds it to the maintained ``rfc8785`` package). ``orjson``
sorts keys by code point and JCS by UTF-16 code unit; the two differ only when a key
holds a character beyond U+FFFF, and only output holding such a character (a UTF-8 lead
byte F0 to F4) is written again with every object's keys put in UTF-16 order first.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from ledger.errors import JsonError
from ledger.limits import MAX_NESTING_DEPTH

MAX_SAFE_JSON_INTEGER = 2**53 - 1
"""Integers in documents have magnitude at most this (the integers a double holds exactly)."""

_BOM = b"\xef\xbb\xbf"


def validate_json_value(value: Any) -> None:
    """Raise :class:`JsonError` unless ``value`` obeys the document rules (see the module)."""
    _canonical(value)


def _canonical(value: Any) -> bytes:
    """The JCS bytes of ``value``, or :class:`JsonError` for the first rule it breaks.

    The rules are :data:`JSON_RULES` (nesting, types, integers), then what ``orjson``
    refuses to write as it writes: a key that is not a string, text that is not valid
    Unicode. Every entry point runs exactly this.
    """
    try:
        JSON_RULES.check(value)
    except ValueRuleError as fault:
        raise JsonError(_message(fault)) from None
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise JsonError(_writer_message(exc)) from None
    # orjson orders keys by code point; JCS by UTF-16 code unit. They differ only when a
    # key holds a character beyond U+FFFF, written in UTF-8 with a lead byte F0 to F4.
    if not encoded.isascii() and (
        b"\xf0" in encoded or b"\xf1" in encoded or b"\xf2" in encoded or b"\xf3" in encoded or b"\xf4" in encoded
    ):  # five byte searches cost a tenth of one character-class regular expression
        encoded = orjson.dumps(_in_utf16_key_order(value))
    return encoded


def _message(fault: ValueRuleError) -> str:
    if fault.kind == "float":
        number = fault.value
        if number.is_integer() and abs(number) >= 2**63:
            # orjson reads an integer beyond 64 bits as a float.
            return f"expected an integer of magnitude below 2^53, got a number beyond 64 bits ({number!r})"
        return f"expected no floats in a document (decimals are strings), got {number!r}"
    return fault.message


def _writer_message(exc: orjson.JSONEncodeError) -> str:
    text = str(exc)
    if "Dict key must be str" in text:
        return "expected string object keys, got another type"
    if "surrogates" in text:
        return "expected valid Unicode text, got a lone surrogate"
    return f"expected a JSON value, got {text}"  # pragma: no cover - the rules refuse the rest


def _load(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise JsonError(
                f"expected containers nested at most {MAX_NESTING_DEPTH} deep (MAX_NESTING_DEPTH), got over 1024"
            ) from None
        if str(exc).startswith("number is infinity"):
            raise JsonError(
                "expected integers of magnitude below 2^53 and no floats, got a number beyond the range of a double"
            ) from None
        raise JsonError(f"expected JSON, got {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"expected unique object keys, got {bounded_repr(key)} twice")
            seen.add(key)
    return out


def _validate_unique_keys(data: bytes | str) -> None:
    """Raise :class:`JsonError` if an object of the JSON text ``data`` repeats a key.

    Run on text ``orjson`` has read and the value rules accepted (so at most
    ``MAX_NESTING_DEPTH`` deep): the standard library's parser shows every key.
    """
    try:
        json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:  # pragma: no cover - orjson read it already
        raise JsonError(f"expected JSON, got {exc}") from None


def parse_json(data: bytes | str) -> Any:
    """Parse JSON text under the document rules: value rules, and unique keys.

    The text is UTF-8 (a leading byte order mark is ignored, as RFC 8259 allows).
    """
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        if data.startswith(_BOM):
            data = data[len(_BOM):]
    value = _load(data)
    _canonical(value)
    _validate_unique_keys(data)
    return value


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _in_utf16_key_order(value: Any) -> Any:
    """``value`` with every object's keys in UTF-16 code-unit order (RFC 8785 §3.2.3)."""
    if type(value) is dict:
        return {key: _in_utf16_key_order(value[key]) for key in sorted(value, key=_utf16_order)}
    if type(value) is list:
        return [_in_utf16_key_order(item) for item in value]
    return value


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a document value; raise :class:`JsonError` if it breaks a rule."""
    return _canonical(value)


def parse_canonical_json(data: bytes) -> Any:
    """Parse JSON that must already be in JCS form (document contents in a block).

    Raises :class:`JsonError` naming the first rule the text breaks: JSON syntax, then
    the value rules, then a repeated key, then any other difference from its JCS form.
    """
    if type(data) is not bytes:
        data = bytes(data)
    value = _load(data)
    canonical = _canonical(value)
    if canonical != data:
        _validate_unique_keys(data)
        at = next((i for i, (a, b) in enumerate(zip(data, canonical, strict=False)) if a != b),
                  min(len(data), len(canonical)))
        raise JsonError(f"expected the document in RFC 8785 canonical form, got other bytes from byte {at}")
    return value


def compute_doc_hash(document: Any) -> bytes:
    """``doc_hash = H(JCS(document))`` (DESIGN §2)."""
    return H(jcs(document))


# Imported last: ledger.encoding imports this module's names at its end, so either
# module may be imported first.
from ledger.encoding import H, ValueRuleError, ValueRules, bounded_repr  # noqa: E402

JSON_RULES = ValueRules(
    arrays=(list,),
    scalars=frozenset({str, bool, type(None)}),
    int_min=-MAX_SAFE_JSON_INTEGER,
    int_max=MAX_SAFE_JSON_INTEGER,
    check_keys=False,  # orjson refuses other keys as it writes JCS
    types_rule="a JSON value (object, array, string, integer, boolean or null)",
    integer_rule="an integer of magnitude below 2^53",
)
"""What a document's JSON holds (see the module)."""
