"""The control plane's certificates and keys: one CA, the apiserver's serving certificate,
client certificates per component, and the service-account signing key.

Pure functions return PEM bytes; `write_pki` puts them on disk with private modes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)
# The in-cluster names of the API server, so pods (and tests acting as them) can verify it.
APISERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ClientIdentity:
    """A user the API server authenticates by client certificate: CN is the name, O the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in microseconds, unlike RSA; every component accepts them.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    # Backdated a little so that clocks a few seconds apart never see a not-yet-valid cert.
    return now - dt.timedelta(minutes=5), now + VALIDITY


def make_ca(common_name: str = "optikube-testcluster-ca") -> KeyPair:
    key = _new_key()
    not_before, not_after = _validity(dt.datetime.now(dt.UTC))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _issue(
    ca: KeyPair,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an EC key made by make_ca")
    key = _new_key()
    not_before, not_after = _validity(dt.datetime.now(dt.UTC))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_serving_cert(ca: KeyPair, ip_addresses: tuple[str, ...]) -> KeyPair:
    return _issue(
        ca, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, APISERVER_DNS_NAMES, ip_addresses
    )


def make_client_cert(ca: KeyPair, identity: ClientIdentity) -> KeyPair:
    return _issue(ca, _name(identity.user, identity.groups), ExtendedKeyUsageOID.CLIENT_AUTH)


def make_kubelet_serving_cert(ca: KeyPair, node: str, ip_address: str) -> KeyPair:
    """A real kubelet's serving certificate (its port 10250), for the node's name and InternalIP,
    which is what the apiserver dials (--kubelet-preferred-address-types=InternalIP)."""
    subject = _name(f"system:node:{node}", ("system:nodes",))
    return _issue(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, (node,), (ip_address,))


def kubelet_identity(node: str) -> ClientIdentity:
    """A kubelet's client identity, as the Node authorizer wants it: it may then read only what
    its own pods need (their secrets, configmaps, service-account tokens)."""
    return ClientIdentity(f"kubelet-{node}", f"system:node:{node}", ("system:nodes",))


def load_keypair(directory: Path, stem: str) -> KeyPair:
    return KeyPair((directory / f"{stem}.crt").read_bytes(), (directory / f"{stem}.key").read_bytes())


def make_signing_key() -> tuple[bytes, bytes]:
    """The service-account token signing key: (private PEM, public PEM)."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


def _write(path: Path, data: bytes, private: bool) -> None:
    path.write_bytes(data)
    path.chmod(0o600 if private else 0o644)


def write_keypair(directory: Path, stem: str, pair: KeyPair) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    _write(cert_path, pair.cert_pem, private=False)
    _write(key_path, pair.key_pem, private=True)
    return cert_path, key_path


def write_signing_key(directory: Path) -> tuple[Path, Path]:
    private, public = make_signing_key()
    key_path, pub_path = directory / "service-account.key", directory / "service-account.pub"
    _write(key_path, private, private=True)
    _write(pub_path, public, private=False)
    return key_path, pub_path
