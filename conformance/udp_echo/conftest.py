"""The ``udp`` fixture: a UDP echo IUT (server role), the tester's UDP socket, the capture and the faults.

The tester's agent opens one unconnected UDP socket, so it hears whatever the IUT sends it, from any
port. What the IUT received and sent is read from the capture in its own namespace (fixtures/datagrams.py),
which keeps whole datagrams: an exchange is a datagram of the tester's as it reached the IUT, and what the
IUT sent in the ``ANSWER_BOUND`` seconds after it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from fixtures.datagrams import Datagram, datagrams, endpoint_text, flow, to_text
from fixtures.faults import Fault
from fixtures.protocols.udp_echo import ANSWER_BOUND, ARRIVAL_BOUND, MATCH
from fixtures.sessions import CaseWorld
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import TimedOut, wait_until

# Octets of input the tester's agent records as hex: far more than any case sends back, and a flooding IUT
# is only counted beyond it (the capture is the ground truth anyway).
RECORD = 1 << 20
# Capture timestamps and time.time() read the same kernel clock; this only absorbs rounding.
CLOCK_SLACK = 0.005


@dataclass
class Exchange:
    """One datagram of the tester's and what the IUT made of it, from the capture in the IUT's namespace."""

    payload: bytes
    sent: float  # wall time just before the tester was told to send it
    request: Datagram | None = None  # as it reached the IUT (None: it never did)
    replies: list[Datagram] = field(default_factory=list)  # what the IUT sent within ANSWER_BOUND of it
    origin: tuple[str, int] | None = None  # where it came from: the tester's address and port

    @property
    def answer(self) -> Datagram | None:
        """The answering datagram: the first the IUT sent back to the origin (with whatever data)."""
        return next((d for d in self.replies if d.destination == self.origin), None)

    @property
    def echo(self) -> Datagram | None:
        """The first datagram the IUT sent back to the origin with the request's data."""
        return next((d for d in self.replies if d.destination == self.origin and d.same_data(self.request)), None)

    @property
    def strays(self) -> list[Datagram]:
        """What the IUT sent elsewhere (another address or port) in answer time."""
        return [d for d in self.replies if d.destination != self.origin]

    @property
    def echo_ms(self) -> float | None:
        return round((self.echo.t - self.request.t) * 1000, 3) if self.echo and self.request else None

    def what(self) -> str:
        return f"the {len(self.payload)}-octet datagram {Datagram(0, '', 0, '', 0, len(self.payload), self.payload).text()!r}"


def payload(size: int, label: str) -> bytes:
    """``size`` octets starting with ``label``: lower-case letters (an echo that changes case shows), and from
    300 octets on every octet value once (an echo that is not transparent to binary data shows)."""
    filler = b"abcdefghijklmnopqrstuvwxyz"
    body = label.encode() + b" "
    if size >= 300:
        body += bytes(range(256))
    body += filler * (size // len(filler) + 1)
    return body[:size]


class UdpEchoCase:
    """What a UDP echo case holds after ``start()``: the tester's socket, the capture, the means to break the path."""

    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tester: TcpTester | None = None
        self.conn: str | None = None
        self._view: tuple[int, list[Datagram]] | None = None

    def start(self, needs_container: bool = True) -> UdpEchoCase:
        """Start the IUT's server and open the tester's UDP socket.

        ``needs_container=False``: the case also runs against an already running endpoint (--iut-address).
        """
        world = self.world
        world.require(keepalive=False, needs_container=needs_container)
        world.build(None)
        self.tester = world.start_agent()
        world.logs["datagrams.txt"] = lambda: to_text(self.datagrams())
        self.port = world.serve()
        wildcard = "::" if ":" in world.iut_address else "0.0.0.0"
        self.conn = self.tester.udp_open(host=wildcard, record=RECORD)
        self.tester_port = int(self.tester.opened(self.conn).data["local"][1])
        return self

    # -- the wire -------------------------------------------------------------------------------
    @property
    def iut(self) -> str:
        return self.world.iut_address

    @property
    def peer(self) -> str:
        return self.world.tester_address

    @property
    def origin(self) -> tuple[str, int]:
        return self.peer, self.tester_port

    @property
    def faults(self):
        return self.world.faults

    def datagrams(self) -> list[Datagram]:
        """The capture's datagrams; rebuilt only when new segments arrived (cases poll this while they wait)."""
        segments = self.world.capture.segments()
        if self._view is None or self._view[0] != len(segments):
            self._view = (len(segments), datagrams(segments))
        return self._view[1]

    def arrived(self, data: bytes, after: float) -> Datagram | None:
        """The tester's datagram carrying ``data`` as it reached the IUT (sent after wall time ``after``), if it did."""
        for d in flow(self.datagrams(), self.origin, (self.iut, self.port)):
            if d.t > after - CLOCK_SLACK and d.size == len(data) and d.head == data:
                return d
        return None

    def wait_arrival(self, data: bytes, after: float, timeout: float = ARRIVAL_BOUND) -> Datagram | None:
        try:
            return wait_until(lambda: self.arrived(data, after), timeout, poll_max=0.05, what="a datagram to reach the IUT")
        except TimedOut:
            return None

    def replies(self, request: Datagram) -> list[Datagram]:
        """What the IUT sent, to anyone, within ANSWER_BOUND after ``request`` reached it."""
        return [d for d in self.datagrams()
                if d.src == self.iut and request.t <= d.t <= request.t + ANSWER_BOUND]

    # -- acting -----------------------------------------------------------------------------------
    def send(self, data: bytes) -> Exchange:
        """Send one datagram to the IUT (nothing waited for); the exchange to complete with ``settle()``."""
        exchange = Exchange(data, time.time(), origin=self.origin)
        self.tester.send_to(self.conn, data, self.iut, self.port)
        return exchange

    def settle(self, exchange: Exchange, arrival_bound: float = ARRIVAL_BOUND) -> Exchange:
        """Wait for the datagram to reach the IUT, then for its echo: until it shows, or ANSWER_BOUND has passed."""
        exchange.request = self.wait_arrival(exchange.payload, exchange.sent, arrival_bound)
        if exchange.request is None:
            return exchange
        request = exchange.request

        def echoed() -> bool:
            exchange.replies = self.replies(request)
            return exchange.echo is not None or time.time() > request.t + ANSWER_BOUND

        try:
            wait_until(echoed, ANSWER_BOUND + 1.0, poll_max=0.05, what="the IUT's answer to a datagram")
        except TimedOut:
            pass
        exchange.replies = self.replies(request)
        return exchange

    def exchange(self, data: bytes) -> Exchange:
        """Send one datagram and wait for what the IUT makes of it."""
        return self.settle(self.send(data))

    def received(self, data: bytes) -> bool:
        """The tester's agent received a datagram carrying exactly ``data``."""
        return any(e.data.get("hex") == data.hex() and "size" not in e.data for e in self.tester.datagrams(self.conn))

    def drop_probes(self, direction: str, first: int | None = None) -> Fault:
        """Drop the protocol's "probe" datagrams (their data starts with "ping") going 'to-iut' or coming 'from-iut'."""
        return self.world.faults.drop(direction, MATCH, first=first, name=f"drop-ping-{direction}")

    def describe_origin(self) -> str:
        return endpoint_text(*self.origin)

    def evidence(self):
        return self.world.evidence()


@pytest.fixture
def udp(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "udp-echo") as world:
        yield UdpEchoCase(world)
