"""zoneledger join-request, without a node: the file's contents, possession that
verifies by the ledger's own rule, key files made or reused, and one-line failures."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import errors
from ledger.governance import Possession, validate_possession
from ledger.keys import SigningKey
from scripts.cli import main
from scripts.join_cmd import JOIN_REQUEST_FORMAT, JoinRequest, read_join_request

CHAIN = "sez-alliance-test"
ZONE = "HU-CSEPEL"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def join_argv(tmp_path: Path, admin: str = "admin.pem", validator: str = "validator.pem", *extra: str) -> list[str]:
    """A join-request command line; a key given by file name is a file in ``tmp_path``."""

    def spec(name: str) -> str:
        return name if len(name) == 64 or os.path.isabs(name) else str(tmp_path / name)

    return [
        "join-request", "--chain-id", CHAIN, "--zone-id", ZONE, "--name", "Csepel Free Port", "--country", "HU",
        "--admin-key", spec(admin), "--validator-key", spec(validator), "--out", str(tmp_path / "join.json"), *extra,
    ]


def read(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def verify(request: dict[str, Any], *, new_admin: bool = True, new_validator: bool = True) -> None:
    possession = Possession(
        bytes.fromhex(request["possession"]["admin_sig"]) if "admin_sig" in request["possession"] else None,
        bytes.fromhex(request["possession"]["validator_sig"]) if "validator_sig" in request["possession"] else None,
    )
    validate_possession(
        possession, request["chain_id"], request["zone_id"], bytes.fromhex(request["admin_key"]),
        bytes.fromhex(request["validator_key"]), new_admin=new_admin, new_validator=new_validator,
    )


def test_new_keys_are_generated_0600_and_their_possession_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(join_argv(tmp_path), capsys)
    assert (code, err) == (0, "")
    admin, validator = SigningKey.load(tmp_path / "admin.pem"), SigningKey.load(tmp_path / "validator.pem")
    for name in ("admin.pem", "validator.pem"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
        assert f"generated {tmp_path / name}" in out
    request = read(tmp_path / "join.json")
    assert request == {
        "format": JOIN_REQUEST_FORMAT, "chain_id": CHAIN, "zone_id": ZONE, "name": "Csepel Free Port",
        "country": "HU", "admin_key": admin.public.hex(), "validator_key": validator.public.hex(),
        "possession": request["possession"],
    }
    assert set(request["possession"]) == {"admin_sig", "validator_sig"}
    verify(request)
    # a claim for another chain, zone or pair does not verify
    for field, other in (("chain_id", "another-chain"), ("zone_id", "HU-OTHER"), ("admin_key", "11" * 32)):
        with pytest.raises(errors.GovPossessionError):
            verify({**request, field: other})
    assert admin.public.hex() in out and validator.public.hex() in out


def test_no_private_key_material_leaves_the_key_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, err = run(join_argv(tmp_path), capsys)
    text = (tmp_path / "join.json").read_text() + out + err
    assert "PRIVATE" not in text
    for name in ("admin.pem", "validator.pem"):
        pem = (tmp_path / name).read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        assert raw.hex() not in text


def test_existing_key_files_are_used_not_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin, validator = SigningKey.generate(), SigningKey.generate()
    admin.save(tmp_path / "admin.pem")
    validator.save(tmp_path / "validator.pem")
    code, out, _ = run(join_argv(tmp_path), capsys)
    assert code == 0 and "generated" not in out
    request = read(tmp_path / "join.json")
    assert (request["admin_key"], request["validator_key"]) == (admin.public.hex(), validator.public.hex())
    verify(request)
    assert SigningKey.load(tmp_path / "admin.pem").public == admin.public


def test_a_key_named_by_its_public_key_signs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rotation request: the zone keeps its admin key, whose private half it may not even hold."""
    private = Ed25519PrivateKey.generate()
    current_admin = SigningKey(private)
    public_pem = tmp_path / "admin.pub"
    public_pem.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
    ))
    for spec in (current_admin.public.hex(), str(public_pem)):
        code, out, _ = run(join_argv(tmp_path, spec, "validator.pem", "--force"), capsys)
        assert code == 0 and "not signed" in out
        request = read(tmp_path / "join.json")
        assert request["admin_key"] == current_admin.public.hex()
        assert set(request["possession"]) == {"validator_sig"}
        verify(request, new_admin=False)
        with pytest.raises(errors.GovPossessionError):
            verify(request)  # as a zone.add, which needs both signatures


def test_new_keys_are_encrypted_with_the_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZL_JOIN_PASS", "correct horse")
    code, _, _ = run(join_argv(tmp_path, "admin.pem", "validator.pem", "--passphrase-env", "ZL_JOIN_PASS"), capsys)
    assert code == 0
    with pytest.raises(errors.KeyPassphraseError):
        SigningKey.load(tmp_path / "admin.pem")
    key = SigningKey.load(tmp_path / "admin.pem", b"correct horse")
    assert read(tmp_path / "join.json")["admin_key"] == key.public.hex()


@pytest.mark.parametrize(("change", "message"), [
    (("--zone-id", "hu-csepel"), "zoneledger: --zone-id: expected a zone id"),
    (("--country", "XX"), "zoneledger: --country: expected an ISO 3166-1 alpha-2 code"),
    (("--name", ""), "zoneledger: --name: expected 1 to 255 characters, got 0"),
    (("--name", "x" * 256), "zoneledger: --name: expected 1 to 255 characters, got 256"),
])
def test_bad_zone_arguments_are_one_line_and_make_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], message: str
) -> None:
    argv = join_argv(tmp_path)
    argv[argv.index(change[0]) + 1] = change[1]
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "") and err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "admin.pem").exists() and not (tmp_path / "join.json").exists()


def test_one_key_for_both_roles_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(join_argv(tmp_path, "same.pem", "same.pem"), capsys)
    assert code == 2 and "expected two different keys" in err and not (tmp_path / "same.pem").exists()
    key = SigningKey.generate()
    key.save(tmp_path / "a.pem")
    (tmp_path / "b.pem").write_bytes((tmp_path / "a.pem").read_bytes())
    code, _, err = run(join_argv(tmp_path, "a.pem", "b.pem"), capsys)
    assert code == 1 and err.startswith("zoneledger: gov.duplicate_key: ")


def test_an_existing_request_is_replaced_only_with_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(join_argv(tmp_path), capsys)[0] == 0
    first = read(tmp_path / "join.json")
    code, _, err = run(join_argv(tmp_path, "admin2.pem", "validator2.pem"), capsys)
    assert code == 2 and "--force" in err and not (tmp_path / "admin2.pem").exists()
    assert run(join_argv(tmp_path, "admin2.pem", "validator2.pem", "--force"), capsys)[0] == 0
    assert read(tmp_path / "join.json")["admin_key"] != first["admin_key"]


def test_missing_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["join-request", "--chain-id", CHAIN, "--zone-id", ZONE])
    assert exc.value.code == 2


# --- reading a request back ----------------------------------------------------------


def test_a_written_request_reads_back_as_the_same_claim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(join_argv(tmp_path), capsys)
    request = read_join_request(str(tmp_path / "join.json"))
    assert request.chain_id == CHAIN and request.zone.zone_id == ZONE
    assert request.to_json() == read(tmp_path / "join.json")
    assert JoinRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(("edit", "error"), [
    (lambda r: r.update(format="zoneledger-join-request/9"), errors.MalformedTransactionError),
    (lambda r: r.update(admin_key="not hex"), errors.MalformedTransactionError),
    (lambda r: r.update(admin_key="ab" * 31), errors.EncodingError),
    (lambda r: r.update(country="ZZ"), errors.MalformedTransactionError),
    (lambda r: r.pop("name"), errors.EncodingError),
    (lambda r: r["possession"].update(other_sig="00" * 64), errors.MalformedTransactionError),
])
def test_a_malformed_request_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, error: type[errors.LedgerError]
) -> None:
    run(join_argv(tmp_path), capsys)
    request = read(tmp_path / "join.json")
    edit(request)
    path = tmp_path / "join.json"
    path.write_text(json.dumps(request))
    with pytest.raises(error) as caught:
        read_join_request(str(path))
    assert str(caught.value).startswith(str(path))


def test_a_request_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "join.json"
    path.write_text("{not json")
    with pytest.raises(errors.JsonError) as caught:
        read_join_request(str(path))
    assert str(path) in str(caught.value)
