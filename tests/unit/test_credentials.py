"""The run's credentials: written once with the right modes, re-loadable, one CA for concurrent creators,
a server certificate that verifies for its hosts in a real mutual-TLS handshake, and matching SSH keys."""
from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key, load_ssh_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from fixtures.credentials import CONTAINER_DIR, DEFAULT_HOSTS, Credentials, CredentialsError

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ["192.0.2.7", "2001:db8::7", "iut.example"]
SECRETS = {"server.key", "server-bundle.pem", "client.key", "ssh_host_ed25519_key", "id_ed25519", "ca.key", "psk.key"}
IO_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return Credentials.create(tmp_path_factory.mktemp("run") / "credentials", HOSTS)


def test_files_exist_with_their_modes(creds: Credentials):
    expected = {"ca.pem", "server.pem", "client.pem", "ssh_host_ed25519_key.pub", "id_ed25519.pub", "authorized_keys",
                "known_hosts", "psk-identity", "credentials.json"} | SECRETS
    present = {p.name for p in creds.folder.iterdir() if not p.name.startswith(".")}
    assert present == expected
    for name in expected:
        mode = stat.S_IMODE((creds.folder / name).stat().st_mode)
        assert mode == (0o600 if name in SECRETS else 0o644), f"{name}: {oct(mode)}"
    assert not list(creds.folder.glob(".*.tmp")), "temporary files left behind"


def test_formats(creds: Credentials):
    assert creds.ca_cert.startswith(b"-----BEGIN CERTIFICATE-----")
    for key in (creds.server_key, creds.client_key, creds.ca_key):
        assert key.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    for key in (creds.ssh_host_key, creds.ssh_user_key):
        assert key.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    for pub in (creds.ssh_host_public_key, creds.ssh_user_public_key):
        assert pub.startswith(b"ssh-ed25519 AAAA") and pub.endswith(b"\n") and len(pub.split()) == 3
    assert creds.server_bundle == creds.server_cert + creds.server_key
    assert creds.psk_identity == b"aliveness-tester" and re.fullmatch(rb"[0-9a-f]{16}", creds.psk_key)


def test_load_gives_the_same_credentials(creds: Credentials):
    again = Credentials.load(creds.folder)
    assert again == creds
    for attr in ("ca_cert", "server_key", "ssh_host_key", "ssh_user_key"):
        assert getattr(again, attr) == getattr(creds, attr)


def test_create_again_reuses_and_refuses_new_hosts(creds: Credentials):
    assert Credentials.create(creds.folder, HOSTS[:1]) == creds
    with pytest.raises(CredentialsError, match="not other.example"):
        Credentials.create(creds.folder, ["other.example"])


def test_load_refuses_missing_or_altered_files(tmp_path: Path):
    with pytest.raises(CredentialsError, match="no credentials here"):
        Credentials.load(tmp_path)
    made = Credentials.create(tmp_path / "c")
    (made.folder / "ca.pem").write_bytes(b"not the CA")
    with pytest.raises(CredentialsError, match="ca.pem does not match"):
        Credentials.load(made.folder)


def test_hosts_include_the_defaults_once(creds: Credentials):
    assert creds.hosts[: len(HOSTS)] == tuple(HOSTS)
    assert set(DEFAULT_HOSTS) <= set(creds.hosts)
    assert len(set(creds.hosts)) == len(creds.hosts)


def test_certificates_name_the_hosts_and_both_usages(creds: Credentials):
    cert = x509.load_pem_x509_certificate(creds.server_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    listed = {str(n) for n in san.get_values_for_type(x509.DNSName)} | {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert listed == set(creds.hosts)
    for pem in (creds.server_cert, creds.client_cert):
        eku = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in eku and ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_container_files_and_placeholders(creds: Credentials):
    files = creds.files_for_container()
    assert all(path.startswith(f"{CONTAINER_DIR}/") for path in files)
    names = {path.rsplit("/", 1)[1] for path in files}
    assert {"ca.pem", "server.pem", "server.key", "client.pem", "client.key", "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub", "id_ed25519", "id_ed25519.pub", "authorized_keys"} <= names
    assert "ca.key" not in names, "the CA's private key never leaves the host"
    for path, (body, mode) in files.items():
        name = path.rsplit("/", 1)[1]
        assert body == (creds.folder / name).read_bytes()
        assert mode == (0o600 if name in SECRETS else 0o644), name
    ph = creds.placeholders()
    assert ph["ca-cert"] == "/etc/aliveness/credentials/ca.pem"
    assert ph["server-cert"].endswith("/server.pem") and ph["server-key"].endswith("/server.key")
    assert ph["client-cert"].endswith("/client.pem") and ph["client-key"].endswith("/client.key")
    assert ph["ssh-host-key"].endswith("/ssh_host_ed25519_key") and ph["ssh-user-key"].endswith("/id_ed25519")
    assert ph["ssh-authorized-keys"].endswith("/authorized_keys")
    assert set(ph.values()) - {str(CONTAINER_DIR)} == set(files), "every placeholder names a file the container gets"
    for key, path in ph.items():
        if key != "credentials-dir":
            assert creds.path(key).read_bytes() == files[path][0]


def test_ssh_keys_load_and_pair(creds: Credentials):
    pairs = [(creds.ssh_host_key, creds.ssh_host_public_key), (creds.ssh_user_key, creds.ssh_user_public_key)]
    for private_pem, public_line in pairs:
        private = load_ssh_private_key(private_pem, password=None)
        public = load_ssh_public_key(public_line)
        assert isinstance(private, Ed25519PrivateKey) and isinstance(public, Ed25519PublicKey)
        raw = Encoding.Raw, PublicFormat.Raw
        assert private.public_key().public_bytes(*raw) == public.public_bytes(*raw)
        signature = private.sign(b"aliveness")
        public.verify(signature, b"aliveness")
    assert creds.ssh_host_public_key != creds.ssh_user_public_key
    assert creds.ssh_user_public_key.strip() in creds.authorized_keys.splitlines()
    assert creds.ssh_host_public_key.strip() in {line.split(b" ", 1)[1] for line in creds.known_hosts.splitlines()}


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str) -> dict:
    """A TLS handshake over a socketpair, the server in a thread; returns what each side saw (bounded)."""
    a, b = socket.socketpair()
    a.settimeout(IO_TIMEOUT)
    b.settimeout(IO_TIMEOUT)
    seen: dict = {}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as tls:
                seen["client_cert"] = tls.getpeercert()
                tls.sendall(tls.recv(5).upper())  # TLS 1.3 checks the client's certificate after the client's Finished
        except (OSError, ssl.SSLError) as err:
            seen["server_error"] = err

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=server_hostname) as tls:
            seen["server_cert"] = tls.getpeercert()
            tls.sendall(b"hello")
            seen["echo"] = tls.recv(5)
    except (OSError, ssl.SSLError) as err:
        seen["client_error"] = err
    finally:
        b.close()
        thread.join(IO_TIMEOUT)
        a.close()
    assert not thread.is_alive(), "the server side did not finish in time"
    return seen


@pytest.mark.parametrize("host", ["192.0.2.7", "2001:db8::7", "iut.example", "iut", "tester", "localhost", "127.0.0.1"])
def test_mutual_tls_handshake_verifies_each_host(creds: Credentials, host: str):
    seen = _handshake(creds.server_ssl_context(), creds.client_ssl_context(), host)
    assert "client_error" not in seen and "server_error" not in seen, seen
    assert seen["echo"] == b"HELLO"
    subject = dict(item for rdn in seen["client_cert"]["subject"] for item in rdn)
    assert subject["commonName"] == "aliveness-tester"


def test_handshake_refuses_a_host_not_in_the_certificate(creds: Credentials):
    seen = _handshake(creds.server_ssl_context(), creds.client_ssl_context(), "elsewhere.example")
    assert isinstance(seen.get("client_error"), ssl.SSLCertVerificationError), seen


def test_server_requires_a_client_certificate(creds: Credentials):
    seen = _handshake(creds.server_ssl_context(), creds.client_ssl_context(with_client_cert=False), "iut")
    assert isinstance(seen.get("server_error"), ssl.SSLError), seen
    assert "echo" not in seen or seen["echo"] == b"", seen


def test_another_run_gets_another_ca(creds: Credentials, tmp_path: Path):
    other = Credentials.create(tmp_path / "credentials", HOSTS)
    assert other.ca_cert != creds.ca_cert and other.ssh_host_key != creds.ssh_host_key
    seen = _handshake(creds.server_ssl_context(), other.client_ssl_context(), "iut")
    assert isinstance(seen.get("client_error"), ssl.SSLCertVerificationError), seen


def test_issued_by_the_run_ca(creds: Credentials):
    leaf = creds.trustme_ca().issue_cert("extra.example")
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    ca = x509.load_pem_x509_certificate(creds.ca_cert)
    cert.verify_directly_issued_by(ca)


CREATOR = """
import hashlib, sys, time
from pathlib import Path
from fixtures.credentials import Credentials
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # all creators race from the same instant
creds = Credentials.create(Path(sys.argv[1]), ["192.0.2.7", "iut.example"])
print(hashlib.sha256(creds.ca_cert).hexdigest())
"""


def test_concurrent_creators_share_one_ca(tmp_path: Path):
    folder = tmp_path / "credentials"
    start = time.time() + 3.0  # after every interpreter has started and imported cryptography
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(folder), str(start)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outputs.append(out.strip())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    on_disk = hashlib.sha256((folder / "ca.pem").read_bytes()).hexdigest()
    assert set(outputs) == {on_disk}
    index = json.loads((folder / "credentials.json").read_text())
    assert Credentials.load(folder).hosts == tuple(index["hosts"])
    assert not list(folder.glob(".*.tmp"))
