"""The ``coap`` fixture over DTLS ("coaps", RFC 7252 §9.1): the CoAP-over-UDP cases' fixture, its world opened for
the ``coap-dtls`` manifest section, its messages inside a DTLS 1.2 association in PreSharedKey mode.

The tester's agent opens a UDP socket connected to the IUT; the DTLS tester (fixtures/testers/dtls.py: GnuTLS's
handshake through ctypes with the run's pre-shared key, then its own AES-GCM records) runs in the pytest process
over the agent's datagram relay. Each CoAP message the case writes is one record of application data; every
record the IUT sends is decrypted and logged. The capture is rebuilt in clear (fixtures/coaptls.py), so the
cases judge what crossed the wire at the times it crossed, as over UDP.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap.conftest import CoapCase
from fixtures.coaptls import plaintext_datagrams
from fixtures.datagrams import Datagram, datagrams
from fixtures.sessions import CaseWorld
from fixtures.testers.dtls import DtlsTester
from fixtures.testers.heartbeat import APPLICATION_DATA
from fixtures.testers.relay import DatagramRelay

HANDSHAKE_TIMEOUT = 10.0
RECORD_ALL = 1 << 40  # the association's UDP socket hands every octet over (the agent records this many)


class CoapDtlsCase(CoapCase):
    def start(self) -> CoapDtlsCase:
        world = self.world
        world.require(keepalive=False, needs_container=False)
        world.build(None)
        self.tester = world.start_agent()
        self.port = world.serve()
        self.conn = self.tester.udp_open(peer=(world.iut_address, self.port), record=RECORD_ALL)
        self.tester_port = int(self.tester.opened(self.conn).data["local"][1])
        self.dtls = DtlsTester(DatagramRelay(self.tester, self.conn).socket, timeout=HANDSHAKE_TIMEOUT)
        world.in_clear = self.segments_in_clear
        world.logs["coap.txt"] = self.log
        world.logs["coap-dtls.txt"] = self.dtls.log
        creds = world.credentials
        handshake = self.dtls.handshake(mode=None, psk=(creds.psk_identity, creds.psk_key))
        if not handshake.ok:
            world.verdicts.inconclusive_rest(f"the DTLS handshake (PSK identity {creds.psk_identity.decode()}) failed: "
                                             f"{handshake.describe()}")
        self.dtls.start_reading()
        world.cleanups.append(self.dtls.close)
        self.last_sent = time.time()
        return self

    def segments_in_clear(self) -> list:
        return plaintext_datagrams(self.world.capture.segments(), {(self.origin, (self.iut, self.port)): list(self.dtls.records)})

    def datagrams(self) -> list[Datagram]:
        return datagrams(self.segments_in_clear())

    def _transmit(self, data: bytes) -> None:
        self.dtls.send(APPLICATION_DATA, data)


@pytest.fixture
def coap(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "coap-dtls") as world:
        yield CoapDtlsCase(world)
