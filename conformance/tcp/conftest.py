"""The ``tcp`` fixture: an IUT in a role, a connected tester, the capture and the faults, ready to act on."""
from __future__ import annotations

import re
import time

import pytest

from fixtures.faults import Fault
from fixtures.protocols.tcp import PROBE_SHAPE
from fixtures.sessions import CaseWorld
from fixtures.testers.tcp import TcpTester
from fixtures.timeline import Event, Timeline

TESTER_PORT = 9000
# No segment for this long, and nothing unacknowledged: the connection is idle and the keep-alive clock runs.
SETTLE_QUIET = 0.5


class TcpCase:
    """What a TCP case holds after ``start()``: the connection, its capture, and the means to break it."""

    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tester: TcpTester | None = None
        self.conn: str | None = None

    def start(self, keepalive: dict | None, needs_container: bool = True) -> TcpCase:
        """Start the IUT (its plain command, or its keepalive command with these knobs) and connect.

        ``needs_container=False``: the case also runs against an already running endpoint (--iut-address).
        """
        world = self.world
        world.require(keepalive=keepalive is not None, needs_container=needs_container)
        world.build(keepalive, tester_port=TESTER_PORT)
        self.tester = TcpTester(world.tester_pod)
        world.cleanups.append(self.tester.stop)
        world.logs["tester.log"] = self.tester.log
        if world.external:
            self.conn = self.tester.connect(world.iut_address, world.iut_port)
        elif world.role == "client":
            self.tester.listen(TESTER_PORT, host=world.net.any_address)
        if not world.external:
            world.iut.start()
            world.iut.wait_ready(probe=lambda: self.tester.find(lambda e: e.ev == "accepted"))
            if world.role == "client":
                self.conn = self.tester.find(lambda e: e.ev == "accepted").conn
            else:
                self.conn = self.tester.connect(world.iut_address, world.iut.port)
        # A first exchange, so the idle clock starts from a known segment on the wire.
        spec = world.iut.spec if world.iut else world.manifest.role("tcp", "server")
        self.tester.send(self.conn, spec.option("greeting").encode())
        self.established = self.world.capture.wait_for(lambda tl: tl.first("data", src=world.tester_address), 5)
        # Cases cut the path or drop pure ACKs next, so the idle clock must start on a quiet connection:
        # whatever the greeting provoked (sshd answers with its KEXINIT) sent and acknowledged both ways.
        # Data left in flight would be retransmitted instead of probed, and the case would time the RTO.
        self.world.capture.wait_for(self._settled, 5)
        return self

    def _settled(self, timeline: Timeline) -> bool:
        if not timeline.events or time.time() - timeline.events[-1].t < SETTLE_QUIET:
            return False
        return timeline.all_acknowledged(self.iut, self.peer) and timeline.all_acknowledged(self.peer, self.iut)

    def chatter(self) -> None:
        """Send the manifest's harmless traffic (it must not upset the IUT's application)."""
        self.tester.send(self.conn, self.world.iut.spec.option("chatter").encode())

    def drop_probes(self, which: str = "replies", first: int | None = None) -> Fault:
        """Drop the IUT's keepalive probes ('probes') or the tester's ACKs answering them ('replies').

        ``first``: only the first N. Use it on an otherwise idle connection: every pure ACK there is a
        probe or a probe's reply.
        """
        direction = {"replies": "to-iut", "probes": "from-iut"}[which]
        return self.world.faults.drop(direction, PROBE_SHAPE, first=first, name=f"drop-{which}")

    @property
    def iut(self) -> str:
        return self.world.iut_address

    @property
    def peer(self) -> str:
        return self.world.tester_address

    @property
    def faults(self):
        return self.world.faults

    @property
    def capture(self):
        return self.world.capture

    def timeline(self) -> Timeline:
        return self.world.capture.timeline()

    def keepalive_probes(self, timeline: Timeline | None = None) -> list[Event]:
        """The IUT's keepalive probes (zero-window probes excluded: they answer a closed window, not idleness)."""
        timeline = timeline or self.timeline()
        return [e for e in timeline.probes(src=self.iut) if e.note != "zero-window"]

    def wait_probes(self, count: int, timeout: float, after: float | None = None) -> list[Event] | None:
        """Wait until the IUT has sent ``count`` probes (after wall time ``after``); None at the bound."""

        def enough(tl: Timeline):
            probes = [p for p in self.keepalive_probes(tl) if after is None or p.t > after]
            return probes if len(probes) >= count else None

        return self.world.capture.wait_for(enough, timeout)

    def iut_gave_up(self, timeline: Timeline) -> Event | None:
        """The IUT's RST or FIN on the connection: how it drops a dead peer."""
        ends = [e for e in timeline.events if e.src == self.iut and e.kind in ("rst", "fin")]
        return ends[0] if ends else None

    def last_from_peer(self, timeline: Timeline, before: float) -> Event | None:
        """The last segment that reached the IUT from the tester before ``before`` (the idle clock's start)."""
        seen = [e for e in timeline.events if e.src == self.peer and e.t < before]
        return seen[-1] if seen else None

    def keepalive_timer(self) -> str | None:
        """The kernel's keep-alive timer on the IUT's side of the connection, as `ss` shows it (None: off).

        Read in the IUT's own namespace through the sidecar: it tells whether the IUT's program asked
        for keep-alive on this connection even where no probe has gone out yet.
        """
        if self.world.external:
            return None
        out = self.world.iut.sidecar.exec(["ss", "-Htno", "state", "established", "dst", self.peer])
        match = re.search(r"timer:\((keepalive),([^,]+),", out)
        return match.group(2) if match else None

    def evidence(self):
        return self.world.evidence()


@pytest.fixture
def tcp(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "tcp") as world:
        yield TcpCase(world)
