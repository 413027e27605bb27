"""The ``coap_tcp`` fixture over TLS ("coaps+tcp", RFC 8323 §4.1): the CoAP-over-TCP cases' fixture, its world
opened for the ``coap-tls`` manifest section, each connection a TLS 1.2 session of the tester's.

The tester's agent opens the TCP connection; tlslite-ng (fixtures/testers/tls.py, in the pytest process over
the agent's relay) does the handshake as a client offering ALPN "coap", then every CoAP message the case
writes goes out as one application_data record (16 KiB of plaintext at most per record), and every record
the IUT sends is decrypted and logged. The wire view is the capture rebuilt in clear (fixtures/coaptls.py),
so the cases judge what crossed the wire at the times it crossed, as over TCP.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap_tcp.conftest import ACCEPT_BOUND, TESTER_PORT, CoapTcpCase, Conn
from fixtures.coaptcp import CoapTcpLog
from fixtures.coaptls import ClearStreams
from fixtures.coapwire import CSM, PING, PONG, StreamReader, encode_tcp
from fixtures.sessions import CaseWorld
from fixtures.testers.relay import StreamRelay
from fixtures.testers.tls import APPLICATION_DATA, TlsTester
from fixtures.timeline import conn_key

HANDSHAKE_TIMEOUT = 10.0
RECORD_PLAINTEXT = 2**14  # the most plaintext one TLS record may carry (RFC 5246 §6.2.1)
ALPN = (b"coap",)


class CoapTlsCase(CoapTcpCase):
    def __init__(self, world: CaseWorld) -> None:
        super().__init__(world)
        self.sessions: dict = {}  # connection key -> (the tester's address, its TlsTester)
        self.tls: dict[str, TlsTester] = {}  # agent connection id -> its TLS session
        # (connection, its TlsTester) -> what its reader thread calls with each record (a subclass's own answers);
        # None: the tester answers Pings with Pongs only.
        self.record_handler = None
        self._clear = ClearStreams()
        world.in_clear = self.segments_in_clear

    def segments_in_clear(self) -> list:
        """The capture in clear as of now. Cases poll it, so each call reads only what the capture and the record
        logs added since the last one (a flood makes both long)."""
        with self._view_lock:  # here CoapTcpCase's reader reads the stream in clear, never the capture itself
            logs = {key: (tester, tls.records) for key, (tester, tls) in list(self.sessions.items())}
            self._reader.feed(self._clear.update(self.world.capture.segments(), logs))
            return list(self._clear.segments)

    def backlog(self) -> int:
        """Records the IUT sent (the capture shows them) that the tester has not read yet."""
        with self._view_lock:
            self.segments_in_clear()
            return self._clear.unread(self.iut)

    def start(self) -> CoapTlsCase:
        super().start()
        self.world.logs["coap-tls.txt"] = self.log
        return self

    def wire(self) -> CoapTcpLog:
        with self._view_lock:
            self.segments_in_clear()
            return self._reader.log.snapshot()

    def open(self, csm: bool = True) -> Conn:
        """A new connection and TLS session; inconclusive for the case if the handshake fails."""
        conn = super().open(csm=False)
        tls = TlsTester(StreamRelay(self.tester, conn.id).socket, timeout=HANDSHAKE_TIMEOUT)
        tls.answer_close_notify = True
        self.tls[conn.id] = tls
        self.sessions[conn.key] = (self.world.tester_address, tls)
        handshake = tls.handshake("1.2", mode=None, alpn=ALPN)
        if not handshake.ok:
            self.world.verdicts.inconclusive_rest(f"the TLS handshake with the IUT failed: {handshake.describe()}")
        if self.record_handler is not None:
            tls.on_record = self.record_handler(conn, tls)
        tls.start_reading()
        self.world.cleanups.append(tls.close)
        if csm:
            self.send(conn, encode_tcp(CSM))
        return conn

    def start_client(self, knobs: dict | None = None, send_csm: bool = True) -> Conn:
        """The IUT as a client of the tester over TLS: the tester listens on TESTER_PORT, takes the IUT's connection
        and plays the TLS server (the run's server certificate, ALPN coap), then answers every Ping with a Pong of
        the same token until ``answering`` is cleared; it sends its CSM at once with ``send_csm``."""
        world = self.world
        world.require(keepalive=knobs is not None)
        world.build(knobs, tester_port=TESTER_PORT)
        self.tester = world.start_agent()
        world.logs["coap-tls.txt"] = self.log
        self.tester.listen(TESTER_PORT, host=world.net.any_address)
        self.answering = True
        world.iut.start()
        conn = self.accept_client(send_csm=send_csm)
        if conn is None:
            world.verdicts.inconclusive_rest(f"the IUT did not connect to the tester within {ACCEPT_BOUND:g} s")
        if isinstance(conn, str):
            world.verdicts.inconclusive_rest(f"the IUT client's TLS handshake failed: {conn}")
        return conn

    def accept_client(self, bound: float = ACCEPT_BOUND, send_csm: bool = True) -> Conn | str | None:
        """Take the client IUT's next connection and play the TLS server on it (the run's server certificate, ALPN
        coap): the connection, or what made the handshake fail, or None when none came within ``bound`` s. With
        ``send_csm`` the tester's CSM goes out before it reads anything, so it precedes every answer."""
        world = self.world
        taken = {c.id for c in self.conns}
        accepted = self.tester.accepted(bound, exclude=taken)
        if accepted is None:
            return None
        peer = (accepted.data["peer"][0], int(accepted.data["peer"][1]))
        local = (world.tester_address, TESTER_PORT)
        conn = Conn(accepted.conn, conn_key(local, peer), local, accepted.data.get("wall", time.time()), iut_port=peer[1])
        self.conns.append(conn)
        tls = TlsTester(StreamRelay(self.tester, conn.id).socket, timeout=HANDSHAKE_TIMEOUT)
        tls.answer_close_notify = True
        self.tls[conn.id] = tls
        self.sessions[conn.key] = (world.tester_address, tls)
        creds = world.credentials
        handshake = tls.handshake("1.2", mode=None, server=(creds.server_cert.decode(), creds.server_key.decode()),
                                  alpn=ALPN)
        if not handshake.ok:
            return handshake.describe()
        if self.record_handler is not None:
            tls.on_record = self.record_handler(conn, tls)
        else:
            reader = StreamReader()

            def pong(record) -> None:  # the TLS reader thread: answer Pings while answering
                if record.direction != "in" or record.content_type != APPLICATION_DATA:
                    return
                for msg in reader.feed(record.body):
                    if msg.code == PING and self.answering:
                        tls.send(APPLICATION_DATA, encode_tcp(PONG, token=msg.token))

            tls.on_record = pong
        if send_csm:
            conn.sent += 1
            self.last_sent = time.time()
            tls.send(APPLICATION_DATA, encode_tcp(CSM))
        tls.start_reading()
        world.cleanups.append(tls.close)
        return conn

    def _write(self, conn: Conn, data: bytes) -> None:
        tls = self.tls[conn.id]
        for at in range(0, max(len(data), 1), RECORD_PLAINTEXT):
            tls.send(APPLICATION_DATA, data[at:at + RECORD_PLAINTEXT])

    def log(self) -> str:
        return "\n\n".join(f"connection {key} (ALPN agreed: {tls.alpn.decode() if tls.alpn else 'none'}):\n{tls.log()}"
                           for key, (_, tls) in self.sessions.items())


@pytest.fixture
def coap_tcp(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "coap-tls") as world:
        yield CoapTlsCase(world)
