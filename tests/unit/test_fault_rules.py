"""The rules faults set, checked without an engine: where they run, what they match, IPv4 and IPv6."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from fixtures.faults import Faults, delay_commands, family
from fixtures.protocols.tcp import PROBE_SHAPE


class FakeContainer:
    """Records what would run in a container; ``refuse`` names commands that exit 1."""

    def __init__(self, name: str, refuse: str = "") -> None:
        self.name = name
        self.ran: list = []
        self.refuse = refuse
        self.c = SimpleNamespace(exec_run=self._exec_run)
        self.sidecar = None

    def _exec_run(self, argv, **_):
        self.ran.append(argv)
        refused = self.refuse and self.refuse in " ".join(argv)
        return SimpleNamespace(exit_code=1 if refused else 0, output=b"")

    def exec(self, cmd, check=True):
        self.ran.append(cmd)
        return ""


def pod(refuse: str = "") -> tuple[FakeContainer, FakeContainer]:
    box, sidecar = FakeContainer("box", refuse="netem"), FakeContainer("sidecar", refuse=refuse)
    box.sidecar = sidecar
    return box, sidecar


def test_delay_is_set_and_checked_in_the_sidecar_not_the_box():
    box, sidecar = pod()
    faults = Faults(box, "10.213.0.2")
    assert faults.netem_available()
    fault = faults.delay(200)
    assert box.ran == []  # the box has no NET_ADMIN: nothing may run there
    assert ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "200ms"] in sidecar.ran
    fault.lift()
    assert sidecar.ran[-1] == "tc qdisc del dev eth0 root"


def test_delay_skips_with_the_reason_where_the_sidecar_lacks_netem():
    box, sidecar = pod(refuse="netem")
    faults = Faults(box, "10.213.0.2")
    assert not faults.netem_available()
    with pytest.raises(pytest.skip.Exception, match="no sch_netem"):
        faults.delay(100)


def test_delay_commands():
    assert delay_commands(5, "lo") == (["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "5ms"],
                                       "tc qdisc del dev lo root")


@pytest.mark.parametrize(("address", "expr"), [("10.213.0.2", "ip"), ("fd00:a11e::2", "ip6")])
def test_blackhole_and_loss_match_the_iuts_address_family(address, expr):
    box, sidecar = pod()
    faults = Faults(box, address)
    faults.blackhole("both")
    faults.loss(30)
    script = "\n".join(cmd for cmd in sidecar.ran if isinstance(cmd, str))
    assert f"{expr} saddr {address} drop" in script and f"{expr} daddr {address} drop" in script
    assert f"{expr} saddr {address} numgen random mod 100 < 30 drop" in script
    assert family(address) == expr


@pytest.mark.parametrize(("address", "shape"), [("10.213.0.2", "ip length <= 53"), ("fd00:a11e::2", "ip6 length <= 33")])
def test_a_protocols_match_and_a_count_make_one_rule_per_direction(address, shape):
    box, sidecar = pod()
    Faults(box, address).drop("to-iut", PROBE_SHAPE, first=2)
    script = sidecar.ran[-1]
    assert "hook output" in script and "hook input" not in script
    assert shape in script and "numgen inc mod 1000000 < 2 drop" in script


def test_a_direction_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="direction"):
        Faults(pod()[0], "10.213.0.2").drop("sideways")


def test_the_tcp_validator_judges_probes_against_the_cases_knobs():
    from fixtures.protocols.tcp import IDLE_FIRST, NO_GARBAGE, OFF_BY_DEFAULT, validate
    from fixtures.timeline import read_pcap
    from tests.unit.test_timeline import IUT, TESTER, keepalive_flow

    segments = read_pcap(keepalive_flow().pcap())  # probes 1 s after the peer's last segment (its ACK), each answered
    assert {v.requirement for v in validate(segments, IUT, TESTER, "server", {"knobs": None}).violations} == {OFF_BY_DEFAULT}
    found = validate(segments, IUT, TESTER, "server", {"knobs": {"idle-time": 1}, "features": set()})
    assert not found.violations and found.checked[IDLE_FIRST] and found.checked[NO_GARBAGE]
    # With 2 s of idle time, a probe 1 s after the ACK of the previous one comes too soon (an ACK received counts).
    early = validate(segments, IUT, TESTER, "server", {"knobs": {"idle-time": 2}, "features": set()})
    assert {v.requirement for v in early.violations} == {IDLE_FIRST}
