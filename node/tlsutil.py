"""Throwaway X.509 material for devnets and tests: an alliance CA and the certificates it issues.

Production zones bring their own PKI; this module only makes a private CA in a
directory so a local network (or a test) can run peers over verified TLS. Keys are
EC P-256 (fast to make), written as unencrypted PKCS#8 PEM with mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=365)
# Certificates start an hour in the past so a peer whose clock lags still accepts them.
CLOCK_SLACK = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CertAuthority:
    """A CA certificate with its private key, in memory and on disk."""

    cert: x509.Certificate
    """The self-signed CA certificate."""
    key: ec.EllipticCurvePrivateKey
    """The CA's signing key."""
    cert_path: Path
    """PEM file of ``cert`` (what peers pass as ``TlsConfig.ca_file``)."""
    key_path: Path
    """PEM file of ``key`` (mode 0600)."""

    @classmethod
    def load(cls, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> CertAuthority:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: expected an EC private key, got {type(key).__name__}")
        return cls(cert, key, Path(cert_path), Path(key_path))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start, so the key is never world-readable even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_test_ca(directory: str | os.PathLike[str], name: str = "zoneledger test CA") -> CertAuthority:
    """Make a CA in ``directory`` (``ca.pem``, ``ca.key``)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SLACK)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = target / "ca.pem", target / "ca.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return CertAuthority(cert, key, cert_path, key_path)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_cert(
    ca: CertAuthority, directory: str | os.PathLike[str], hosts: Sequence[str], *, name: str | None = None
) -> tuple[Path, Path]:
    """Issue a certificate for ``hosts`` (IP addresses and DNS names) signed by ``ca``.

    Usable both as a server certificate and as a client certificate (mutual TLS).
    Returns ``(cert_path, key_path)``; the files are named after ``name`` (default: the
    first host).
    """
    if not hosts:
        raise ValueError("hosts: expected at least one IP address or DNS name, got none")
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    stem = name or hosts[0]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SLACK)
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = target / f"{stem}.pem", target / f"{stem}.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path
