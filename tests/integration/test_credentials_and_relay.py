"""The run's key material reaches an IUT's container, and a protocol library in the pytest process talks to
the IUT through the tester agent: socat as a TLS echo server with the run's server certificate, demanding a
client certificate from the run's CA; Python's ssl module as the client, over a StreamRelay."""
from __future__ import annotations

import ssl
import uuid

import pytest

from fixtures.capture import Capture
from fixtures.credentials import Credentials
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import RunningIut, load_manifest
from fixtures.pods import start_tester
from fixtures.testers.relay import StreamRelay
from fixtures.testers.tcp import TcpTester
from tests.conftest import ROOT, engine_available

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")

MANIFEST = f"""
name = "socat-tls"
[image]
build = "{ROOT / 'peers' / 'socat'}"
[tcp.server]
port = 7443
command = "socat -d -d OPENSSL-LISTEN:{{port}},reuseaddr,fork,cert={{server-cert-and-key}},cafile={{ca-cert}},verify=1 EXEC:cat"
"""


def test_a_tls_library_reaches_the_iut_through_the_agent_with_the_runs_certificates(tmp_path):
    (tmp_path / "peer.toml").write_text(MANIFEST)
    manifest = load_manifest(tmp_path / "peer.toml")
    credentials = Credentials.create(tmp_path / "credentials")
    run = RunContext(run_id=f"creds-{uuid.uuid4().hex[:8]}")
    try:
        net = CaseNetwork(run, "creds")
        iut = RunningIut(run, net, manifest, "tcp", "server", None, credentials=credentials)
        capture = Capture(iut.sidecar, tmp_path / "c.pcap")
        tester = TcpTester(start_tester(run, net, 3))
        iut.start()
        iut.wait_ready()
        relay = StreamRelay(tester, tester.connect(iut.address, 7443))
        relay.socket.settimeout(10)
        with credentials.client_ssl_context().wrap_socket(relay.socket, server_hostname="iut") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"through the agent")
            assert tls.recv(100) == b"through the agent"
        # The capture in the IUT's namespace shows the TLS records crossing (content type 23 = application data).
        assert capture.wait_for(lambda tl: tl.count("data") >= 4, 5)
        # Without a client certificate the IUT refuses the connection: an alert (an error here) or a bare
        # close (an empty read; with TLS 1.3 the server judges the certificate after the client's Finished).
        bare = StreamRelay(tester, tester.connect(iut.address, 7443))
        bare.socket.settimeout(10)
        try:
            with credentials.client_ssl_context(with_client_cert=False).wrap_socket(bare.socket, server_hostname="iut") as tls:
                tls.sendall(b"x")
                answer = tls.recv(1)
        except (ssl.SSLError, ConnectionError, OSError) as err:
            answer = f"refused: {err}"
        assert answer != b"x", "the IUT echoed to a client without a certificate"
        relay.close()
        bare.close()
        tester.stop()
        capture.stop()
    finally:
        run.teardown()
