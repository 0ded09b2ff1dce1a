"""Test certificates made with the `openssl` CLI: a CA, and a server certificate for 127.0.0.1 signed by it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    assert tool, "the openssl CLI is needed to make test certificates (apt-get install openssl)"
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class ServerTls:
    """A CA and a server certificate it signed (SAN 127.0.0.1 and localhost), as PEM files and a PKCS#12 bundle."""

    ca_cert: Path
    cert: Path
    key: Path
    pkcs12: Path
    pkcs12_password: str


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key) PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", str(key), "-out", str(cert), cwd=directory)
    return cert, key


def make_server_tls(directory: Path, ca_name: str = "lepton-test-ca", pkcs12_password: str = "changeit") -> ServerTls:
    """A fresh CA and a server certificate for 127.0.0.1/localhost signed by it."""
    ca_cert, ca_key = make_ca(directory, ca_name)
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(csr), cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert), cwd=directory)
    pkcs12 = directory / "server.p12"
    _openssl("pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(ca_cert),
             "-name", "server", "-passout", f"pass:{pkcs12_password}", "-out", str(pkcs12), cwd=directory)
    return ServerTls(ca_cert, cert, key, pkcs12, pkcs12_password)
