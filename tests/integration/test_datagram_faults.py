"""Every fault of fixtures/faults.py that applies to datagrams does what it says to UDP, seen from the
capture in the IUT's namespace and from the tester's agent: the socat UDP echo server (the IUT at .2)
and a tester pod at .3 whose agent holds one unconnected UDP socket. IPv4 throughout, and the blackhole
over IPv6 too; the socket watch follows the IUT's UDP socket from its sidecar."""
from __future__ import annotations

import ipaddress
import time
import uuid

import pytest

from fixtures import faults as process_faults
from fixtures.capture import Capture
from fixtures.datagrams import Datagram, datagrams, flow
from fixtures.faults import Faults
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import load_manifest
from fixtures.pods import start_tester
from fixtures.protocols.udp_echo import MATCH, is_probe
from fixtures.sockwatch import SocketWatch
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import TimedOut, wait_until
from tests.conftest import ROOT, engine_available

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")

PEER = ROOT / "peers" / "socat-udp-echo" / "peer.toml"
SILENCE_S = 1.5  # how long "nothing arrives" is watched for (an echo takes about a millisecond)
ARRIVE_S = 10.0  # the bound on anything that is to arrive (a loaded engine can lag seconds)


class UdpWorld:
    """The IUT, its capture, the tester's agent and UDP socket, and the faults between them."""

    def __init__(self, run: RunContext, net: CaseNetwork, tmp_path) -> None:
        from fixtures.peers import RunningIut

        self.tmp_path = tmp_path
        self.net = net
        self.iut = RunningIut(run, net, load_manifest(PEER), "udp-echo", "server", None)
        self.capture = Capture(self.iut.sidecar, tmp_path / "c.pcap", whole_payloads=True)
        self.pod = start_tester(run, net, 3)
        self.peer = net.address(3)
        self.iut.start()
        self.iut.wait_ready()
        self.port = self.iut.port
        self.tester = TcpTester(self.pod)
        self.conn = self.tester.udp_open(host=net.any_address)
        self.local_port = int(self.tester.opened(self.conn).data["local"][1])
        self.faults = Faults(self.pod, self.iut.address, self.iut.sidecar)

    def stop(self) -> None:
        self.tester.stop()
        self.capture.stop()
        (self.tmp_path / "tester.log").write_text(self.tester.log())  # next to c.pcap, for a failure's post-mortem

    # -- what the tester sees
    def send(self, data: bytes) -> float:
        """Send one datagram to the IUT; the agent's clock (monotonic) just before, for tester events."""
        mark = time.monotonic()
        self.tester.send_to(self.conn, data, self.iut.address, self.port)
        return mark

    def refused(self) -> list:
        """Sends that failed at the tester's socket: a datagram the to-iut rule drops on the tester's own output
        hook fails its sendto() with EPERM (where a real path would lose it silently)."""
        return [e for e in list(self.tester.events) if e.ev == "udp-error" and e.conn == self.conn and e.data.get("during") == "send"]

    def heard(self, data: bytes, after: float | None = None) -> bool:
        return any(e.data.get("hex") == data.hex() for e in self.tester.datagrams(self.conn, after))

    def echoed(self, data: bytes, timeout: float) -> bool:
        """Send ``data`` and wait (bounded) for the tester to receive its echo."""
        mark = self.send(data)
        return self.tester.maybe(lambda e: e.ev == "datagram" and e.conn == self.conn and e.t >= mark
                                 and e.data.get("hex") == data.hex(), timeout) is not None

    # -- what the capture in the IUT's namespace shows
    def to_iut(self) -> list[Datagram]:
        return flow(datagrams(self.capture.segments()), (self.peer, self.local_port), (self.iut.address, self.port))

    def from_iut(self) -> list[Datagram]:
        return flow(datagrams(self.capture.segments()), (self.iut.address, self.port), (self.peer, self.local_port))

    def reached_iut(self, data: bytes) -> bool:
        return any(d.head == data for d in self.to_iut())

    def iut_sent(self, data: bytes) -> bool:
        return any(d.head == data for d in self.from_iut())

    def shows(self, condition, timeout: float) -> bool:
        """Wait (bounded) until ``condition()`` holds; whether it did."""
        try:
            return bool(wait_until(condition, timeout, poll_max=0.05))
        except TimedOut:
            return False


def _world(tmp_path, ip_version: int):
    run = RunContext(run_id=f"dgram-faults-{uuid.uuid4().hex[:8]}")
    try:
        world = UdpWorld(run, CaseNetwork(run, "dgram-faults", ip_version=ip_version), tmp_path)
        yield world
        world.stop()
    finally:
        run.teardown()


@pytest.fixture
def world(tmp_path):
    yield from _world(tmp_path, 4)


@pytest.fixture
def world6(tmp_path):
    yield from _world(tmp_path, 6)


def blackhole_silences_and_lifting_restores(w: UdpWorld) -> None:
    assert w.echoed(b"before", ARRIVE_S)
    hole = w.faults.blackhole("both")
    assert not w.echoed(b"during", SILENCE_S)
    assert not w.reached_iut(b"during")  # dropped on the tester's output: the IUT never saw it
    hole.lift()
    assert w.echoed(b"after", ARRIVE_S)
    # The capture comes over a stream of its own and may lag the agent's: once it shows what came after,
    # it shows everything before it too (the path keeps the order). UDP sends nothing again.
    assert w.shows(lambda: w.reached_iut(b"after"), ARRIVE_S)
    assert not w.reached_iut(b"during")


def test_blackhole_both_ways_silences_and_lifting_restores(world):
    blackhole_silences_and_lifting_restores(world)


def test_blackhole_to_the_iut_stops_what_the_tester_sends(world):
    world.faults.blackhole("to-iut")
    world.send(b"in")
    assert not world.shows(lambda: world.reached_iut(b"in"), SILENCE_S)
    assert not world.iut_sent(b"in") and not world.heard(b"in")
    assert [e.data["name"] for e in world.refused()] == ["EPERM"]  # the tester's sendto() is told


def test_blackhole_from_the_iut_stops_only_its_answers(world):
    world.faults.blackhole("from-iut")
    world.send(b"out")
    assert world.shows(lambda: world.reached_iut(b"out") and world.iut_sent(b"out"), ARRIVE_S)
    assert not world.shows(lambda: world.heard(b"out"), SILENCE_S)  # dropped on the tester's input


def test_full_loss_drops_everything_and_zero_loss_nothing(world):
    lossy = world.faults.loss(100)
    for i in range(5):
        world.send(b"lost-%d" % i)
    assert not world.shows(lambda: world.to_iut() or world.tester.datagrams(world.conn), SILENCE_S)
    lossy.lift()
    none = world.faults.loss(0)
    for i in range(5):
        world.send(b"kept-%d" % i)
    assert world.shows(lambda: all(world.heard(b"kept-%d" % i) for i in range(5)), ARRIVE_S)
    assert world.shows(lambda: [d.head for d in world.to_iut()] == [b"kept-%d" % i for i in range(5)], ARRIVE_S)
    none.lift()


def test_dropping_the_first_matching_datagrams_lets_the_rest_through(world):
    world.faults.drop("to-iut", MATCH, first=2, name="drop-pings")
    sent = [b"ping-1", b"data-1", b"ping-2", b"data-2", b"ping-3", b"pingless", b"ping-4"]
    for data in sent:
        world.send(data)
    # The path keeps the order: once the last one is at the IUT, what is missing before it was dropped.
    assert world.shows(lambda: world.reached_iut(b"ping-4"), ARRIVE_S)
    reached = [d.head for d in world.to_iut()]
    assert reached == [b"data-1", b"data-2", b"ping-3", b"pingless", b"ping-4"]
    # The Python predicate names the same datagrams as the nft match: the two dropped are probes.
    assert [s for s in sent if s not in reached] == [s for s in sent if is_probe(s)][:2]
    assert world.shows(lambda: all(world.heard(d) for d in reached), ARRIVE_S)


def test_dropping_the_iuts_first_matching_answer(world):
    world.faults.drop("from-iut", MATCH, first=1, name="drop-ping-echo")
    # One at a time until the first answer left: socat's UDP fork hands datagrams that arrive together to two
    # children, which may answer out of order (ping-b's echo was seen to leave first, and was the one dropped).
    world.send(b"ping-a")
    assert world.shows(lambda: world.iut_sent(b"ping-a"), ARRIVE_S)  # the capture shows the IUT's answer
    for data in (b"other", b"ping-b"):
        world.send(data)
    assert world.shows(lambda: world.heard(b"ping-b") and world.heard(b"other"), ARRIVE_S)
    assert not world.heard(b"ping-a")  # the IUT answered; the answer was dropped


def test_flap_drops_while_it_lasts_and_restores_by_itself(world):
    world.faults.flap(1.0)
    world.send(b"flap")
    assert world.shows(lambda: not world.faults.active, 10)  # the timer lifted it
    assert world.echoed(b"after-flap", ARRIVE_S)
    assert world.shows(lambda: world.reached_iut(b"after-flap"), ARRIVE_S)  # the capture has caught up
    # The first send met the flap (its sendto() failed: the rule was on) unless the engine was so slow that
    # it went out after the lift, and then it was echoed.
    if world.refused():
        assert not world.reached_iut(b"flap") and not world.heard(b"flap")
    else:
        assert world.heard(b"flap")


def test_a_frozen_tester_sends_nothing_until_thawed(world):
    process_faults.freeze(world.pod)
    try:
        assert world.pod.status() == "paused"
        world.send(b"frozen")  # the agent is stopped: the command waits in its input
        assert not world.shows(lambda: world.reached_iut(b"frozen"), SILENCE_S)
    finally:
        process_faults.thaw(world.pod)
    assert world.shows(lambda: world.heard(b"frozen"), ARRIVE_S)


def test_a_crashed_tester_leaves_nothing_on_the_wire_and_a_new_one_is_served(world):
    assert world.echoed(b"before", ARRIVE_S)
    crashed = time.time()
    process_faults.crash(world.pod, process="agent.py")
    assert world.shows(lambda: not world.pod.exec(["pgrep", "-f", "agent.py"], check=False).strip(), ARRIVE_S)
    # UDP has no FIN: nothing of the tester's reaches the IUT after the crash.
    assert not world.shows(lambda: [d for d in world.to_iut() if d.t > crashed], SILENCE_S)
    # The IUT cannot tell: its socket for the dead peer is still there, connected to it.
    sockets = world.iut.sidecar.exec(["ss", "-Hun", "dst", f"{world.peer}:{world.local_port}"])
    assert sockets.strip(), "the IUT's socket for the crashed tester is gone"
    world.tester.stop()
    world.tester = TcpTester(world.pod)  # a new agent, with a new socket (port)
    world.conn = world.tester.udp_open(host=world.net.any_address)
    world.local_port = int(world.tester.opened(world.conn).data["local"][1])
    assert world.echoed(b"new peer", ARRIVE_S)


def test_the_socket_watch_sees_the_iuts_socket_bound_connected_and_gone(world):
    watch = SocketWatch(world.iut.sidecar, world.peer, transport="datagram", local_port=world.port)
    try:
        assert world.shows(lambda: [s for _, s in watch.changes] == ["bound"], ARRIVE_S)  # listening, no peer yet
        assert world.echoed(b"hello", ARRIVE_S)
        assert world.shows(lambda: watch.changes[-1][1] == "connected", ARRIVE_S)  # socat's child for this peer
        killed = time.time()
        world.iut.container.kill()
        assert world.shows(lambda: watch.changes[-1][1] == "gone", ARRIVE_S)
        assert [s for _, s in watch.changes] == ["bound", "connected", "gone"]
        assert watch.changes[-1][0] >= killed - 0.1
    finally:
        watch.stop()


def test_blackhole_over_ipv6(world6):
    assert ipaddress.ip_address(world6.iut.address).version == 6 and world6.net.any_address == "::"
    blackhole_silences_and_lifting_restores(world6)
    seen = datagrams(world6.capture.segments())
    assert seen and all(ipaddress.ip_address(d.src).version == 6 for d in seen)
