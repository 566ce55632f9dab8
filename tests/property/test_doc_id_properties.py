"""A doc_id's one-match fast path accepts exactly what the rule-by-rule checks accept."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import MalformedTransactionError
from ledger.transactions import _WELL_FORMED_DOC_ID, MAX_DOC_ID_CHARS, is_valid_zone_id, split_doc_id

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

doc_ids = st.text(alphabet=st.sampled_from(list("AEGZ09-/ a\n\t\x7f\x00é")), max_size=14) | st.builds(
    lambda zone, number: f"{zone}/{number}",
    st.from_regex(r"[A-Z]{2}-[A-Z0-9][A-Z0-9-]{0,31}", fullmatch=True) | st.text(max_size=8),
    st.text(max_size=8) | st.just("x" * 190),
)


def _accepted_rule_by_rule(doc_id: str) -> bool:
    zone_id, sep, number = doc_id.partition("/")
    return (
        bool(sep) and bool(number) and is_valid_zone_id(zone_id)
        and len(doc_id) <= MAX_DOC_ID_CHARS and not _CONTROL.search(number)
    )


@given(doc_ids)
def test_fast_path_agrees_with_the_rules(doc_id: str) -> None:
    if len(doc_id) <= MAX_DOC_ID_CHARS and _WELL_FORMED_DOC_ID.match(doc_id):
        assert _accepted_rule_by_rule(doc_id)
    try:
        parts = split_doc_id(doc_id)
    except MalformedTransactionError:
        assert not _accepted_rule_by_rule(doc_id)
    else:
        assert _accepted_rule_by_rule(doc_id)
        assert parts == (doc_id.partition("/")[0], doc_id.partition("/")[2])


def test_zone_id_has_no_trailing_newline() -> None:
    assert is_valid_zone_id("EG-TEDA")
    assert not is_valid_zone_id("EG-TEDA\n")
