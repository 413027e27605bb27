"""The ``coap`` fixture over DTLS ("coaps", RFC 7252 §9.1): the CoAP-over-UDP cases' fixture, its world opened for
the ``coap-dtls`` manifest section, its messages inside a DTLS 1.2 association in PreSharedKey mode.

The tester's agent opens a UDP socket connected to the IUT; the DTLS tester (fixtures/testers/dtls.py: GnuTLS's
handshake through ctypes with the run's pre-shared key, then its own AES-GCM records) runs in the pytest process
over the agent's datagram relay. Each CoAP message the case writes is one record of application data; every
record the IUT sends is decrypted and logged. The capture is rebuilt in clear (fixtures/coaptls.py), so the
cases judge what crossed the wire at the times it crossed, as over UDP; the IUT's records are opened from the
capture itself with the tester's read keys, so a frozen or cut-off tester still sees what the IUT sent.

With the IUT as client the tester's UDP socket waits on TESTER_PORT; the IUT's first datagram (its ClientHello)
names its end, and the DTLS tester handshakes as the server with the run's pre-shared key (a GnuTLS password
file, removed once the handshake is over), then answers pings and requests from the records it decrypts.
"""
from __future__ import annotations

import os
import time

import pytest

from conformance.coap.conftest import TESTER_PORT, CoapCase
from fixtures.coaptls import plaintext_datagrams
from fixtures.datagrams import Datagram, datagrams, to_text
from fixtures.sessions import CaseWorld
from fixtures.testers.dtls import DtlsTester, psk_password_file
from fixtures.testers.heartbeat import ALERT, APPLICATION_DATA, HANDSHAKE, alert_name
from fixtures.testers.relay import DatagramRelay
from fixtures.tlswire import tls_records

HANDSHAKE_TIMEOUT = 10.0
FIRST_DATAGRAM_BOUND = 30.0  # seconds a client IUT has, once started, to send its ClientHello
RECORD_ALL = 1 << 40  # the association's UDP socket hands every octet over (the agent records this many)


class CoapDtlsCase(CoapCase):
    def __init__(self, world: CaseWorld) -> None:
        super().__init__(world)
        self.dtls: DtlsTester | None = None
        self.association: tuple[tuple[str, int], tuple[str, int]] | None = None  # (the tester's end, the IUT's)
        self.associations: list[tuple[tuple, DtlsTester]] = []  # every association of the case, the current one last
        self.on_record = None  # what a subclass answers from the records of an association it opens
        self._clear: tuple | None = None  # (what it was built from, the capture in clear)
        world.in_clear = self.segments_in_clear
        world.logs["coap-dtls.txt"] = lambda: ("\n\n".join(f"association {a}:\n{d.log()}" for a, d in self.associations)
                                               or "no DTLS association was made\n")

    def start(self) -> CoapDtlsCase:
        world = self.world
        world.require(keepalive=False, needs_container=False)
        world.build(None)
        self.tester = world.start_agent()
        self.port = world.serve()
        world.logs["coap.txt"] = self.log
        handshake = self.associate()
        if not handshake.ok:
            world.verdicts.inconclusive_rest(f"the DTLS handshake (PSK identity {world.credentials.psk_identity.decode()}) "
                                             f"failed: {handshake.describe()}")
        self.last_sent = time.time()
        return self

    def associate(self):
        """A new DTLS association of the tester's with the server IUT, from a new UDP socket (a client that comes
        back); it becomes the current one (``conn``, ``dtls``, ``association``). Returns the handshake."""
        world = self.world
        self.conn = self.tester.udp_open(peer=(world.iut_address, self.port), record=RECORD_ALL)
        self.tester_port = int(self.tester.opened(self.conn).data["local"][1])
        self.association = (self.origin, (self.iut, self.port))
        self.dtls = DtlsTester(DatagramRelay(self.tester, self.conn).socket, timeout=HANDSHAKE_TIMEOUT)
        self.associations.append((self.association, self.dtls))
        creds = world.credentials
        handshake = self.dtls.handshake(mode=None, psk=(creds.psk_identity, creds.psk_key))
        if handshake.ok:
            if self.on_record is not None:
                dtls, answer = self.dtls, self.on_record
                dtls.on_record = lambda record: answer(record, dtls)  # answered on the association it came on
            self.dtls.start_reading()
            world.cleanups.append(self.dtls.close)
        return handshake

    def start_client(self, knobs: dict | None = None, answer: bool = False) -> CoapDtlsCase:
        """The IUT as a client of the tester over DTLS: as over UDP (the tester's socket on TESTER_PORT, the world
        built), and launch() then plays the DTLS server with the run's pre-shared key. With ``answer`` the tester
        answers the IUT's pings and requests from the records it decrypts, as over UDP, while ``answering``."""
        world = self.world
        world.require(keepalive=knobs is not None)
        world.build(knobs, tester_port=TESTER_PORT)
        self.tester = world.start_agent()
        world.logs["coap.txt"] = lambda: to_text(self.datagrams())
        self.conn = self.tester.udp_open(host=world.net.any_address, port=TESTER_PORT, record=RECORD_ALL)
        self.tester_port = TESTER_PORT
        self.answering = answer
        return self

    def launch(self) -> None:
        """Start the client IUT and take its association: its first datagram names its end, and the tester
        handshakes as the PSK server over a relay to that end (inconclusive for the case if it fails)."""
        world = self.world
        world.iut.start()
        hello = self.tester.maybe(lambda e: e.ev == "datagram" and e.conn == self.conn, FIRST_DATAGRAM_BOUND)
        if hello is None:
            world.verdicts.inconclusive_rest(f"the IUT sent the tester nothing within {FIRST_DATAGRAM_BOUND:g} s")
        peer = (hello.data["peer"][0], int(hello.data["peer"][1]))
        self.association = (self.origin, peer)
        self.dtls = DtlsTester(DatagramRelay(self.tester, self.conn, peer).socket, timeout=HANDSHAKE_TIMEOUT)
        self.associations.append((self.association, self.dtls))
        creds = world.credentials
        passwd = psk_password_file(creds.psk_identity, creds.psk_key)
        try:
            handshake = self.dtls.handshake(mode=None, psk_file=passwd)
        finally:
            os.unlink(passwd)
        if not handshake.ok:
            world.verdicts.inconclusive_rest(f"the IUT client's DTLS handshake (the tester serving PSK identity "
                                             f"{creds.psk_identity.decode()}) failed: {handshake.describe()}")
        self.dtls.on_record = self._answer_record
        self.dtls.start_reading()
        world.cleanups.append(self.dtls.close)

    def _answer_record(self, record) -> None:
        """The DTLS reader thread: the tester as a small CoAP server inside the association (see start_client)."""
        if record.direction != "in" or record.content_type != APPLICATION_DATA or not self.answering:
            return
        reply = self.reply_to(record.body)
        if reply is not None:
            self.sent.append((time.time(), self.tester_port, reply))
            self.dtls.send(APPLICATION_DATA, reply)

    def below_coap(self, after: float) -> str:
        """The IUT's DTLS records other than application data after ``after``, from the capture (alerts opened with
        the tester's read keys): how it ended the association, or whether it began a new handshake."""
        if self.dtls is None or self.association is None:
            return ""
        iut = self.association[1]
        seen = []
        for record in tls_records(self.world.capture.segments()).records:
            if record.t <= after or record.src != iut[0] or iut not in record.conn or record.content_type == APPLICATION_DATA:
                continue
            body = self.dtls.open_wire(record) if record.epoch else record.body
            if record.content_type == ALERT and body and len(body) >= 2:
                what = f"a {'fatal' if body[0] == 2 else 'warning'} {alert_name(body[1])} alert"
            elif record.content_type == HANDSHAKE and not record.epoch and record.body[:1] == b"\x01":
                what = "a new ClientHello"
            else:
                what = f"a DTLS {record.name} record"
            seen.append(f"{what} {record.t - after:.1f} s in")
        return f"; below CoAP: {', '.join(seen[:4])}" if seen else "; below CoAP: nothing but application data"

    def segments_in_clear(self) -> list:
        """The capture in clear, rebuilt only when the capture or a record log has grown (cases poll it; a flood makes
        it large, and each rebuild opens every record of the IUT's)."""
        if not self.associations:
            return []
        segments = self.world.capture.segments()
        key = (len(segments), tuple(len(d.records) for _, d in self.associations))
        if self._clear is None or self._clear[0] != key:
            self._clear = (key, plaintext_datagrams(segments, {a: list(d.records) for a, d in self.associations},
                                                    {a: d.open_wire for a, d in self.associations},
                                                    {a: d.open_own for a, d in self.associations}))
        return self._clear[1]

    def datagrams(self) -> list[Datagram]:
        return datagrams(self.segments_in_clear())

    def _transmit(self, data: bytes) -> None:
        self.dtls.send(APPLICATION_DATA, data)


@pytest.fixture
def coap(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "coap-dtls") as world:
        yield CoapDtlsCase(world)
