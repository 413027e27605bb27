"""The TLS tester (fixtures/testers/tls.py) between two tlslite-ng endpoints in this process, over a socket pair.

Its record-level access and its Hello patch use tlslite-ng internals; these tests exercise each of them, so an
upgrade of tlslite-ng that moves one fails here, loudly, before any case misreads an IUT.
"""
from __future__ import annotations

import socket
import threading

import pytest
import trustme

from fixtures.testers.tls import (
    HEARTBEAT,
    INVALID_MODE,
    MAX_MESSAGE,
    PEER_ALLOWED_TO_SEND,
    PEER_NOT_ALLOWED_TO_SEND,
    REQUEST,
    RESPONSE,
    HeartbeatMessage,
    TlsTester,
    heartbeat,
)


@pytest.fixture(scope="module")
def server_credentials() -> tuple[str, str]:
    cert = trustme.CA().issue_cert("iut")
    return cert.cert_chain_pems[0].bytes().decode(), cert.private_key_pem.bytes().decode()


def pair(credentials, version: str, client_mode, server_mode=PEER_ALLOWED_TO_SEND):
    """A client and a server TlsTester after their handshake (the server's in a thread)."""
    a, b = socket.socketpair()
    client, server = TlsTester(a, timeout=10), TlsTester(b, timeout=10)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("server", server.handshake(version, server_mode, server=credentials)))
    thread.start()
    client_result = client.handshake(version, client_mode)
    thread.join(10)
    return client, server, client_result, done["server"]


def test_a_heartbeat_message_is_built_and_parsed_whatever_its_length_claims():
    body = heartbeat(REQUEST, b"abc", padding=20)
    parsed = HeartbeatMessage.parse(body)
    assert (parsed.kind, parsed.declared, parsed.payload, len(parsed.padding), parsed.size) == (REQUEST, 3, b"abc", 20, 26)
    assert parsed.complete
    overlong = HeartbeatMessage.parse(heartbeat(REQUEST, b"abc", padding=16, declared=2**14))
    assert not overlong.complete and len(overlong.payload) == 3 + 16 and overlong.padding == b""
    assert "the record holds only 19" in overlong.describe()
    assert HeartbeatMessage.parse(b"\x01\x00") is None


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("mode", [PEER_ALLOWED_TO_SEND, PEER_NOT_ALLOWED_TO_SEND])
def test_the_hello_carries_the_chosen_mode_and_the_peer_s_is_read(server_credentials, version, mode):
    client, server, got, served = pair(server_credentials, version, mode)
    assert got.ok and served.ok, (got, served)
    assert got.version == served.version == version
    assert served.peer_modes == [mode]  # what the client's Hello said, as the server read it
    assert got.peer_modes == [PEER_ALLOWED_TO_SEND]  # tlslite-ng's server answers peer_allowed_to_send


def test_an_invalid_mode_draws_illegal_parameter_from_tlslite(server_credentials):
    a, b = socket.socketpair()
    client, server = TlsTester(a, timeout=10), TlsTester(b, timeout=10)
    thread = threading.Thread(target=lambda: server.handshake("1.2", PEER_ALLOWED_TO_SEND, server=server_credentials))
    thread.start()
    got = client.handshake("1.2", INVALID_MODE)
    thread.join(10)
    assert not got.ok and got.alert == "illegal_parameter", got


def test_no_extension_leaves_both_hellos_without_one(server_credentials):
    client, server, got, served = pair(server_credentials, "1.2", None)
    assert got.ok and got.peer_modes == [] and served.peer_modes == []


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_raw_heartbeats_cross_both_ways_malformed_and_oversized_included(server_credentials, version):
    client, server, got, served = pair(server_credentials, version, PEER_ALLOWED_TO_SEND)
    assert got.ok and served.ok
    client.start_reading()
    server.start_reading()
    sent = client.send_heartbeat(REQUEST, b"overlong", declared=2**14)
    arrived = server.wait_for(lambda: server.heartbeats(REQUEST), 5, what="the request")
    assert arrived and arrived[0][1].declared == 2**14 and arrived[0][1].payload.startswith(b"overlong")
    assert arrived[0][0].body == sent.body  # the record's plaintext, octet for octet
    # A reply past the 2^14 limit (a leaking peer's) still reaches the client's log, as evidence.
    big = b"m" * (MAX_MESSAGE + 100)
    server.send(HEARTBEAT, bytes([RESPONSE]) + len(big).to_bytes(2, "big") + big + bytes(16))
    answer = client.wait_for(lambda: client.heartbeats(RESPONSE), 5, what="the response")
    assert answer and answer[0][1].payload == big and answer[0][1].size == len(big) + 19
    client.close()
    assert server.wait_for(lambda: server.ended, 5, what="the end")
    assert server.ended[1] == "the IUT closed the connection"


def test_alpn_coap_is_offered_and_agreed_without_a_heartbeat_extension(server_credentials):
    """CoAP over TLS (RFC 8323 §4.1): the client offers ALPN "coap" and no heartbeat extension."""
    a, b = socket.socketpair()
    client, server = TlsTester(a, timeout=10), TlsTester(b, timeout=10)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault(
        "server", server.handshake("1.2", None, server=server_credentials, alpn=(b"coap",))))
    thread.start()
    result = client.handshake("1.2", None, alpn=(b"coap",))
    thread.join(10)
    assert result.ok and done["server"].ok
    assert client.alpn == b"coap" and server.alpn == b"coap"
    assert result.peer_modes == []


@pytest.mark.parametrize("answering", [True, False])
def test_a_close_notify_is_answered_and_the_session_closed_only_where_asked(server_credentials, answering):
    from fixtures.testers.tls import ALERT

    client, server, got, served = pair(server_credentials, "1.2", PEER_ALLOWED_TO_SEND)
    assert got.ok and served.ok
    server.answer_close_notify = answering
    client.start_reading()
    server.start_reading()
    client.send(ALERT, b"\x01\x00")
    if answering:
        assert client.wait_for(lambda: client.alerts(), 5, what="the answer")[0].body == b"\x01\x00"
        assert client.wait_for(lambda: client.ended, 5, what="the close")
    else:
        assert server.wait_for(lambda: server.alerts(), 5, what="the close_notify")
        assert not client.alerts() and client.ended is None
    client.close()
    server.close()


def test_every_record_the_reader_logs_reaches_on_record_and_a_failing_listener_stops_nothing(server_credentials):
    from fixtures.testers.tls import APPLICATION_DATA

    client, server, got, served = pair(server_credentials, "1.2", PEER_ALLOWED_TO_SEND)
    assert got.ok and served.ok
    seen = []

    def listener(record):
        seen.append(record.body)
        raise RuntimeError("a listener's own trouble")

    server.on_record = listener
    server.start_reading()
    client.send(APPLICATION_DATA, b"one")
    client.send(APPLICATION_DATA, b"two")
    assert server.wait_for(lambda: len(server.received()) >= 2, 5, what="both records")
    assert seen == [b"one", b"two"]
    client.close()
    server.close()
