"""The faults do what they say, seen from the wire and the tester (no case depends on these alone)."""
from __future__ import annotations

import time
import uuid

import pytest

from fixtures import faults as process_faults
from fixtures.capture import Capture
from fixtures.faults import Faults
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import load_manifest
from fixtures.pods import start_tester
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import wait_until
from tests.conftest import ROOT, engine_available

pytestmark = pytest.mark.skipif(not engine_available(), reason="no Docker Engine answers")


@pytest.fixture
def world(tmp_path):
    """socat echo server (IUT at .2, capturing sidecar) and a connected tester at .3."""
    from fixtures.peers import RunningIut

    run = RunContext(run_id=f"faults-{uuid.uuid4().hex[:8]}")
    try:
        net = CaseNetwork(run, "faults")
        iut = RunningIut(run, net, load_manifest(ROOT / "peers" / "socat" / "peer.toml"), "tcp", "server", None)
        capture = Capture(iut.sidecar, tmp_path / "c.pcap")
        pod = start_tester(run, net, 3)
        iut.start()
        iut.wait_ready()
        tester = TcpTester(pod)
        conn = tester.connect(iut.address, 7000)
        yield {"iut": iut, "pod": pod, "tester": tester, "conn": conn, "capture": capture,
               "faults": Faults(pod, iut.address, iut.sidecar), "peer": net.address(3)}
        tester.stop()
        capture.stop()
    finally:
        run.teardown()


def echoed(w, payload: bytes, timeout: float):
    mark = time.monotonic()
    w["tester"].send(w["conn"], payload)
    # Held-back data may come back coalesced with later data, so look for the payload inside.
    return w["tester"].maybe(lambda e: e.ev == "data" and e.t >= mark and payload in bytes.fromhex(e.data["hex"]), timeout)


def test_blackhole_silences_and_lifting_restores(world):
    assert echoed(world, b"before", 3)
    hole = world["faults"].blackhole("both")
    assert echoed(world, b"during", 1.5) is None
    hole.lift()
    assert echoed(world, b"after", 5)  # TCP retransmits the held-back data too


def test_one_way_blackhole_drops_only_that_way(world):
    world["faults"].blackhole("from-iut")
    world["tester"].send(world["conn"], b"in")
    assert world["capture"].wait_for(lambda tl: tl.first("data", src=world["peer"]), 3)
    assert echoed(world, b"x", 1.5) is None


def test_full_loss_drops_everything_and_zero_loss_nothing(world):
    lossy = world["faults"].loss(100)
    assert echoed(world, b"lost", 1.5) is None
    lossy.lift()
    none = world["faults"].loss(0)
    assert echoed(world, b"kept", 5)
    none.lift()


def test_flap_restores_by_itself(world):
    world["faults"].flap(1.0)
    assert echoed(world, b"flap", 8)
    # The timer lifted it: traffic flows as soon as the rules are flushed; the bookkeeping follows.
    wait_until(lambda: not world["faults"].active, 10)


def test_crash_of_the_tester_sends_fin(world):
    process_faults.crash(world["pod"], process="agent.py")
    assert world["capture"].wait_for(lambda tl: tl.first("fin", src=world["peer"]) or tl.first("rst", src=world["peer"]), 5)


def test_freeze_keeps_the_kernel_answering(world):
    process_faults.freeze(world["pod"])
    try:
        assert world["pod"].status() == "paused"
    finally:
        process_faults.thaw(world["pod"])
    assert echoed(world, b"thawed", 5)


def test_delay_where_netem_exists_and_a_skip_with_the_reason_where_it_does_not(world):
    """Asked in the tester's sidecar (which holds NET_ADMIN): a delay delays, or the case skips saying why."""
    if not world["faults"].netem_available():
        with pytest.raises(pytest.skip.Exception, match="sch_netem"):
            world["faults"].delay(100)
        return
    world["faults"].delay(300)
    mark = time.monotonic()
    assert echoed(world, b"slow", 5)
    assert time.monotonic() - mark >= 0.3
