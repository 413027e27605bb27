"""The ``dots`` fixture over TLS ("coaps+tcp"): a DOTS agent as IUT, the tester as its peer agent inside TLS 1.2
sessions with certificates from the run's CA, and the capture rebuilt in clear.

The tester is the CoAP-over-TLS one (conformance/coap_tls/conftest.py: tlslite-ng over the tester agent's TCP
connections, ALPN coap) speaking DOTS as conformance/dots/conftest.py's DotsPeer does over DTLS, in RFC 8323's
stream framing: it sends its CSM first, answers Pings with Pongs, answers heartbeats 2.04 (after
``answer_delay`` seconds when a case holds them back) and, as the DOTS server, the configuration and mitigation
requests. Against a client IUT it takes each new connection the IUT opens (``accept_client``: a client that
recovers its session comes back on a new one); against a server IUT it opens one (``open``) and may open more.

Over TCP no message has a type and missing-hb-allowed is not negotiated (RFC 9132 §4.5), so ``reliable`` is set:
the cases PUT heartbeat-interval alone.
"""
from __future__ import annotations

import pytest

from conformance.coap_tcp.conftest import Conn
from conformance.coap_tls.conftest import CoapTlsCase
from conformance.dots.conftest import DotsPeer, Seen
from fixtures.coapwire import CSM, PING, PONG, Message, StreamReader, encode_tcp
from fixtures.sessions import CaseWorld
from fixtures.testers.tls import APPLICATION_DATA


class DotsTlsCase(DotsPeer, CoapTlsCase):
    reliable = True

    def __init__(self, world: CaseWorld) -> None:
        super().__init__(world)
        self._dots_init()
        self.record_handler = self._records
        self._knobs: dict | None = None

    # -- the two ways in ----------------------------------------------------------------------------------------
    def start(self) -> DotsTlsCase:
        """Server IUT: a TLS session of the tester's as its DOTS client (CSM first)."""
        super().start()
        self.open()
        self._start_heartbeats()
        return self

    def start_client(self, knobs: dict | None = None, answer: bool = True) -> DotsTlsCase:
        """Client IUT: the tester will be its DOTS server; launch() starts the IUT and takes its connection."""
        self._knobs = knobs
        self.answering = answer
        if knobs and "heartbeat-interval" in knobs:
            self.interval = float(knobs["heartbeat-interval"])
        return self

    def launch(self) -> None:
        CoapTlsCase.start_client(self, self._knobs, send_csm=True)
        self.answering = True
        self._start_heartbeats()

    @property
    def current(self) -> Conn:
        """The connection the tester sends on: the newest."""
        return self.conns[-1]

    # -- over TLS -------------------------------------------------------------------------------------------------
    def _records(self, conn: Conn, tls):
        """The reader thread's callback for one connection: Pongs for Pings, DOTS answers for requests."""
        reader = StreamReader()

        def send(reply: bytes) -> None:
            tls.send(APPLICATION_DATA, reply)

        def on_record(record) -> None:
            if record.direction != "in" or record.content_type != APPLICATION_DATA:
                return
            for msg in reader.feed(record.body):
                if msg.code == PING and self.answering:
                    send(encode_tcp(PONG, token=msg.token))
                elif msg.code not in (CSM, PONG):
                    self.answer(msg, send)
        return on_record

    def _request_bytes(self, method: int, token: bytes, options: list, payload: bytes, confirmable: bool) -> bytes:
        return encode_tcp(method, token=token, options=options, payload=payload)

    def _reply_bytes(self, msg: Message, answer_code: int, options: list, payload: bytes) -> bytes:
        return encode_tcp(answer_code, token=msg.token, options=options, payload=payload)

    def _send(self, data: bytes) -> None:
        self._write(self.current, data)

    # -- what the IUT sent ---------------------------------------------------------------------------------------
    def from_iut(self, after: float = 0.0, conn: Conn | None = None) -> list[Seen]:  # type: ignore[override]
        """The IUT's DOTS messages (not CSM, Ping, Pong) after ``after``, on every connection or on ``conn``."""
        return [Seen(m.t, m.msg) for m in self.wire().sent_by(self.iut, after=after, conn=conn.key if conn else None)
                if m.msg.cls != 7]


@pytest.fixture
def dots(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "dots-tls") as world:
        yield DotsTlsCase(world)
