"""The DTLS tester (fixtures/testers/dtls.py) between two of its own endpoints in this process, over a datagram
socket pair: GnuTLS's handshake through the tester's callbacks, the keys it hands over, and the tester's own
AES-GCM record layer.

``gnutls_record_get_state`` and the record layout are the two things a GnuTLS upgrade could move; a
handshake whose keys the other side cannot open, or a Hello patch that misses its octet, fails here.
"""
from __future__ import annotations

import socket
import threading

import pytest
import trustme

from fixtures.testers.dtls import DtlsTester, clear_record, hello_mode, psk_password_file, set_hello_mode
from fixtures.testers.heartbeat import (
    ALERT,
    APPLICATION_DATA,
    HANDSHAKE,
    HEARTBEAT,
    INVALID_MODE,
    PEER_ALLOWED_TO_SEND,
    PEER_NOT_ALLOWED_TO_SEND,
    REQUEST,
    RESPONSE,
)


@pytest.fixture(scope="module")
def credentials() -> tuple[str, str]:
    cert = trustme.CA().issue_cert("tester")
    return cert.cert_chain_pems[0].bytes().decode(), cert.private_key_pem.bytes().decode()


def pair(credentials, client_mode, server_mode=PEER_ALLOWED_TO_SEND, timeout=15.0):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    client, server = DtlsTester(a, timeout=timeout), DtlsTester(b, timeout=timeout)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("server", server.handshake(mode=server_mode, server=credentials)))
    thread.start()
    got = client.handshake(mode=client_mode)
    thread.join(timeout + 5)
    return client, server, got, done["server"]


@pytest.mark.parametrize("mode", [PEER_ALLOWED_TO_SEND, PEER_NOT_ALLOWED_TO_SEND])
def test_each_side_reads_the_mode_the_other_s_hello_carries(credentials, mode):
    client, server, got, served = pair(credentials, mode)
    try:
        assert got.ok and served.ok, (got.describe(), served.describe())
        assert served.peer_modes == [mode]
        assert got.peer_modes == [PEER_ALLOWED_TO_SEND]
        assert "DTLS 1.2 handshake completed" in got.describe()
    finally:
        client.close()
        server.close()


def test_records_sealed_by_one_side_open_on_the_other_with_exact_bodies(credentials):
    client, server, got, served = pair(credentials, PEER_ALLOWED_TO_SEND)
    try:
        client.start_reading()
        server.start_reading()
        server.auto_answer = True
        sent = client.send_heartbeat(REQUEST, b"payload", padding=40)
        answered = client.wait_for(lambda: client.heartbeats(RESPONSE), 10, "the Response")
        assert answered and answered[0][1].payload == b"payload"
        request = server.heartbeats(REQUEST)[0][1]
        assert (request.declared, len(request.padding), request.size) == (7, 40, 3 + 7 + 40)
        overlong = client.send(HEARTBEAT, bytes([REQUEST]) + (2**14).to_bytes(2, "big") + b"x" * 20)
        server.wait_for(lambda: len(server.heartbeats(REQUEST)) == 2, 10, "the over-long Request")
        assert not server.heartbeats(REQUEST)[1][1].complete  # read as sent, not refused by a library
        client.send(APPLICATION_DATA, b"hello")
        assert server.wait_for(lambda: [r for r in server.received() if r.content_type == APPLICATION_DATA], 10, "data")
        assert sent.t <= overlong.t and not client.undecryptable and not server.undecryptable
    finally:
        client.close()
        server.close()


def test_a_record_in_an_older_epoch_arrives_in_clear_and_close_notify_ends_the_association(credentials):
    client, server, *_ = pair(credentials, PEER_ALLOWED_TO_SEND)
    try:
        server.start_reading()
        client.send_clear(HEARTBEAT, bytes([REQUEST, 0, 3]) + b"old" + bytes(16))
        old = server.wait_for(lambda: server.heartbeats(REQUEST), 10, "the epoch-0 Request")
        assert old and old[0][1].payload == b"old"
        client.close()  # sends close_notify first
        assert server.wait_for(lambda: server.ended, 10, "the end") is not None
        assert "close_notify" in server.ended[1]
        assert [r.alert for r in server.received() if r.content_type == ALERT] == [(1, 0)]
    finally:
        server.close()


def test_the_invalid_mode_is_written_into_the_hello_and_refused(credentials):
    client, server, got, served = pair(credentials, INVALID_MODE, timeout=3.0)
    try:
        assert not served.ok and served.peer_modes == [INVALID_MODE]
        assert not got.ok
        assert got.alert == "illegal_parameter" or got.error, got.describe()
    finally:
        client.close()
        server.close()


def test_the_hello_patch_touches_only_the_mode_octet():
    # A minimal DTLS ClientHello record: version, random, empty session id and cookie, one suite, null
    # compression, and the heartbeat extension with mode 1.
    hello = (b"\xfe\xfd" + bytes(32) + b"\x00" + b"\x00" + b"\x00\x02\xc0\x2b" + b"\x01\x00"
             + b"\x00\x05" + b"\x00\x0f\x00\x01\x01")
    message = bytes([1]) + len(hello).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" + len(hello).to_bytes(3, "big") + hello
    datagram = clear_record(22, message, epoch=0, sequence=0)
    assert hello_mode(datagram) == (1, 1)
    patched = set_hello_mode(datagram, INVALID_MODE)
    assert hello_mode(patched) == (1, INVALID_MODE)
    assert sum(x != y for x, y in zip(datagram, patched, strict=True)) == 1
    assert set_hello_mode(clear_record(23, b"data", 1, 5), 3) == clear_record(23, b"data", 1, 5)


def test_a_renegotiation_client_hello_carries_the_first_handshake_s_verify_data(credentials):
    client, server, got, served = pair(credentials, PEER_ALLOWED_TO_SEND)
    try:
        server.start_reading()
        assert len(client._client_verify_data) == 12  # tls-unique: the client's Finished
        client.send_client_hello()
        hello = server.wait_for(lambda: [r for r in server.received() if r.content_type == HANDSHAKE], 10, "the hello")
        body = hello[0].body
        assert body[0] == 1 and int.from_bytes(body[4:6], "big") == client._next_message_seq
        assert bytes([12]) + client._client_verify_data in body  # renegotiation_info
        assert hello_mode(clear_record(HANDSHAKE, body, 0, 0)) == (1, PEER_ALLOWED_TO_SEND)
    finally:
        client.close()
        server.close()


KEY = b"00112233445566778899aabbccddeeff"  # the octets are these ASCII characters, as libcoap's -k takes them


@pytest.mark.parametrize(("offered", "ok"), [(KEY, True), (b"not the key at all", False)], ids=["right-key", "wrong-key"])
def test_a_pre_shared_key_handshake_with_psk_suites_only(tmp_path, offered, ok):
    """coaps (RFC 7252 §9.1.3.1): the client offers the run's identity and key, the server reads a password file;
    the wrong key fails the handshake."""
    passwd = psk_password_file(b"aliveness-tester", KEY, folder=str(tmp_path))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    client, server = DtlsTester(a, timeout=5), DtlsTester(b, timeout=5)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("server", server.handshake(mode=None, psk_file=str(passwd))))
    thread.start()
    result = client.handshake(mode=None, psk=(b"aliveness-tester", offered))
    thread.join(10)
    assert result.ok is ok and done["server"].ok is ok, (result.describe(), done["server"].describe())
    if ok:
        client.start_reading()
        server.start_reading()
        client.send(APPLICATION_DATA, b"\x40\x00\x12\x34")
        got = server.wait_for(lambda: [r for r in server.received() if r.content_type == APPLICATION_DATA], 5, what="it")
        assert got and got[0].body == b"\x40\x00\x12\x34"
    client.close()
    server.close()


def psk_pair(tmp_path):
    """A client and a server tester associated with KEY (the server reading a password file psk_password_file
    wrote), and the server's raw socket end."""
    passwd = psk_password_file(b"aliveness-tester", KEY, folder=str(tmp_path))
    assert open(passwd).read() == f"aliveness-tester:{KEY.hex()}\n"
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    client, server = DtlsTester(a, timeout=5), DtlsTester(b, timeout=5)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("server", server.handshake(mode=None, psk_file=passwd)))
    thread.start()
    assert client.handshake(mode=None, psk=(b"aliveness-tester", KEY)).ok
    thread.join(10)
    assert done["server"].ok
    return client, server, b


def test_the_server_opens_a_record_from_the_wire_that_it_never_read(tmp_path):
    """A coaps client IUT's pings to a frozen tester: the capture holds records the tester never read, and
    open_wire decrypts them with its read keys; a record of another epoch or with a flipped octet does not open."""
    from types import SimpleNamespace

    client, server, b = psk_pair(tmp_path)
    try:
        client.send(APPLICATION_DATA, b"\x40\x00\x2a\x01")
        raw = b.recv(65536)  # the server never reads it: as the capture holds it

        def wire(datagram, epoch=None):
            return SimpleNamespace(content_type=datagram[0], version=(datagram[1], datagram[2]),
                                   epoch=int.from_bytes(datagram[3:5], "big") if epoch is None else epoch,
                                   sequence=int.from_bytes(datagram[5:11], "big"), body=datagram[13:])

        assert server.open_wire(wire(raw)) == b"\x40\x00\x2a\x01"
        assert server.open_wire(wire(raw, epoch=0)) is None
        assert server.open_wire(wire(raw[:-1] + bytes([raw[-1] ^ 1]))) is None
    finally:
        client.close()
        server.close()


def test_a_pre_shared_key_association_in_coap_s_mandatory_ccm_8(tmp_path, monkeypatch):
    """A peer that has only TLS_PSK_WITH_AES_128_CCM_8 (RFC 7252 §9.1.3.1; tinydtls): the tester's record layer
    seals and opens AES-CCM with its 8-octet tag (libcoap's GnuTLS read the same records in the coap-dtls cases)."""
    from fixtures.testers import dtls

    monkeypatch.setattr(dtls, "PSK_PRIORITY", b"NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+AES-128-CCM-8:-KX-ALL:+PSK")
    client, server, _ = psk_pair(tmp_path)
    assert client.cipher == server.cipher == "AES-128-CCM-8"
    try:
        client.start_reading()
        server.start_reading()
        client.send(APPLICATION_DATA, b"\x40\x00\x12\x34")
        got = server.wait_for(lambda: [r for r in server.received() if r.content_type == APPLICATION_DATA], 5, what="it")
        assert got[0].body == b"\x40\x00\x12\x34"
        server.send(APPLICATION_DATA, b"\x70\x00\x12\x34")
        back = client.wait_for(lambda: [r for r in client.received() if r.content_type == APPLICATION_DATA], 5, what="it")
        assert back[0].body == b"\x70\x00\x12\x34"
    finally:
        client.close()
        server.close()
