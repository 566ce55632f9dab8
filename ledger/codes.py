"""Code lists and code predicates for trade documents (DESIGN §4a).

This module owns the *values* a trade document may use for its coded fields and one
``is_…`` predicate per kind of code. The predicates answer yes/no and never raise;
:mod:`ledger.documents` turns a ``False`` into the matching ``DocumentError`` with the
field's path. Everything here is a consensus rule: every node must give the same answer
for the same string, so the lists are Python literals (no locale, no system data, no
network) and changing one is a protocol change.

- ``COUNTRY_CODES``: the 249 officially assigned ISO 3166-1 alpha-2 codes. Reserved
  and user-assigned codes (``EU``, ``UK``, ``XK``, ``XZ``...) are not assigned codes and
  are refused.
- ``CURRENCY_CODES``: ISO 4217 List One (active currency, fund and precious-metal
  codes) as of amendment 179 (May 2025): Debian ``iso-codes`` 4.15 without the codes
  withdrawn since (``HRK`` 2023, ``SLL`` after the 2022 redenomination to ``SLE``,
  ``ZWL`` replaced by ``ZWG`` in 2024, ``ANG`` replaced by ``XCG`` in 2025, ``CUC``
  after Cuba's 2021 monetary unification), plus ``XAD``, ``XCG`` and ``ZWG``.
- HS codes: at least the 6-digit Harmonized System subheading, optionally extended by
  national tariff digits, written ``"2204.21"``, ``"220421"``, ``"2204.21.00"`` or
  ``"22042100"`` (at most 14 digits).
- UN/LOCODEs: ``"AUADL"`` or the TradeTrust/edi3 URN form ``"unece.un.org:locode:AUADL"``;
  an assigned ISO 3166-1 country followed by three characters from ``[A-Z2-9]``.
- RFC 3339 ``date-time`` with a mandatory offset (``Z`` or ``±hh:mm``), real calendar
  dates (leap years included), seconds up to 60 (leap second), any number of
  fractional-second digits; ``full-date`` for the light document types' dates.
- Decimal strings ``-?digits(.digits)?`` (ASCII digits, no exponent, no ``+``, no
  leading or trailing dot), and 4-digit customs procedure codes (WCO DE 1/10,
  e.g. ``"1000"``, ``"4000"``, ``"7800"``, ``"0014"``).
"""

from __future__ import annotations

import re

# fmt: off
COUNTRY_CODES: frozenset[str] = frozenset({
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ",
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW",
    "CX", "CY", "CZ",
    "DE", "DJ", "DK", "DM", "DO", "DZ",
    "EC", "EE", "EG", "EH", "ER", "ES", "ET",
    "FI", "FJ", "FK", "FM", "FO", "FR",
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT",
    "GU", "GW", "GY",
    "HK", "HM", "HN", "HR", "HT", "HU",
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
    "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM",
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
    "QA",
    "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ",
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
    "UA", "UG", "UM", "US", "UY", "UZ",
    "VA", "VC", "VE", "VG", "VI", "VN", "VU",
    "WF", "WS",
    "YE", "YT",
    "ZA", "ZM", "ZW",
})
"""ISO 3166-1 alpha-2: every officially assigned code (249)."""

CURRENCY_CODES: frozenset[str] = frozenset({
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN",
    "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN",
    "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK",
    "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR",
    "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF",
    "IDR", "ILS", "INR", "IQD", "IRR", "ISK",
    "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
    "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV",
    "MYR", "MZN",
    "NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
    "OMR",
    "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR",
    "RON", "RSD", "RUB", "RWF",
    "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC",
    "SYP", "SZL",
    "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
    "VED", "VES", "VND", "VUV",
    "WST",
    "XAD", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD",
    "XPF", "XPT", "XSU", "XTS", "XUA", "XXX",
    "YER",
    "ZAR", "ZMW", "ZWG",
})
"""ISO 4217 List One alphabetic codes in force (179)."""
# fmt: on

# All patterns are ASCII-only on purpose: in Python's default Unicode mode ``\d``
# also matches Arabic-Indic and other digits, which no trade system means by a code.
# ``fullmatch`` is used throughout because ``$`` would accept a trailing newline.

_HS_CODE = re.compile(r"[0-9]{4}\.[0-9]{2}(?:\.?[0-9]{2,4}){0,3}|[0-9]{6,14}")
_HS_MAX_DIGITS = 14

_LOCODE = re.compile(r"(?:unece\.un\.org:locode:)?[A-Z]{2}[A-Z2-9]{3}")

# Field ranges are in the patterns so that one match settles everything except the
# length of the month, which matters only for days 29 to 31. No capture groups: the
# fields sit at fixed offsets, and slicing is cheaper than match groups.
_DATE_PART = r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_DATE_TIME = re.compile(
    _DATE_PART + r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_DATE = re.compile(_DATE_PART)

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_NON_NEGATIVE_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")

_PROCEDURE_CODE = re.compile(r"[0-9]{4}")

_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_country_code(value: str) -> bool:
    """True for an assigned ISO 3166-1 alpha-2 code (upper case, as the standard writes it)."""
    return value in COUNTRY_CODES


def is_currency_code(value: str) -> bool:
    """True for an ISO 4217 alphabetic code on List One."""
    return value in CURRENCY_CODES


def is_hs_code(value: str) -> bool:
    """True for an HS subheading of at least 6 digits, dotted or not, with national digits."""
    if _HS_CODE.fullmatch(value) is None:
        return False
    # The dotted form's groups could add up past the longest national tariff code.
    return len(value) - value.count(".") <= _HS_MAX_DIGITS


def is_locode(value: str) -> bool:
    """True for a UN/LOCODE (bare or ``unece.un.org:locode:`` URN) of an assigned country."""
    # The country is the two letters before the 3-character location part.
    return _LOCODE.fullmatch(value) is not None and value[-5:-3] in COUNTRY_CODES


def is_calendar_date(year: int, month: int, day: int) -> bool:
    """True when ``year-month-day`` exists in the proleptic Gregorian calendar."""
    if not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day <= _DAYS_IN_MONTH[month]


def is_rfc3339_datetime(value: str) -> bool:
    """True for an RFC 3339 ``date-time``: a real date, a valid time and a required offset."""
    # Days up to 28 exist in every month, so the common case needs no calendar (two
    # ASCII digits compare as strings as they do as numbers).
    return _DATE_TIME.fullmatch(value) is not None and (value[8:10] <= "28" or _is_day_in_month(value))


def is_rfc3339_date(value: str) -> bool:
    """True for an RFC 3339 ``full-date`` (``YYYY-MM-DD``) that exists in the calendar."""
    return _DATE.fullmatch(value) is not None and (value[8:10] <= "28" or _is_day_in_month(value))


def _is_day_in_month(value: str) -> bool:
    """For a string that matched a date pattern: does its day exist in its month?"""
    return is_calendar_date(int(value[:4]), int(value[5:7]), int(value[8:10]))


def is_decimal(value: str) -> bool:
    """True for a plain decimal string such as ``"1250.50"`` or ``"-3"`` (no exponent)."""
    return _DECIMAL.fullmatch(value) is not None


def is_non_negative_decimal(value: str) -> bool:
    """True for a decimal string without a sign, as masses and values must be."""
    return _NON_NEGATIVE_DECIMAL.fullmatch(value) is not None


def is_procedure_code(value: str) -> bool:
    """True for a 4-digit customs procedure code (requested + previous procedure)."""
    return _PROCEDURE_CODE.fullmatch(value) is not None
