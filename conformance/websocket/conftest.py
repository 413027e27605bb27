"""The ``ws`` fixture: a WebSocket IUT (server role so far), an open connection from the tester, the capture."""
from __future__ import annotations

import pytest

from fixtures.sessions import CaseWorld
from fixtures.testers.tcp import TcpTester
from fixtures.testers.websocket import HandshakeFailed, WsClient


class WsCase:
    def __init__(self, world: CaseWorld) -> None:
        self.world = world
        self.tcp: TcpTester | None = None
        self.client: WsClient | None = None

    def start(self, knobs: dict | None = None) -> WsClient:
        """Start the IUT (with its keepalive knobs, if given), connect, and complete the opening handshake."""
        world = self.world
        world.require(keepalive=knobs is not None)
        world.build(knobs)
        self.tcp = TcpTester(world.tester_pod)
        world.cleanups.append(self.tcp.stop)
        world.logs["tester.log"] = self.tcp.log
        world.iut.start()
        world.iut.wait_ready()
        conn = self.tcp.connect(world.iut_address, world.iut.port)
        self.client = WsClient(self.tcp, conn)
        world.logs["frames.log"] = self.client.log
        try:
            self.client.open(world.iut_address, world.iut.spec.path)
        except HandshakeFailed as err:
            self.world.verdicts.not_applicable(f"the opening handshake failed ({err}), so no frame rule can be checked")
        return self.client


@pytest.fixture
def ws(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "websocket") as world:
        yield WsCase(world)
