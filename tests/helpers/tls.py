"""A server-side TLS context with a self-signed certificate for 127.0.0.1, made for one test.

No CA trusts it, so a client that verifies certificates refuses the server; only a client that
verifies nothing gets an answer. Its validity is fixed (2000 to 2100), not read from the clock.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pendulum
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context whose certificate (for 127.0.0.1) is signed by its own key, and that
    certificate's file (a CA bundle that trusts the server)."""
    key = ec.generate_private_key(ec.SECP256R1())
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pendulum.datetime(2000, 1, 1, tz="UTC"))
        .not_valid_after(pendulum.datetime(2100, 1, 1, tz="UTC"))
        .add_extension(loopback, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
