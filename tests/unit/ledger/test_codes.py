"""ledger.codes: the code lists and the code predicates."""

from __future__ import annotations

import pytest

from ledger.codes import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    is_calendar_date,
    is_country_code,
    is_currency_code,
    is_decimal,
    is_hs_code,
    is_locode,
    is_non_negative_decimal,
    is_procedure_code,
    is_rfc3339_date,
    is_rfc3339_datetime,
)


def test_country_list_is_the_249_assigned_codes() -> None:
    assert len(COUNTRY_CODES) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in COUNTRY_CODES)


def test_currency_list_is_list_one() -> None:
    assert len(CURRENCY_CODES) == 179
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in CURRENCY_CODES)


@pytest.mark.parametrize("code", ["AU", "CN", "EG", "BY", "DJ", "LK", "SS", "CW", "AX", "BQ"])
def test_country_codes_accepted(code: str) -> None:
    assert is_country_code(code)


@pytest.mark.parametrize("code", ["au", "UK", "EU", "XK", "XZ", "AUS", "A", "", " AU", "ZZ"])
def test_country_codes_rejected(code: str) -> None:
    assert not is_country_code(code)


@pytest.mark.parametrize(
    "code", ["USD", "EUR", "CNY", "EGP", "BYN", "DJF", "LKR", "SLE", "ZWG", "XCG", "VED", "XAD"]
)
def test_currency_codes_accepted(code: str) -> None:
    assert is_currency_code(code)


@pytest.mark.parametrize("code", ["usd", "US$", "RMB", "HRK", "ZWL", "SLL", "ANG", "BYR", "EURO", ""])
def test_currency_codes_rejected(code: str) -> None:
    assert not is_currency_code(code)


@pytest.mark.parametrize(
    "code", ["2204.21", "220421", "2204.21.00", "22042100", "8517.62.0010", "8471300100", "7019.12"]
)
def test_hs_codes_accepted(code: str) -> None:
    assert is_hs_code(code)


@pytest.mark.parametrize(
    "code",
    [
        "22",
        "2204",
        "22042",
        "2204.2",
        "22.04.21",
        "2204-21",
        "2204 21",
        "22O421",
        "2204.21.",
        "2204..21",
        "٢٢٠٤٢١",
        "220421\n",
        "123456789012345",
        "",
    ],
)
def test_hs_codes_rejected(code: str) -> None:
    assert not is_hs_code(code)


@pytest.mark.parametrize(
    "code", ["AUADL", "unece.un.org:locode:AUADL", "CNPVG", "EGSOK", "DJJIB", "GB2AB", "LKHBA"]
)
def test_locodes_accepted(code: str) -> None:
    assert is_locode(code)


@pytest.mark.parametrize(
    "code",
    [
        "auadl",
        "AUAD1",
        "AUAD0",
        "AU-ADL",
        "AU ADL",
        "XXADL",
        "AUADLX",
        "AUAD",
        "locode:AUADL",
        "unece.un.org:locode:auadl",
        "",
    ],
)
def test_locodes_rejected(code: str) -> None:
    assert not is_locode(code)


@pytest.mark.parametrize(
    "value",
    [
        "2020-06-03T00:46:34Z",
        "2020-06-03T00:46:34.123456+05:30",
        "2020-02-29T23:59:59-12:00",
        "2016-12-31T23:59:60Z",
        "2000-02-29t00:00:00z",
        "2026-11-26T00:00:00+00:00",
    ],
)
def test_datetimes_accepted(value: str) -> None:
    assert is_rfc3339_datetime(value)


@pytest.mark.parametrize(
    "value",
    [
        "2020-06-03T00:46:34",
        "2020-06-03",
        "2020-13-03T00:46:34Z",
        "2020-00-03T00:46:34Z",
        "2021-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2020-04-31T00:00:00Z",
        "2020-06-03T24:00:00Z",
        "2020-06-03T00:60:00Z",
        "2020-06-03T00:46:61Z",
        "2020-06-03 00:46:34Z",
        "2020-06-03T00:46:34.Z",
        "2020-06-03T00:46:34+0530",
        "2020-06-03T00:46:34+24:00",
        "20240425090243Z",
        "2020-06-03T00:46:34Z\n",
        "",
    ],
)
def test_datetimes_rejected(value: str) -> None:
    assert not is_rfc3339_datetime(value)


def test_dates() -> None:
    assert is_rfc3339_date("2018-02-21")
    assert is_rfc3339_date("2024-02-29")
    assert not is_rfc3339_date("2023-02-29")
    assert not is_rfc3339_date("2018-2-21")
    assert not is_rfc3339_date("21 September 2021")


def test_calendar() -> None:
    assert is_calendar_date(2000, 2, 29) and not is_calendar_date(2100, 2, 29)
    assert (
        not is_calendar_date(2026, 0, 1)
        and not is_calendar_date(2026, 1, 0)
        and not is_calendar_date(2026, 6, 31)
    )


@pytest.mark.parametrize("value", ["0", "1250.50", "-3", "-0.001", "007"])
def test_decimals_accepted(value: str) -> None:
    assert is_decimal(value)


@pytest.mark.parametrize(
    "value", ["", "1.2e3", "1E3", "+1", "1.", ".5", "1,5", "1 000", "NaN", "١٢", "1\n", "--1"]
)
def test_decimals_rejected(value: str) -> None:
    assert not is_decimal(value)


def test_non_negative_decimals() -> None:
    assert is_non_negative_decimal("1250.50")
    assert not is_non_negative_decimal("-1250.50")
    assert not is_non_negative_decimal("1.2e3")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1000", True),
        ("7800", True),
        ("0014", True),
        ("78", False),
        ("78000", False),
        ("78A0", False),
        ("١٠٠٠", False),
        ("", False),
    ],
)
def test_procedure_codes(value: str, ok: bool) -> None:
    assert is_procedure_code(value) is ok
