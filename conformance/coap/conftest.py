"""The ``coap`` fixture: a CoAP-over-UDP IUT (server role), the tester's UDP socket, and the capture.

The tester's agent opens one unconnected UDP socket in the tester pod and sends the CoAP messages the case
writes (fixtures/coapwire.py: an Empty Confirmable, a message with a format error, ...). What the IUT did
with each is read from the capture in its own namespace, which keeps whole datagrams: the message as it
reached the IUT, and every CoAP message the IUT sent back within ``ANSWER_BOUND`` seconds.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import pytest

from fixtures.coapwire import ACK, CON, CONTENT, EMPTY, OPTION_OBSERVE, RST, Message, decode_udp, encode_udp
from fixtures.datagrams import Datagram, datagrams, flow, to_text
from fixtures.sessions import CaseWorld
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import TimedOut, wait_until

ANSWER_BOUND = 2.0  # seconds an answer may take: a Reset comes in about a millisecond; this tells "answered" from "never"
ARRIVAL_BOUND = 5.0  # seconds the tester's datagram may take to show in the IUT's capture
CLOCK_SLACK = 0.005  # capture timestamps and time.time() read the same clock; this absorbs rounding
# Seconds between two messages of the tester's: liveness checks come seconds apart, and libcoap 4.3.1 answers no
# second ping that comes within about half a second of its last Reset (the burst case reports that on its own).
GAP = 1.0
TESTER_PORT = 5683  # where a client IUT sends its requests: CoAP's own port, on the tester


@dataclass
class Exchange:
    """One message of the tester's and the IUT's answers to it, from the capture."""

    data: bytes
    sent: float
    request: Datagram | None = None  # as it reached the IUT (None: it never did)
    answers: list[tuple[Datagram, Message]] = field(default_factory=list)  # the IUT's messages back, in order

    @property
    def message(self) -> Message:
        return decode_udp(self.data)

    @property
    def first(self) -> Message | None:
        return self.answers[0][1] if self.answers else None

    @property
    def first_t(self) -> float:
        """Capture time of the IUT's first answer (of the message's arrival when there was none)."""
        return self.answers[0][0].t if self.answers else (self.request.t if self.request else self.sent)

    @property
    def answer_ms(self) -> float | None:
        if not self.answers or self.request is None:
            return None
        return round((self.answers[0][0].t - self.request.t) * 1000, 3)

    def describe_answers(self) -> str:
        if not self.answers:
            return f"no answer within {ANSWER_BOUND:g} s"
        return "; ".join(f"{m.describe()} after {(d.t - self.request.t) * 1000:.1f} ms" for d, m in self.answers)


class CoapCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tester: TcpTester | None = None
        self.conn: str | None = None
        self._mids = itertools.count(0x2A00)
        self.exchanges: list[Exchange] = []
        self.last_sent = 0.0
        # Every datagram the tester sent (time.time(), tester port, octets), for the wire validator: a capture
        # under a flood can miss some, and it never sees a datagram that IP fragmented (the 64 KiB one).
        self.sent: list[tuple[float, int, bytes]] = []
        world.wire_facts["tester_sent"] = lambda: list(self.sent)

    def start(self) -> CoapCase:
        world = self.world
        world.require(keepalive=False, needs_container=False)
        world.build(None)
        self.tester = world.start_agent()
        world.logs["coap.txt"] = self.log
        self.port = world.serve()
        wildcard = "::" if ":" in world.iut_address else "0.0.0.0"
        self.conn = self.tester.udp_open(host=wildcard)
        self.tester_port = int(self.tester.opened(self.conn).data["local"][1])
        self.last_sent = time.time()  # the first message, too, comes GAP after the IUT is ready
        return self

    def start_client(self, knobs: dict | None = None, answer: bool = False) -> CoapCase:
        """The IUT as a client of the tester: the tester's UDP socket on TESTER_PORT, the world built; the case
        starts the IUT when its faults are in place. With ``answer`` the tester plays a server while
        ``answering``: a Confirmable request gets a piggybacked 2.05 (with Observe 1 when it asked to observe,
        so the client keeps its interest), and an Empty Confirmable (a ping) its Reset; otherwise the tester
        answers nothing."""
        world = self.world
        world.require(keepalive=knobs is not None)
        world.build(knobs, tester_port=TESTER_PORT)
        self.tester = world.start_agent()
        world.logs["coap.txt"] = lambda: to_text(self.datagrams())
        self.conn = self.tester.udp_open(host=world.net.any_address, port=TESTER_PORT)
        self.tester_port = TESTER_PORT
        self.answering = answer
        if answer:
            self.tester.listeners.append(self._answer)
        return self

    def _answer(self, event) -> None:
        """Listener on the agent's events: the tester as a small CoAP server (see start_client)."""
        if event.ev != "datagram" or event.conn != self.conn or not self.answering or "hex" not in event.data:
            return
        reply = self.reply_to(bytes.fromhex(event.data["hex"]))
        if reply is None:
            return
        host, port = event.data["peer"][0], int(event.data["peer"][1])
        self.sent.append((time.time(), self.tester_port, reply))
        self.tester.send_to(self.conn, reply, host, port)

    @staticmethod
    def reply_to(data: bytes) -> bytes | None:
        """What the tester, playing a server, answers to a client's message: a Reset to a ping, a piggybacked 2.05
        to a Confirmable request (with Observe 1 when it asked to observe), nothing to anything else."""
        msg = decode_udp(data)
        if msg.error or msg.mtype != CON:
            return None
        if msg.empty:
            return encode_udp(RST, EMPTY, msg.mid)
        observe = [(OPTION_OBSERVE, b"\x01")] if msg.option(OPTION_OBSERVE) else []
        return encode_udp(ACK, CONTENT, msg.mid, token=msg.token, options=observe, payload=b"alive")

    def below_coap(self, after: float) -> str:
        """What the IUT sent below CoAP after ``after`` (time.time()), for a dead-peer report: nothing over UDP."""
        return ""

    def launch(self) -> None:
        """Start the client IUT that start_client built, once the case's faults are in place."""
        self.world.iut.start()

    def from_iut(self, after: float = 0.0, to: tuple[str, int] | None = None) -> list[tuple[Datagram, Message]]:
        """Every datagram the IUT sent to the tester's socket (or to ``to``) after capture time ``after``, decoded."""
        return [(d, decode_udp(d.head)) for d in self.datagrams()
                if d.src == self.iut and d.destination == (to or self.origin) and d.t > after]

    def second_socket(self) -> tuple[str, int]:
        """Another UDP socket of the tester's (a second client of a server IUT): its agent name and port."""
        wildcard = "::" if ":" in self.iut else "0.0.0.0"
        conn = self.tester.udp_open(host=wildcard)
        return conn, int(self.tester.opened(conn).data["local"][1])

    def send_from(self, conn: str, port: int, data: bytes) -> float:
        """Send ``data`` to the IUT from the tester's socket ``conn`` (bound to ``port``); returns when (time.time())."""
        sent = time.time()
        self.sent.append((sent, port, data))
        self.tester.send_to(conn, data, self.iut, self.port)
        return sent

    @property
    def iut(self) -> str:
        return self.world.iut_address

    @property
    def origin(self) -> tuple[str, int]:
        return self.world.tester_address, self.tester_port

    def mid(self) -> int:
        """A fresh Message ID for the tester's next message."""
        return next(self._mids) & 0xFFFF

    def datagrams(self) -> list[Datagram]:
        return datagrams(self.world.capture.segments())

    def send(self, data: bytes, gap: float = GAP) -> Exchange:
        """Send ``data`` to the IUT, at least ``gap`` seconds after the tester's previous message."""
        wait_until(lambda: time.time() >= self.last_sent + gap, gap + 1, poll_max=0.05, what="the gap between messages")
        exchange = Exchange(data, time.time())
        self.exchanges.append(exchange)
        self.last_sent = exchange.sent
        self.sent.append((exchange.sent, self.tester_port, data))
        self._transmit(data)
        return exchange

    def _transmit(self, data: bytes) -> None:
        """Put one message on the wire to the IUT (over DTLS, a subclass seals it in a record first)."""
        self.tester.send_to(self.conn, data, self.iut, self.port)

    def exchange(self, data: bytes) -> Exchange:
        """Send ``data`` to the IUT; wait for it to arrive, then ANSWER_BOUND for what the IUT sends back."""
        exchange = self.send(data)

        def arrived():
            return next((d for d in flow(self.datagrams(), self.origin, (self.iut, self.port))
                         if d.t > exchange.sent - CLOCK_SLACK and d.head == data), None)

        try:
            exchange.request = wait_until(arrived, ARRIVAL_BOUND, poll_max=0.05, what="the tester's message to reach the IUT")
        except TimedOut:
            return exchange
        until = exchange.request.t + ANSWER_BOUND
        wait_until(lambda: time.time() > until, ANSWER_BOUND + 1, poll_max=0.1, what="the answer window to pass")
        exchange.answers = [(d, decode_udp(d.head)) for d in self.datagrams()
                            if d.src == self.iut and d.destination == self.origin and exchange.request.t <= d.t <= until]
        return exchange

    def exchange_until_answer(self, data: bytes, gap: float = GAP) -> Exchange:
        """Like exchange(), but stop waiting at the first answer (for messages that must be answered)."""
        exchange = self.send(data, gap)

        def answered():
            dgrams = self.datagrams()
            if exchange.request is None:
                exchange.request = next((d for d in flow(dgrams, self.origin, (self.iut, self.port))
                                         if d.t > exchange.sent - CLOCK_SLACK and d.head == data), None)
            if exchange.request is None:
                return time.time() > exchange.sent + ARRIVAL_BOUND
            exchange.answers = [(d, decode_udp(d.head)) for d in dgrams if d.src == self.iut
                                and d.destination == self.origin and d.t >= exchange.request.t]
            return bool(exchange.answers) or time.time() > exchange.request.t + ANSWER_BOUND

        try:
            wait_until(answered, ARRIVAL_BOUND + ANSWER_BOUND + 1, poll_max=0.02, what="the IUT's answer")
        except TimedOut:
            pass
        return exchange

    def log(self) -> str:
        lines = []
        for x in self.exchanges:
            lines.append(f"tester -> IUT  {x.message.describe()}"
                         + ("" if x.request else "  (never showed in the IUT's capture)"))
            lines += [f"IUT -> tester  {m.describe()}  (+{(d.t - x.request.t) * 1000:.1f} ms)" for d, m in x.answers]
        return "\n".join(lines) + "\n\n" + to_text(self.datagrams())


@pytest.fixture
def coap(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "coap") as world:
        yield CoapCase(world)
