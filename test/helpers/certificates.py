"""A throwaway CA and a server certificate for an IP address (127.0.0.1 by default), made by the openssl CLI,
for the TLS tests and the emulator of the pipelines run by bitbucket-pipeline-runner."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"openssl {' '.join(args[:2])} failed: {r.stderr}")


def make_ca(directory: Path) -> tuple[Path, Path]:
    """A CA valid for a day: (certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed for the TLS tests: install openssl (`bash .ci/run` does)")
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
            "-subj", "/CN=throwaway test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca, ca_key


def make_server_cert(ca: Path, ca_key: Path, address: str, cert: Path, key: Path) -> None:
    """A certificate for the IP `address`, signed by the CA, written to `cert` with its key in `key`."""
    csr, extensions = cert.with_suffix(".csr"), cert.with_suffix(".ext")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={address}")
    extensions.write_text(f"subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                          "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "1", "-extfile", str(extensions))


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA valid for a day, and a certificate for 127.0.0.1 signed by it."""
    ca, ca_key = make_ca(directory)
    cert, key = directory / "server.crt", directory / "server.key"
    make_server_cert(ca, ca_key, "127.0.0.1", cert, key)
    return ca, cert, key
