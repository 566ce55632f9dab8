"""ledger.documents: the document schemas, their error paths, and one verdict for a value and its bytes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import documents
from ledger.documents import (
    DOC_TYPES,
    document_number,
    document_summary,
    validate_document,
    validate_document_bytes,
)
from ledger.encoding import jcs
from ledger.errors import (
    CountryCodeError,
    CurrencyCodeError,
    DateTimeError,
    DecimalError,
    DocumentError,
    DocumentJsonError,
    DocumentSchemaError,
    HsCodeError,
    LocodeError,
    ProcedureCodeError,
    UnknownDocTypeError,
)
from ledger.limits import MAX_NESTING_DEPTH
from scripts.devkit import EXAMPLE_DOC_TYPES, TRADETRUST_SAMPLE_DOC_TYPES

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "samples"
EXAMPLES = REPO / "scripts" / "examples"

CHAFTA = SAMPLES / "tradetrust_chafta_coo_raw_v2.json"

EXAMPLE_TYPES = EXAMPLE_DOC_TYPES
TRADETRUST_SAMPLES = TRADETRUST_SAMPLE_DOC_TYPES


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def chafta() -> Any:
    return load(CHAFTA)


def example(name: str) -> Any:
    return load(EXAMPLES / name)


# --- accepted documents ------------------------------------------------------------


def test_chafta_sample_is_accepted_as_is() -> None:
    validate_document("certificate_of_origin", chafta())


@pytest.mark.parametrize("name", sorted(TRADETRUST_SAMPLES))
def test_tradetrust_samples_are_accepted(name: str) -> None:
    validate_document(TRADETRUST_SAMPLES[name], load(SAMPLES / name))


@pytest.mark.parametrize("name", sorted(EXAMPLE_TYPES))
def test_examples_are_accepted(name: str) -> None:
    validate_document(EXAMPLE_TYPES[name], example(name))


def test_every_example_file_is_listed() -> None:
    assert {p.name for p in EXAMPLES.glob("*.json")} == set(EXAMPLE_TYPES)


def test_every_declaration_type_code_has_an_example() -> None:
    codes = {example(n)["typeCode"] for n, t in EXAMPLE_TYPES.items() if t == "customs_declaration"}
    assert codes == documents.DECLARATION_TYPE_CODES


def test_unnamed_fields_are_allowed_and_kept() -> None:
    doc = example("decl_export.json")
    doc["salt"] = "9b1c0e"
    doc["x-zone-extension"] = {"anything": [1, "two", None]}
    doc["goodsItems"][0]["x-tariff-note"] = "quota 2026/17"
    before = copy.deepcopy(doc)
    validate_document("customs_declaration", doc)
    assert doc == before


def test_optional_fields_may_be_null() -> None:
    doc = example("decl_import.json")
    doc["customsOffice"] = None
    doc["transport"] = None
    validate_document("customs_declaration", doc)


def test_re_export_does_not_require_free_zone_id() -> None:
    doc = example("decl_re_export.json")
    del doc["freeZoneId"]
    validate_document("customs_declaration", doc)


def test_non_preferential_certificate_needs_no_fta_importer_or_origin_criteria() -> None:
    doc = chafta()
    doc["isPreferential"] = False
    del doc["freeTradeAgreement"]
    del doc["supplyChainConsignment"]["importer"]
    for item in doc["supplyChainConsignment"]["includedConsignmentItems"]:
        del item["crossBorderRegulatoryProcedure"]
    validate_document("certificate_of_origin", doc)


def test_national_tariff_extensions_and_bare_locodes_are_accepted() -> None:
    doc = chafta()
    line = doc["supplyChainConsignment"]["includedConsignmentItems"][0]["tradeLineItems"][0]
    line["tradeProduct"]["harmonisedTariffCode"]["classCode"] = "2204.21.00"
    doc["issueLocation"]["iD"] = "AUADL"
    validate_document("certificate_of_origin", doc)


# --- rejected documents ------------------------------------------------------------

Mutation = Callable[[Any], Any]


def at(doc: Any, *keys: str | int) -> Any:
    for key in keys:
        doc = doc[key]
    return doc


def set_(*keys: str | int, value: Any) -> Mutation:
    def mutate(doc: Any) -> Any:
        at(doc, *keys[:-1])[keys[-1]] = value
        return doc

    return mutate


def delete(*keys: str | int) -> Mutation:
    def mutate(doc: Any) -> Any:
        del at(doc, *keys[:-1])[keys[-1]]
        return doc

    return mutate


def replace(value: Any) -> Mutation:
    return lambda _doc: value


SCC = "supplyChainConsignment"
ICI = "includedConsignmentItems"
LINE_1 = (SCC, ICI, 0, "tradeLineItems", 1)
LINE_1_PATH = "supplyChainConsignment.includedConsignmentItems[0].tradeLineItems[1]"
GOODS_0 = ("goodsItems", 0)


def no_origin_criteria(doc: Any) -> Any:
    del doc[SCC][ICI][1]["crossBorderRegulatoryProcedure"]["originCriteriaText"]
    return doc


# (case id, doc_type, base document file or "chafta", mutation, error class, path)
CASES: list[tuple[str, str, str, Mutation, type[DocumentError], str | None]] = [
    # certificate_of_origin
    ("coo_missing_id", "certificate_of_origin", "chafta", delete("iD"), DocumentSchemaError, "iD"),
    (
        "coo_id_with_space",
        "certificate_of_origin",
        "chafta",
        set_("iD", value="WBC 208897"),
        DocumentSchemaError,
        "iD",
    ),
    (
        "coo_empty_name",
        "certificate_of_origin",
        "chafta",
        set_("name", value=" "),
        DocumentSchemaError,
        "name",
    ),
    (
        "coo_issue_datetime_without_offset",
        "certificate_of_origin",
        "chafta",
        set_("issueDateTime", value="2020-06-03T00:46:34"),
        DateTimeError,
        "issueDateTime",
    ),
    (
        "coo_issue_datetime_bad_month",
        "certificate_of_origin",
        "chafta",
        set_("issueDateTime", value="2020-13-03T00:46:34Z"),
        DateTimeError,
        "issueDateTime",
    ),
    (
        "coo_signatory_bad_day",
        "certificate_of_origin",
        "chafta",
        set_("firstSignatoryAuthentication", "actualDateTime", value="2021-02-29T09:46:34Z"),
        DateTimeError,
        "firstSignatoryAuthentication.actualDateTime",
    ),
    (
        "coo_issuer_country_lowercase",
        "certificate_of_origin",
        "chafta",
        set_("issuer", "postalAddress", "countryCode", value="au"),
        CountryCodeError,
        "issuer.postalAddress.countryCode",
    ),
    (
        "coo_issuer_missing_address",
        "certificate_of_origin",
        "chafta",
        delete("issuer", "postalAddress"),
        DocumentSchemaError,
        "issuer.postalAddress",
    ),
    (
        "coo_issue_location_bad_locode",
        "certificate_of_origin",
        "chafta",
        set_("issueLocation", "iD", value="unece.un.org:locode:AUAD1"),
        LocodeError,
        "issueLocation.iD",
    ),
    (
        "coo_locode_unknown_country",
        "certificate_of_origin",
        "chafta",
        set_(SCC, "loadingBaseportLocation", "iD", value="XXMEL"),
        LocodeError,
        "supplyChainConsignment.loadingBaseportLocation.iD",
    ),
    (
        "coo_is_preferential_string",
        "certificate_of_origin",
        "chafta",
        set_("isPreferential", value="true"),
        DocumentSchemaError,
        "isPreferential",
    ),
    (
        "coo_preferential_without_fta",
        "certificate_of_origin",
        "chafta",
        delete("freeTradeAgreement"),
        DocumentSchemaError,
        "freeTradeAgreement",
    ),
    (
        "coo_preferential_without_importer",
        "certificate_of_origin",
        "chafta",
        delete(SCC, "importer"),
        DocumentSchemaError,
        "supplyChainConsignment.importer",
    ),
    (
        "coo_preferential_without_origin_criteria",
        "certificate_of_origin",
        "chafta",
        no_origin_criteria,
        DocumentSchemaError,
        "supplyChainConsignment.includedConsignmentItems[1].crossBorderRegulatoryProcedure.originCriteriaText",
    ),
    (
        "coo_export_country_unknown",
        "certificate_of_origin",
        "chafta",
        set_(SCC, "exportCountry", "code", value="XK"),
        CountryCodeError,
        "supplyChainConsignment.exportCountry.code",
    ),
    (
        "coo_import_country_integer",
        "certificate_of_origin",
        "chafta",
        set_(SCC, "importCountry", "code", value=156),
        DocumentSchemaError,
        "supplyChainConsignment.importCountry.code",
    ),
    (
        "coo_exporter_name_null",
        "certificate_of_origin",
        "chafta",
        set_(SCC, "exporter", "name", value=None),
        DocumentSchemaError,
        "supplyChainConsignment.exporter.name",
    ),
    (
        "coo_consignment_items_empty",
        "certificate_of_origin",
        "chafta",
        set_(SCC, ICI, value=[]),
        DocumentSchemaError,
        "supplyChainConsignment.includedConsignmentItems",
    ),
    (
        "coo_consignment_items_object",
        "certificate_of_origin",
        "chafta",
        set_(SCC, ICI, value={}),
        DocumentSchemaError,
        "supplyChainConsignment.includedConsignmentItems",
    ),
    (
        "coo_hs_two_digits",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "tradeProduct", "harmonisedTariffCode", "classCode", value="22"),
        HsCodeError,
        LINE_1_PATH + ".tradeProduct.harmonisedTariffCode.classCode",
    ),
    (
        "coo_hs_letters",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "tradeProduct", "harmonisedTariffCode", "classCode", value="2204.AB"),
        HsCodeError,
        LINE_1_PATH + ".tradeProduct.harmonisedTariffCode.classCode",
    ),
    (
        "coo_hs_heading_only",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "tradeProduct", "harmonisedTariffCode", "classCode", value="2204"),
        HsCodeError,
        LINE_1_PATH + ".tradeProduct.harmonisedTariffCode.classCode",
    ),
    (
        "coo_product_origin_missing",
        "certificate_of_origin",
        "chafta",
        delete(*LINE_1, "tradeProduct", "originCountry"),
        DocumentSchemaError,
        LINE_1_PATH + ".tradeProduct.originCountry",
    ),
    (
        "coo_sequence_number_string",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "sequenceNumber", value="2"),
        DocumentSchemaError,
        LINE_1_PATH + ".sequenceNumber",
    ),
    (
        "coo_sequence_number_boolean",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "sequenceNumber", value=True),
        DocumentSchemaError,
        LINE_1_PATH + ".sequenceNumber",
    ),
    (
        "coo_invoice_date_not_rfc3339",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "invoiceReference", "formattedIssueDateTime", value="02/06/2020"),
        DateTimeError,
        LINE_1_PATH + ".invoiceReference.formattedIssueDateTime",
    ),
    (
        "coo_transport_packages_not_array",
        "certificate_of_origin",
        "chafta",
        set_(*LINE_1, "transportPackages", value="4 pallets"),
        DocumentSchemaError,
        LINE_1_PATH + ".transportPackages",
    ),
    (
        "coo_departure_hour_25",
        "certificate_of_origin",
        "chafta",
        set_(
            SCC,
            "mainCarriageTransportMovement",
            "departureEvent",
            "departureDateTime",
            value="2020-06-20T25:30:00Z",
        ),
        DateTimeError,
        "supplyChainConsignment.mainCarriageTransportMovement.departureEvent.departureDateTime",
    ),
    ("coo_document_is_array", "certificate_of_origin", "chafta", replace([]), DocumentSchemaError, ""),
    ("coo_document_is_string", "certificate_of_origin", "chafta", replace("{}"), DocumentSchemaError, ""),
    # customs_declaration
    (
        "decl_missing_declaration_id",
        "customs_declaration",
        "decl_export.json",
        delete("declarationId"),
        DocumentSchemaError,
        "declarationId",
    ),
    (
        "decl_unknown_type_code",
        "customs_declaration",
        "decl_export.json",
        set_("typeCode", value="transit"),
        DocumentSchemaError,
        "typeCode",
    ),
    (
        "decl_type_code_array",
        "customs_declaration",
        "decl_export.json",
        set_("typeCode", value=["export"]),
        DocumentSchemaError,
        "typeCode",
    ),
    (
        "decl_missing_declarant",
        "customs_declaration",
        "decl_import.json",
        delete("declarant"),
        DocumentSchemaError,
        "declarant",
    ),
    (
        "decl_declarant_bad_country",
        "customs_declaration",
        "decl_import.json",
        set_("declarant", "countryCode", value="CHN"),
        CountryCodeError,
        "declarant.countryCode",
    ),
    (
        "decl_destination_country_bad",
        "customs_declaration",
        "decl_import.json",
        set_("destinationCountry", value="UK"),
        CountryCodeError,
        "destinationCountry",
    ),
    (
        "decl_free_zone_entry_without_zone",
        "customs_declaration",
        "decl_free_zone_entry.json",
        delete("freeZoneId"),
        DocumentSchemaError,
        "freeZoneId",
    ),
    (
        "decl_free_zone_exit_without_zone",
        "customs_declaration",
        "decl_free_zone_exit.json",
        delete("freeZoneId"),
        DocumentSchemaError,
        "freeZoneId",
    ),
    (
        "decl_transfer_with_empty_zone",
        "customs_declaration",
        "decl_transfer.json",
        set_("freeZoneId", value=""),
        DocumentSchemaError,
        "freeZoneId",
    ),
    (
        "decl_goods_items_empty",
        "customs_declaration",
        "decl_export.json",
        set_("goodsItems", value=[]),
        DocumentSchemaError,
        "goodsItems",
    ),
    (
        "decl_goods_items_missing",
        "customs_declaration",
        "decl_export.json",
        delete("goodsItems"),
        DocumentSchemaError,
        "goodsItems",
    ),
    (
        "decl_commodity_code_short",
        "customs_declaration",
        "decl_export.json",
        set_("goodsItems", 1, "commodityCode", value="7019"),
        HsCodeError,
        "goodsItems[1].commodityCode",
    ),
    (
        "decl_procedure_code_two_digits",
        "customs_declaration",
        "decl_free_zone_entry.json",
        set_(*GOODS_0, "procedureCode", value="78"),
        ProcedureCodeError,
        "goodsItems[0].procedureCode",
    ),
    (
        "decl_procedure_code_integer",
        "customs_declaration",
        "decl_free_zone_entry.json",
        set_(*GOODS_0, "procedureCode", value=7800),
        DocumentSchemaError,
        "goodsItems[0].procedureCode",
    ),
    (
        "decl_gross_mass_exponent",
        "customs_declaration",
        "decl_export.json",
        set_(*GOODS_0, "grossMassKg", value="1.2e3"),
        DecimalError,
        "goodsItems[0].grossMassKg",
    ),
    (
        "decl_net_mass_negative",
        "customs_declaration",
        "decl_export.json",
        set_(*GOODS_0, "netMassKg", value="-5.00"),
        DecimalError,
        "goodsItems[0].netMassKg",
    ),
    (
        "decl_net_mass_comma",
        "customs_declaration",
        "decl_export.json",
        set_(*GOODS_0, "netMassKg", value="1250,50"),
        DecimalError,
        "goodsItems[0].netMassKg",
    ),
    (
        "decl_value_currency_unknown",
        "customs_declaration",
        "decl_export.json",
        set_(*GOODS_0, "statisticalValue", "currency", value="US$"),
        CurrencyCodeError,
        "goodsItems[0].statisticalValue.currency",
    ),
    (
        "decl_value_currency_withdrawn",
        "customs_declaration",
        "decl_export.json",
        set_(*GOODS_0, "statisticalValue", "currency", value="HRK"),
        CurrencyCodeError,
        "goodsItems[0].statisticalValue.currency",
    ),
    (
        "decl_value_amount_missing",
        "customs_declaration",
        "decl_export.json",
        delete(*GOODS_0, "statisticalValue", "amount"),
        DocumentSchemaError,
        "goodsItems[0].statisticalValue.amount",
    ),
    (
        "decl_supporting_document_without_id",
        "customs_declaration",
        "decl_export.json",
        delete(*GOODS_0, "supportingDocuments", 1, "id"),
        DocumentSchemaError,
        "goodsItems[0].supportingDocuments[1].id",
    ),
    (
        "decl_origin_country_bad",
        "customs_declaration",
        "decl_transfer.json",
        set_(*GOODS_0, "originCountry", value="PRC"),
        CountryCodeError,
        "goodsItems[0].originCountry",
    ),
    (
        "decl_issue_datetime_date_only",
        "customs_declaration",
        "decl_transfer.json",
        set_("issueDateTime", value="2026-12-15"),
        DateTimeError,
        "issueDateTime",
    ),
    (
        "decl_transport_mode_word",
        "customs_declaration",
        "decl_export.json",
        set_("transport", "modeCode", value="sea"),
        DocumentSchemaError,
        "transport.modeCode",
    ),
    (
        "decl_document_is_null",
        "customs_declaration",
        "decl_export.json",
        replace(None),
        DocumentSchemaError,
        "",
    ),
    # light types
    ("invoice_missing_id", "commercial_invoice", "invoice.json", delete("id"), DocumentSchemaError, "id"),
    (
        "invoice_bad_date",
        "commercial_invoice",
        "invoice.json",
        set_("date", value="2026-02-30"),
        DateTimeError,
        "date",
    ),
    (
        "invoice_bill_to_nobody",
        "commercial_invoice",
        "invoice.json",
        replace({"id": "1", "date": "2026-01-01", "billFrom": {"name": "A"}, "billTo": {"email": "x@y"}}),
        DocumentSchemaError,
        "billTo",
    ),
    (
        "invoice_currency_lowercase",
        "commercial_invoice",
        "invoice.json",
        set_("currency", value="usd"),
        CurrencyCodeError,
        "currency",
    ),
    (
        "invoice_item_amount_text",
        "commercial_invoice",
        "invoice.json",
        set_("billableItems", 2, "amount", value="$500"),
        DecimalError,
        "billableItems[2].amount",
    ),
    (
        "bl_missing_number",
        "bill_of_lading",
        "bill_of_lading.json",
        delete("blNumber"),
        DocumentSchemaError,
        "blNumber",
    ),
    (
        "bl_port_bad_locode",
        "bill_of_lading",
        "bill_of_lading.json",
        set_("portOfDischarge", "location", "UNLocationCode", value="IT-RAN"),
        LocodeError,
        "portOfDischarge.location.UNLocationCode",
    ),
    (
        "bl_port_integer",
        "bill_of_lading",
        "bill_of_lading.json",
        set_("portOfLoading", value=1),
        DocumentSchemaError,
        "portOfLoading",
    ),
    (
        "bl_consignee_bad_country",
        "bill_of_lading",
        "bill_of_lading.json",
        set_("consignee", "countryCode", value="ITA"),
        CountryCodeError,
        "consignee.countryCode",
    ),
    (
        "cnm_missing_certification_date",
        "certificate_of_non_manipulation",
        "certificate_of_non_manipulation.json",
        delete("certification", "date"),
        DocumentSchemaError,
        "certification.date",
    ),
    (
        "cnm_origin_country_name",
        "certificate_of_non_manipulation",
        "certificate_of_non_manipulation.json",
        set_("consignment", "originCountryCode", value="EGYPT"),
        CountryCodeError,
        "consignment.originCountryCode",
    ),
]


def mutated(base: str, mutation: Mutation) -> Any:
    doc = chafta() if base == "chafta" else example(base)
    return mutation(doc)


@pytest.mark.parametrize(
    ("doc_type", "base", "mutation", "error", "path"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_document_is_rejected(
    doc_type: str, base: str, mutation: Mutation, error: type[DocumentError], path: str
) -> None:
    with pytest.raises(DocumentError) as info:
        validate_document(doc_type, mutated(base, mutation))
    assert type(info.value) is error
    assert info.value.code == error.code
    assert info.value.path == path


def test_case_ids_are_distinct() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 25


def test_message_states_the_rule_and_str_reads_path_colon_message() -> None:
    doc = mutated("chafta", set_(*LINE_1, "tradeProduct", "harmonisedTariffCode", "classCode", value="22"))
    with pytest.raises(HsCodeError) as info:
        validate_document("certificate_of_origin", doc)
    assert info.value.message == '"22" is not an HS code of at least 6 digits'
    assert str(info.value) == (
        "supplyChainConsignment.includedConsignmentItems[0].tradeLineItems[1]"
        '.tradeProduct.harmonisedTariffCode.classCode: "22" is not an HS code of at least 6 digits'
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_and_conditional_messages() -> None:
    with pytest.raises(DocumentSchemaError, match="required field is missing"):
        validate_document("certificate_of_origin", mutated("chafta", delete("iD")))
    with pytest.raises(DocumentSchemaError, match="required when isPreferential is true"):
        validate_document("certificate_of_origin", mutated("chafta", delete("freeTradeAgreement")))
    with pytest.raises(DocumentSchemaError, match="required when typeCode is transfer"):
        validate_document("customs_declaration", mutated("decl_transfer.json", delete("freeZoneId")))
    with pytest.raises(DocumentSchemaError, match="expected a non-empty string, got integer 5"):
        validate_document("certificate_of_origin", mutated("chafta", set_("name", value=5)))


@pytest.mark.parametrize("doc_type", ["certificate", "", "Certificate_Of_Origin", None, ["bill_of_lading"]])
def test_unknown_doc_type(doc_type: Any) -> None:
    with pytest.raises(UnknownDocTypeError) as info:
        validate_document(doc_type, chafta())
    assert info.value.code == "doc.type_unknown"
    assert info.value.path is None


def test_doc_types() -> None:
    assert sorted(DOC_TYPES) == [
        "bill_of_lading",
        "certificate_of_non_manipulation",
        "certificate_of_origin",
        "commercial_invoice",
        "customs_declaration",
    ]


def test_first_failure_in_field_order_is_reported() -> None:
    doc = chafta()
    doc["issueDateTime"] = "yesterday"
    doc["supplyChainConsignment"]["exportCountry"]["code"] = "ZZ"
    with pytest.raises(DateTimeError):
        validate_document("certificate_of_origin", doc)


# --- document_number and document_summary -------------------------------------------


def test_document_number_of_chafta() -> None:
    assert document_number("certificate_of_origin", chafta()) == "wfa.org.au:coo:WBC208897"


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("coo_preferential.json", "CO-2026-000123"),
        ("decl_export.json", "EG-TEDA-EX-2026-0007781"),
        ("invoice.json", "INV-26-0918"),
        ("bill_of_lading.json", "COSU6421987310"),
        ("certificate_of_non_manipulation.json", "CNM-2026-000311"),
    ],
)
def test_document_number_of_examples(name: str, number: str) -> None:
    assert document_number(EXAMPLE_TYPES[name], example(name)) == number


def test_supporting_document_links_name_registered_numbers() -> None:
    cited = {d["id"] for d in example("decl_export.json")["goodsItems"][0]["supportingDocuments"]}
    assert "EG-TEDA/" + document_number("certificate_of_origin", example("coo_preferential.json")) in cited


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({}, "iD"),
        ({"iD": ""}, "iD"),
        ({"iD": 7}, "iD"),
        ({"iD": "a b"}, "iD"),
        ({"iD": "x" * 129}, "iD"),
        ([], ""),
    ],
)
def test_document_number_rejects_bad_numbers(document: Any, path: str) -> None:
    with pytest.raises(DocumentSchemaError) as info:
        document_number("certificate_of_origin", document)
    assert info.value.path == path


def test_document_number_unknown_type() -> None:
    with pytest.raises(UnknownDocTypeError):
        document_number("packing_list", {"id": "1"})


def test_document_summary() -> None:
    assert document_summary("certificate_of_origin", chafta()) == {
        "number": "wfa.org.au:coo:WBC208897",
        "issued": "2020-06-03T00:46:34Z",
        "issuer": "Australian Grape and Wine Incorporated",
        "exporter": "TREASURY WINE ESTATES VINTNERS LIMITED",
        "importer": "East meets west fine wines",
        "export_country": "AU",
        "import_country": "CN",
        "preferential": "yes",
        "free_trade_agreement": "CHAFTA",
    }
    summary = document_summary("customs_declaration", example("decl_free_zone_entry.json"))
    assert summary["type"] == "free_zone_entry" and summary["free_zone"] == "DJ-DIFTZ"
    assert summary["export_country"] == "EG" and summary["import_country"] == "ET"


@pytest.mark.parametrize("doc_type", sorted(DOC_TYPES))
def test_document_summary_never_raises_on_malformed(doc_type: str) -> None:
    for junk in (None, [], {}, {"iD": 5, "supplyChainConsignment": []}, "text"):
        assert isinstance(document_summary(doc_type, junk), dict)


# --- one verdict for a document as a value and as bytes ------------------------------


def verdict(check: Callable[[], object]) -> tuple[str, str | None] | None:
    """None when ``check`` accepts, else the code and the path of its refusal."""
    try:
        check()
    except DocumentError as exc:
        return exc.code, exc.path
    return None


def verdicts(doc_type: str, document: Any) -> tuple[Any, Any]:
    """(the verdict on the value, the verdict on its RFC 8785 bytes)."""
    data = jcs(document)
    return (
        verdict(lambda: validate_document(doc_type, document)),
        verdict(lambda: validate_document_bytes(doc_type, data)),
    )


BAD_VALUES: list[Any] = [
    None,
    0,
    -1,
    True,
    "",
    " ",
    "x",
    "22",
    "AU",
    "2204.21",
    "2020-06-03T00:46:34Z",
    [],
    [{}],
    {},
]


def mutations_of(document: Any) -> Iterator[Any]:
    """Every document obtained by deleting one member or replacing one value with a bad one."""

    def paths(value: Any, prefix: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield (*prefix, key)
                yield from paths(item, (*prefix, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield (*prefix, index)
                yield from paths(item, (*prefix, index))

    for path in paths(document, ()):
        if isinstance(path[-1], str):
            yield delete(*path)(copy.deepcopy(document))
        for bad in BAD_VALUES:
            yield set_(*path, value=bad)(copy.deepcopy(document))


@pytest.mark.parametrize("name", ["chafta", *sorted(EXAMPLE_TYPES)])
def test_value_and_bytes_agree_on_every_single_mutation(name: str) -> None:
    doc_type = "certificate_of_origin" if name == "chafta" else EXAMPLE_TYPES[name]
    base = chafta() if name == "chafta" else example(name)
    seen = {True: 0, False: 0}
    for doc in mutations_of(base):
        on_value, on_bytes = verdicts(doc_type, doc)
        assert on_value == on_bytes, json.dumps(doc)[:300]
        seen[on_value is None] += 1
    assert seen[True] > 10 and seen[False] > 50, seen


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_every_malformed_case_is_refused_alike_as_bytes(case: tuple[Any, ...]) -> None:
    _, doc_type, base, mutation, error, path = case
    doc = mutated(base, mutation)
    with pytest.raises(DocumentError) as info:
        validate_document_bytes(doc_type, jcs(doc))
    assert type(info.value) is error and info.value.path == path


@pytest.mark.parametrize("name", sorted(EXAMPLE_TYPES))
def test_bytes_give_the_documents_number(name: str) -> None:
    doc = example(name)
    assert validate_document_bytes(EXAMPLE_TYPES[name], jcs(doc)) == document_number(EXAMPLE_TYPES[name], doc)


def test_unknown_doc_type_as_bytes() -> None:
    with pytest.raises(UnknownDocTypeError):
        validate_document_bytes("passport", jcs(chafta()))


# --- what no schema names is still JSON under the document rules -----------------------

GROSS_WEIGHT = (SCC, ICI, 0, "tradeLineItems", 0, "transportPackages", 0, "grossWeight")


def test_float_in_an_unnamed_member_is_refused() -> None:
    # Regression: validate_document accepted transportPackages[0].grossWeight = 450.5,
    # since no schema names grossWeight; DESIGN §2 forbids floats anywhere in a document.
    doc = example("coo_preferential.json")
    at(doc, *GROSS_WEIGHT[:-1])[GROSS_WEIGHT[-1]] = 450.5
    with pytest.raises(DocumentJsonError) as info:
        validate_document("certificate_of_origin", doc)
    assert info.value.code == "doc.json" and "float" in info.value.message
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert b'"grossWeight":450.5' in data
    with pytest.raises(DocumentJsonError) as on_bytes:
        validate_document_bytes("certificate_of_origin", data)
    assert "float" in on_bytes.value.message


@pytest.mark.parametrize("value", [1.0, 450.5, -0.0, 2**53, -(2**53), 10**30])
def test_floats_and_big_integers_are_refused_wherever_they_are(value: Any) -> None:
    for where in ("salt", "iD", "x-extension"):
        doc = example("coo_preferential.json")
        doc[where] = {"deep": [value]} if where == "x-extension" else value
        with pytest.raises(DocumentJsonError):
            validate_document("certificate_of_origin", doc)


def nested_arrays(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_certificate_holding_arrays_300_deep_is_refused_naming_the_limit() -> None:
    doc = example("coo_preferential.json")
    doc["x-nested"] = nested_arrays(300)
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(data) < 6000
    for check in (
        lambda: validate_document("certificate_of_origin", doc),
        lambda: validate_document_bytes("certificate_of_origin", data),
    ):
        with pytest.raises(DocumentJsonError) as info:
            check()
        assert str(MAX_NESTING_DEPTH) in info.value.message and "deep" in info.value.message


@pytest.mark.parametrize("value", [(1, 2), b"bytes", object(), {1: "one"}, {"iD": {None: 1}}])
def test_values_that_are_not_json_are_refused_as_json(value: Any) -> None:
    doc = example("invoice.json")
    doc["x-extension"] = value
    with pytest.raises(DocumentJsonError):
        validate_document("commercial_invoice", doc)
