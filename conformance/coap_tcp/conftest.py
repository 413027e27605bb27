"""The ``coap_tcp`` fixture: a CoAP-over-TCP IUT (server role), the tester's connections to it, the capture.

The tester's agent opens TCP connections to the IUT and writes the CoAP messages the case builds
(fixtures/coapwire.py: a CSM, Pings with or without options, an Empty message, a length field that never
completes, ...). What the IUT did is read from the capture in its own namespace (fixtures/coaptcp.py): every
message it sent on that connection, stamped when its last octet crossed the wire, and how it ended the
connection. Answer times run from the capture time of the tester's message as it reached the IUT.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from fixtures.coaptcp import CoapTcpLog, CoapTcpReader, End, WireMessage
from fixtures.coapwire import CSM, PING, PONG, StreamReader, encode_tcp
from fixtures.sessions import CaseWorld
from fixtures.sockwatch import SocketWatch
from fixtures.testers.tcp import TcpTester
from fixtures.timeline import ConnKey, conn_key
from fixtures.waiting import TimedOut, wait_until

ANSWER_BOUND = 2.0  # seconds an answer may take: a Pong comes in about a millisecond; this tells "answered" from "never"
ARRIVAL_BOUND = 5.0  # seconds the tester's message may take to show in the IUT's capture
ABORT_BOUND = 5.0  # seconds an IUT has to abort a connection the RFC tells it to abort
ACCEPT_BOUND = 30.0  # seconds a client IUT has, once started, to connect to the tester
TESTER_PORT = 5683  # where a client IUT connects: CoAP's own port, on the tester
CLOSED_BY_IUT = {"FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "LAST-ACK", "TIME-WAIT", "gone"}  # socket states once it closed
GAP = 0.2  # seconds between two messages of the tester's, so each answer is told apart on the wire


@dataclass
class Conn:
    """One connection of the tester's to the IUT."""

    id: str
    key: ConnKey
    local: tuple[str, int]
    opened: float
    sent: int = 0  # messages the tester wrote on it
    iut_port: int | None = None  # the IUT's end of it


class CoapTcpCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tester: TcpTester | None = None
        self.conns: list[Conn] = []
        self.sockwatch: SocketWatch | None = None
        self.last_sent = 0.0
        self._reader = CoapTcpReader()
        self._fed = 0  # capture segments the reader has taken
        self._view_lock = threading.RLock()  # a tester thread (the DOTS heartbeats) reads the view too

    def start(self) -> CoapTcpCase:
        world = self.world
        world.require(keepalive=False, needs_container=False)
        world.build(None)
        self.tester = world.start_agent()
        world.logs["coap-tcp.txt"] = lambda: self.wire().to_text()
        self.port = world.serve()
        return self

    @property
    def iut(self) -> str:
        return self.world.iut_address

    def wire(self) -> CoapTcpLog:
        """The wire view as of now. Cases poll it and a flood makes it large, so each call parses only the segments
        the capture added since the last one; what it returns is a snapshot that later calls leave as it is."""
        with self._view_lock:
            segments = self.world.capture.segments()
            self._reader.feed(segments[self._fed:])
            self._fed = len(segments)
            return self._reader.log.snapshot()

    def open(self, csm: bool = True) -> Conn:
        """A new connection to the IUT; with ``csm`` the tester's CSM (no options: base values) goes first."""
        cid = self.tester.connect(self.iut, self.port)
        event = self.tester.find(lambda e: e.conn == cid and e.ev == "connected")
        local = (self.world.tester_address, int(event.data["local"][1]))
        conn = Conn(cid, conn_key(local, (self.iut, self.port)), local, time.time(), iut_port=self.port)
        self.conns.append(conn)
        if csm:
            self.send(conn, encode_tcp(CSM))
        return conn

    def send(self, conn: Conn, data: bytes, gap: float = GAP) -> None:
        wait_until(lambda: time.time() >= self.last_sent + gap, gap + 1, poll_max=0.02, what="the gap between messages")
        self.last_sent = time.time()
        conn.sent += 1
        self._write(conn, data)

    def _write(self, conn: Conn, data: bytes) -> None:
        """Put ``data`` on ``conn`` (over TLS, a subclass encrypts it first)."""
        self.tester.send(conn.id, data)

    def start_client(self, knobs: dict | None = None, send_csm: bool = True) -> Conn:
        """The IUT as a client: the tester listens on TESTER_PORT, the IUT is started and connects. The tester
        answers every Ping with a Pong of the same token until ``answering`` is cleared; it sends its CSM at once
        with ``send_csm``, else the case sends it when it chooses."""
        world = self.world
        world.require(keepalive=knobs is not None)
        world.build(knobs, tester_port=TESTER_PORT)
        self.tester = world.start_agent()
        world.logs["coap-tcp.txt"] = lambda: self.wire().to_text()
        self.tester.listen(TESTER_PORT, host=world.net.any_address)
        self.answering = True
        self._readers: dict[str, StreamReader] = {}
        self.tester.listeners.append(self._answer)
        world.iut.start()
        accepted = self.tester.accepted(ACCEPT_BOUND)
        if accepted is None:
            self.world.verdicts.inconclusive_rest(f"the IUT did not connect to the tester within {ACCEPT_BOUND:g} s")
        peer = (accepted.data["peer"][0], int(accepted.data["peer"][1]))
        local = (world.tester_address, TESTER_PORT)
        conn = Conn(accepted.conn, conn_key(local, peer), local, accepted.data.get("wall", time.time()), iut_port=peer[1])
        self.conns.append(conn)
        if send_csm:
            self.send(conn, encode_tcp(CSM), gap=0)
        return conn

    def _answer(self, event) -> None:
        """Listener on the agent's events: a Pong for each Ping the IUT sends, while ``answering``."""
        if event.ev != "data" or "hex" not in event.data:
            return
        reader = self._readers.setdefault(event.conn, StreamReader())
        for msg in reader.feed(bytes.fromhex(event.data["hex"])):
            if msg.code == PING and self.answering:
                self.tester.send(event.conn, encode_tcp(PONG, token=msg.token))

    def arrived(self, conn: Conn, index: int) -> WireMessage | None:
        """The tester's ``index``-th message on ``conn`` as it reached the IUT (capture), waiting ARRIVAL_BOUND."""
        try:
            return wait_until(lambda: next((m for m in self.wire().sent_by(self.world.tester_address, conn=conn.key)
                                            if m.index == index), None), ARRIVAL_BOUND, poll_max=0.05,
                              what="the tester's message to reach the IUT")
        except TimedOut:
            return None

    def from_iut(self, conn: Conn, after: float = 0.0) -> list[WireMessage]:
        return self.wire().sent_by(self.iut, conn=conn.key, after=after)

    def answer(self, conn: Conn, after: float, predicate, bound: float = ANSWER_BOUND) -> WireMessage | None:
        """The IUT's first message on ``conn`` after capture time ``after`` that ``predicate`` accepts, waiting
        until ``bound`` seconds past ``after``; or None."""
        def found():
            m = next((m for m in self.from_iut(conn, after) if predicate(m)), None)
            return m or (time.time() > after + bound and "none")
        result = wait_until(found, bound + ARRIVAL_BOUND, poll_max=0.02, what="the IUT's answer")
        return None if result == "none" else result

    def watch_socket(self, conn: Conn) -> None:
        """Follow the IUT's socket of ``conn`` in its namespace: on a blackholed path its FIN never reaches the
        wire (it waits behind unacknowledged data), but the socket leaves ESTABLISHED when the IUT closes it."""
        self.sockwatch = SocketWatch(self.world.iut.sidecar, self.world.tester_address, local_port=conn.iut_port)
        self.world.cleanups.append(self.sockwatch.stop)
        self.world.logs["socket-states.txt"] = lambda: "\n".join(f"{t:.3f} {s}" for t, s in self.sockwatch.changes)
        # Its first reading before anything is cut: a close is only told from a socket first seen open.
        try:
            wait_until(lambda: self.sockwatch.changes, 5.0, poll_max=0.02, what="the socket watch's first reading")
        except TimedOut:
            pass

    def ended(self, conn: Conn, after: float, bound: float) -> End | None:
        """How the IUT ended ``conn`` after capture time ``after`` (its FIN or RST; after watch_socket(), also its
        socket leaving ESTABLISHED), waiting ``bound`` s; or None."""
        def found():
            end = self.wire().end_by(self.iut, after=after, conn=conn.key)
            if end is None and self.sockwatch is not None:
                closed = self.sockwatch.closed_by_iut(CLOSED_BY_IUT)
                if closed and closed[1] > after:
                    end = End(closed[0], self.iut, conn.key, "socket " + closed[2])
            return end or (time.time() > after + bound and "none")
        result = wait_until(found, bound + ARRIVAL_BOUND, poll_max=0.05, what="the IUT to end the connection")
        return None if result == "none" else result

    def watch(self, until: float) -> None:
        """Let capture time ``until`` pass (a window in which something must not happen)."""
        wait_until(lambda: time.time() > until, max(until - time.time(), 0) + 1, poll_max=0.1, what="the window to pass")


@pytest.fixture
def coap_tcp(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "coap-tcp") as world:
        yield CoapTcpCase(world)
