"""The error hierarchy: one root, stable unique codes, documented."""

from __future__ import annotations

import re

from ledger import errors


def test_codes_are_unique_and_well_formed() -> None:
    classes = errors.all_error_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    for code in codes:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", code), code


def test_every_class_is_in_the_docstring_tree() -> None:
    doc = errors.__doc__ or ""
    for cls in errors.all_error_classes():
        assert cls.__name__ in doc and cls.code in doc, cls.__name__


def test_one_line_carries_code_and_path() -> None:
    err = errors.HsCodeError('"22" is not an HS code of at least 6 digits', path="a.b[0].c")
    assert err.one_line() == 'doc.hs_code: a.b[0].c: "22" is not an HS code of at least 6 digits'


def test_expected_and_found_are_kept_as_text_beside_the_message() -> None:
    err = errors.StateRootMismatchError("header.state_root: differs", expected=b"\x01\xff", found=b"")
    assert (err.expected, err.found, str(err)) == ("01ff", "", "header.state_root: differs")
    assert (errors.WrongHeightError("h", expected=7, found=0).expected, errors.LedgerError("x").found) == ("7", None)
