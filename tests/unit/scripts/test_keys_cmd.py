"""zoneledger keygen / genesis: key files, the genesis draft, and one-line failures."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ledger.genesis import Genesis
from ledger.keys import SigningKey
from scripts.cli import main
from scripts.devkit import ALLIANCE_ZONES


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_writes_a_private_pem_and_prints_only_the_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys" / "officer.pem"
    code, out, err = run(["keygen", "--out", str(path)], capsys)
    assert code == 0 and err == ""
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = SigningKey.load(path)
    assert out.strip() == key.public.hex()
    assert "PRIVATE" not in out


def test_keygen_encrypts_with_the_passphrase_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZL_TEST_PASS", "correct horse")
    path = tmp_path / "admin.pem"
    code, out, _ = run(["keygen", "--out", str(path), "--passphrase-env", "ZL_TEST_PASS"], capsys)
    assert code == 0
    assert b"ENCRYPTED" in path.read_bytes()
    assert SigningKey.load(path, b"correct horse").public.hex() == out.strip()


def test_keygen_without_the_passphrase_variable_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZL_TEST_UNSET", raising=False)
    code, _, err = run(["keygen", "--out", str(tmp_path / "k.pem"), "--passphrase-env", "ZL_TEST_UNSET"], capsys)
    assert code != 0
    assert err.count("\n") == 1 and "ZL_TEST_UNSET" in err
    assert not (tmp_path / "k.pem").exists()


def test_keygen_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k.pem"
    assert run(["keygen", "--out", str(path)], capsys)[0] == 0
    before = path.read_bytes()
    code, _, err = run(["keygen", "--out", str(path)], capsys)
    assert code == 1 and err.startswith("zoneledger: key.file_invalid:")
    assert path.read_bytes() == before


def keygen(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    path = tmp_path / f"{name}.pem"
    code, out, _ = run(["keygen", "--out", str(path)], capsys)
    assert code == 0
    return path, out.strip()


def test_genesis_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genesis = tmp_path / "genesis.json"
    code, _, err = run(
        ["genesis", "init", "--chain-id", "sez-alliance-1", "--out", str(genesis), "--time", "2026-11-26T00:00:00Z"],
        capsys,
    )
    assert code == 0, err
    draft = json.loads(genesis.read_text())
    assert draft["zones"] == [] and draft["auditors"] == []
    assert draft["consensus"]["timeout_propose_ms"] == 1000

    code, out, _ = run(["genesis", "show", str(genesis)], capsys)
    assert code == 0 and "no zones yet" in out

    expected_validators = []
    for index, (zone_id, name, country) in enumerate(ALLIANCE_ZONES[:4]):
        admin_path, _ = keygen(tmp_path, f"admin{index}", capsys)
        validator_path, validator_hex = keygen(tmp_path, f"validator{index}", capsys)
        _, officer_hex = keygen(tmp_path, f"officer{index}", capsys)
        expected_validators.append(validator_hex)
        # Keys given as a private PEM, a public PEM and hex all work.
        public_pem = tmp_path / f"admin{index}.pub.pem"
        private = serialization.load_pem_private_key(admin_path.read_bytes(), password=None)
        public_pem.write_bytes(private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))
        code, _, err = run([
            "genesis", "add-zone", str(genesis), "--zone-id", zone_id, "--name", name, "--country", country,
            "--admin-key", str(public_pem), "--validator-key", str(validator_path), "--officer", officer_hex,
        ], capsys)
        assert code == 0, err
    _, auditor_hex = keygen(tmp_path, "auditor", capsys)
    code, _, err = run(["genesis", "add-auditor", str(genesis), "--key", auditor_hex], capsys)
    assert code == 0, err

    loaded = Genesis.load(genesis)
    assert loaded.chain_id == "sez-alliance-1"
    assert [v.hex() for v in loaded.validators] == expected_validators
    assert [z.zone_id for z in loaded.zones] == [z[0] for z in ALLIANCE_ZONES[:4]]
    assert [a.hex() for a in loaded.auditors] == [auditor_hex]
    assert loaded.zones[0].admin_key == SigningKey.load(tmp_path / "admin0.pem").public

    code, out, _ = run(["genesis", "show", str(genesis)], capsys)
    assert code == 0
    assert loaded.genesis_hash.hex() in out
    assert all(v in out for v in expected_validators)


@pytest.fixture
def draft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    genesis = tmp_path / "genesis.json"
    assert run(["genesis", "init", "--chain-id", "sez-test", "--out", str(genesis)], capsys)[0] == 0
    return genesis


def add_zone(genesis: Path, zone_id: str, seed: str, capsys: pytest.CaptureFixture[str],
             country: str = "EG") -> tuple[int, str]:
    admin = SigningKey.from_label(f"{seed} admin").public.hex()
    validator = SigningKey.from_label(f"{seed} validator").public.hex()
    code, _, err = run([
        "genesis", "add-zone", str(genesis), "--zone-id", zone_id, "--name", zone_id, "--country", country,
        "--admin-key", admin, "--validator-key", validator,
    ], capsys)
    return code, err


def test_duplicate_zone_is_refused_in_one_line(draft: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add_zone(draft, "EG-TEDA", "a", capsys)[0] == 0
    before = draft.read_bytes()
    code, err = add_zone(draft, "EG-TEDA", "b", capsys)
    assert code == 1
    assert err == f"zoneledger: genesis.invalid: zone EG-TEDA is already in {draft}\n"
    assert draft.read_bytes() == before


def test_reused_validator_key_is_refused(draft: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add_zone(draft, "EG-TEDA", "same", capsys)[0] == 0
    code, err = add_zone(draft, "DJ-DIFTZ", "same", capsys)
    assert code == 1 and err.startswith("zoneledger: genesis.invalid:") and err.count("\n") == 1


def test_bad_country_is_refused_and_the_file_is_unchanged(draft: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = draft.read_bytes()
    code, err = add_zone(draft, "EG-TEDA", "a", capsys, country="XX")
    assert code == 1 and "country" in err
    assert draft.read_bytes() == before


def test_duplicate_auditor_is_refused(draft: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = SigningKey.from_label("auditor").public.hex()
    assert run(["genesis", "add-auditor", str(draft), "--key", key], capsys)[0] == 0
    code, _, err = run(["genesis", "add-auditor", str(draft), "--key", key], capsys)
    assert code == 1 and "already" in err


def test_key_that_is_neither_hex_nor_a_file(draft: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["genesis", "add-auditor", str(draft), "--key", "no-such-file.pem"], capsys)
    assert code == 1 and err.startswith("zoneledger: key.file_invalid: --key:") and err.count("\n") == 1


def test_init_refuses_a_bad_chain_id_and_an_existing_file(
    draft: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["genesis", "init", "--chain-id", "Not Valid", "--out", str(tmp_path / "g2.json")], capsys)
    assert code == 1 and "chain_id" in err
    assert not (tmp_path / "g2.json").exists()
    code, _, err = run(["genesis", "init", "--chain-id", "sez-test", "--out", str(draft)], capsys)
    assert code == 1 and "--force" in err


def test_missing_required_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["genesis", "add-zone"])
    assert exc.value.code == 2
