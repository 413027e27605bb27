"""The ``ws`` fixture: a WebSocket IUT in a role, the tester's end of an open connection, the capture.

Server IUTs are dialled by the tester (which then plays a client); client IUTs dial the tester, which
listens and accepts their opening handshake. Either way ``ws.peer`` is the tester's end, and the
capture in the IUT's namespace, read as frames by ``ws.wire()``, is the ground truth for timing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from fixtures.sessions import CaseWorld
from fixtures.sockwatch import SocketWatch
from fixtures.testers import wsframes
from fixtures.testers.tcp import TcpTester
from fixtures.testers.websocket import HandshakeFailed, WsPeer
from fixtures.waiting import TimedOut, wait_until
from fixtures.wswire import WireFrame, WireLog, WsWireView

TESTER_PORT = 9000
# The keepalive knobs the timing cases give an IUT (seconds). Small enough for a quick suite, large
# enough that a loaded 2-core machine's scheduling noise stays well inside the tolerances.
KNOBS = {"ping-interval": 2, "ping-timeout": 2}
# Socket states that mean the IUT itself closed (CLOSE-WAIT is the peer's close, not yet the IUT's).
CLOSED_BY_IUT = {"FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "LAST-ACK", "TIME-WAIT", "gone"}


@dataclass(frozen=True)
class Ending:
    """How a connection ended, as the capture shows it (the IUT's side)."""

    t: float
    how: str  # "close" | "fin" | "rst" | "socket"
    code: int | None = None
    reason: str = ""

    @property
    def label(self) -> str:
        """A short form for the report's endings table: the Close code, or the bare TCP end and what the peer sees."""
        if self.how == "socket":
            return "socket closed"
        if self.how in ("close", "queued"):
            return str(self.code) if self.code is not None else "Close, no code"
        return f"{self.how.upper()} (1006)"

    def describe(self) -> str:
        if self.how == "queued":
            return (f"Close {self.code} {self.reason!r}, written by the deadline but held in the IUT's send queue "
                    "behind its unacknowledged Ping; it left when the path came back")
        if self.how == "socket":
            return (f"the IUT closed its socket ({self.reason}), but nothing reached the wire: a Close or FIN "
                    "queued behind unacknowledged data")
        if self.how == "close":
            return f"Close {self.code if self.code is not None else '(no code)'}" + (f" {self.reason!r}" if self.reason else "")
        return f"TCP {self.how.upper()} without a Close frame (the peer sees 1006)"


class WsCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tcp: TcpTester | None = None
        self.peer: WsPeer | None = None
        self._wire: tuple[int, WireLog] | None = None
        self._view = WsWireView()

    # -- set-up -------------------------------------------------------------------------------
    def start(self, knobs: dict | None = None, needs_container: bool = True) -> WsPeer:
        """Start the IUT (with its keepalive knobs, if given) and complete the opening handshake."""
        world = self.world
        world.require(keepalive=knobs is not None, needs_container=needs_container)
        world.build(knobs, tester_port=TESTER_PORT)
        self.knobs = knobs
        self.tcp = TcpTester(world.tester_pod)
        world.cleanups.append(self.tcp.stop)
        world.logs["tester.log"] = self.tcp.log
        world.logs["wire.txt"] = lambda: self.wire().to_text()
        if world.external:
            conn = self.tcp.connect(world.iut_address, world.iut_port)
            self.peer = WsPeer(self.tcp, conn, "client")
        elif world.role == "client":
            self.tcp.listen(TESTER_PORT, host=world.net.any_address)
            world.iut.start()
            world.iut.wait_ready(probe=lambda: self.tcp.find(lambda e: e.ev == "accepted"))
            conn = self.tcp.wait(lambda e: e.ev == "accepted", 5, "the client IUT to connect").conn
            self.peer = WsPeer(self.tcp, conn, "server")
        else:
            world.iut.start()
            world.iut.wait_ready()
            self.peer = WsPeer(self.tcp, self.tcp.connect(world.iut_address, world.iut.port), "client")
        world.logs["frames.log"] = self.peer.log
        self.peer.on_problem = world.verdicts.stream_stopped
        if self.peer.problem:  # the handshake's own bytes may already have been read
            world.verdicts.stream_stopped(self.peer.problem)
        try:
            if self.peer.role == "client":
                path = (world.iut.spec if world.iut else world.manifest.role("websocket", "server")).option("path")
                self.peer.open(world.iut_address, path)
            else:
                self.peer.accept()
        except HandshakeFailed as err:
            world.verdicts.inconclusive_rest(f"the opening handshake did not complete ({err}), so no rule could be checked")
        self.opened_at = self.peer.now()
        return self.peer

    def claims(self, feature: str) -> bool:
        """The manifest claims ``feature`` for WebSocket (an external endpoint claims nothing)."""
        section = self.world.manifest.protocols.get("websocket")
        return section is not None and feature in section.features

    @property
    def iut(self) -> str:
        return self.world.iut_address

    @property
    def tester(self) -> str:
        return self.world.tester_address

    @property
    def faults(self):
        return self.world.faults

    # -- the wire -----------------------------------------------------------------------------
    def wire(self) -> WireLog:
        """The capture as frames; rebuilt only when new segments arrived (cases poll this while they wait)."""
        segments = self.world.capture.segments()
        if self._wire is None or self._wire[0] != len(segments):
            self._wire = (len(segments), self._view.update(segments))  # only what the capture added is decoded
        return self._wire[1]

    def wait_wire(self, predicate, timeout: float):
        """Wait until ``predicate(wire)`` is truthy; its value, or None at the bound."""
        try:
            return wait_until(lambda: predicate(self.wire()), timeout, poll_max=0.1)
        except TimedOut:
            return None

    def iut_frames(self, opcode: int | None = None, after: float | None = None) -> list[WireFrame]:
        return self.wire().sent_by(self.iut, opcode, after)

    def ending(self, wire: WireLog, after: float | None = None) -> Ending | None:
        """The IUT's first Close frame or TCP FIN/RST after wall time ``after``, whichever came first."""
        close = wire.first(self.iut, wsframes.CLOSE, after)
        end = wire.end_by(self.iut, after)
        if close and (end is None or close.t <= end.t):
            code, reason = close.close
            return Ending(close.t, "close", code, reason)
        if end:
            return Ending(end.t, end.kind)
        return None

    def watch_socket(self) -> None:
        """Start following the IUT's socket state (before a fault whose effect may never reach the wire)."""
        self.sockwatch = SocketWatch(self.world.iut.sidecar, self.tester)
        self.world.cleanups.append(self.sockwatch.stop)
        self.world.logs["socket-states.txt"] = lambda: "\n".join(f"{t:.3f} {state}" for t, state in self.sockwatch.changes)

    def wait_ending(self, timeout: float, after: float | None = None, socket: bool = False) -> Ending | None:
        """The IUT's end of the connection on the wire; with ``socket`` (after watch_socket()), also its
        socket leaving ESTABLISHED in its own namespace (for a blackholed path, where what the IUT sends
        never gets out of its queue). A socket close is dated at the earliest moment it can have happened
        (one read period before it was seen); the reason names both."""

        def ended():
            found = self.ending(self.wire(), after)
            if found or not socket:
                return found
            closed = self.sockwatch.closed_by_iut(CLOSED_BY_IUT)
            if closed and (after is None or closed[1] > after):
                earliest, seen, state = closed
                return Ending(earliest, "socket", None,
                              f"{state}; seen {seen - earliest:.2f} s after the last read that saw it open")
            return None

        try:
            return wait_until(ended, timeout, poll_max=0.1)
        except TimedOut:
            return None

    def unsent_octets(self) -> int:
        """Octets the IUT has written on its connection to the tester that TCP has not sent yet (ss notsent)."""
        out = self.world.iut.sidecar.exec(["ss", "-Htni", "dst", self.tester], check=False)
        match = re.search(r"notsent:(\d+)", out)
        return int(match.group(1)) if match else 0

    def peer_gone(self) -> bool:
        """The tester's TCP connection has ended (EOF or error seen by the agent)."""
        return self.peer.ended() is not None


@pytest.fixture
def ws(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "websocket") as world:
        yield WsCase(world)
