"""RFC 9643 ietf-tcp-common keepalives (idle-time, probe-interval, max-probes), and dead-peer detection.

The RFCs set no probe count; the YANG grouping gives the knobs their meaning: an unresponsive peer
is dropped about idle-time + max-probes x probe-interval after it last answered. Faults are
injected on the tester's side, so the capture in the IUT's namespace shows exactly what the IUT
sent and what reached it.
"""
from __future__ import annotations

import time

import pytest

from conformance.tcp.timing import deviation, tolerance, within
from fixtures import faults as process_faults

KNOBS = {"idle-time": 2, "probe-interval": 1, "max-probes": 3}
DETECTION = KNOBS["idle-time"] + KNOBS["max-probes"] * KNOBS["probe-interval"]

pytestmark = pytest.mark.protocol("tcp")


def _unanswered_run(tcp, timeline=None):
    """Probes sent after the peer's last segment, and the IUT's RST/FIN if it gave up."""
    timeline = timeline or tcp.timeline()
    peer_segments = [e for e in timeline.events if e.src == tcp.peer]
    last_peer = peer_segments[-1].t if peer_segments else timeline.start
    probes = [p for p in tcp.keepalive_probes(timeline) if p.t > last_peer]
    return timeline, last_peer, probes, tcp.iut_gave_up(timeline)


@pytest.mark.requirement("RFC9643-keepalives-probe-interval")
@pytest.mark.roles("server", "client")
def test_probe_interval_honoured(tcp, verdict):
    """Unanswered probes repeat every probe-interval seconds."""
    knobs = dict(KNOBS, **{"probe-interval": 1, "max-probes": 4})
    tcp.start(keepalive=knobs)
    tcp.drop_probes("replies")
    # Only unanswered probes repeat at the probe-interval; count those after the peer's last segment.
    probes = tcp.capture.wait_for(
        lambda tl: (run := _unanswered_run(tcp, tl)[2]) and len(run) >= 3 and run,
        # Room for intervals up to three times too long, so a wrong interval is measured, not missed.
        knobs["idle-time"] + 3 * 3 * knobs["probe-interval"] + 2,
    )
    if probes is None:
        timeline, _, seen, ended = _unanswered_run(tcp)
        if ended is not None:
            verdict.inconclusive(
                "RFC9643-keepalives-probe-interval",
                f"the IUT gave up after {len(seen)} unanswered probes, before three could be timed (see max-probes)",
                measured={"probes": len(seen)},
            )
        else:
            verdict.check(
                "RFC9643-keepalives-probe-interval", False,
                f"only {len(seen)} unanswered probes: no interval to measure", measured={"probes": len(seen)},
            )
        return
    intervals = [round(b.t - a.t, 3) for a, b in zip(probes, probes[1:], strict=False)][:3]
    worst = max(abs(i - knobs["probe-interval"]) for i in intervals)
    verdict.check(
        "RFC9643-keepalives-probe-interval",
        all(within(i, knobs["probe-interval"]) for i in intervals),
        f"intervals between unanswered probes {intervals} s; configured {knobs['probe-interval']} s",
        measured={"intervals_s": intervals, "configured_s": knobs["probe-interval"], "worst_error_s": round(worst, 3)},
        tolerance=tolerance(knobs["probe-interval"]),
        window=(probes[0].t, probes[min(3, len(probes) - 1)].t),
        deviation=max(deviation(i, knobs["probe-interval"]) for i in intervals),
    )


@pytest.mark.requirement("RFC9643-keepalives-max-probes")
@pytest.mark.roles("server", "client")
def test_max_probes_then_drop(tcp, verdict):
    """With every reply lost, the IUT sends max-probes probes, then drops the connection and stops probing."""
    tcp.start(keepalive=KNOBS)
    tcp.drop_probes("replies")
    tcp.capture.wait_for(lambda tl: tcp.iut_gave_up(tl), DETECTION + 2 * KNOBS["probe-interval"] + 1)
    timeline, last_peer, probes, ended = _unanswered_run(tcp)
    # A conformant IUT is silent after it gives up: wait for a probe that should never come.
    after_end = tcp.wait_probes(1, timeout=2 * KNOBS["probe-interval"], after=ended.t) if ended else None
    detected = ended.t - last_peer if ended else None
    ok = len(probes) == KNOBS["max-probes"] and ended is not None and after_end is None
    verdict.check(
        "RFC9643-keepalives-max-probes",
        ok,
        (f"{len(probes)} unanswered probes, then {ended.kind.upper()} {detected:.2f} s after the peer's last segment"
         if ended else f"{len(probes)} unanswered probes and the connection was never dropped")
        + f" (max-probes {KNOBS['max-probes']})",
        measured={"probes": len(probes), "configured_max_probes": KNOBS["max-probes"],
                  "detection_s": round(detected, 3) if detected else None, "expected_detection_s": DETECTION},
        tolerance="exact probe count",
    )


@pytest.mark.requirement("RFC9643-keepalives-max-probes")
@pytest.mark.roles("server", "client")
def test_blackholed_peer_detected(tcp, verdict):
    """A peer cut off silently (both ways) is dropped about idle-time + max-probes x probe-interval later."""
    tcp.start(keepalive=KNOBS)
    tcp.world.mark(time.time(), "blackhole on")
    tcp.faults.blackhole("both")
    tcp.capture.wait_for(lambda tl: tcp.iut_gave_up(tl), DETECTION + 2 * KNOBS["probe-interval"] + 1)
    timeline, last_peer, probes, ended = _unanswered_run(tcp)
    detected = ended.t - last_peer if ended else None
    # The drop comes one probe-interval after the last probe; the first probe one idle-time after silence.
    ok = ended is not None and within(detected, DETECTION)
    verdict.check(
        "RFC9643-keepalives-max-probes",
        ok,
        f"blackholed peer dropped after {detected:.2f} s (expected {DETECTION} s) with {len(probes)} probes"
        if ended else f"blackholed peer still not dropped {DETECTION + 2 * KNOBS['probe-interval'] + 1} s later",
        measured={"detection_s": round(detected, 3) if detected else None, "expected_s": DETECTION, "probes": len(probes)},
        tolerance=tolerance(DETECTION),
        window=(last_peer, ended.t) if ended else None,
        deviation=deviation(detected, DETECTION) if ended else None,
    )


@pytest.mark.requirement("SUITE-TCP-reset-peer")
@pytest.mark.roles("server", "client")
def test_rebooted_peer_detected_by_reset(tcp, verdict):
    """A peer that lost its connection state answers the next probe with RST, which ends the connection."""
    # A longer idle time and more probes, so that on a loaded engine (where a container restart can
    # take seconds) the reboot still ends while the IUT is probing.
    knobs = {"idle-time": 8, "probe-interval": 1, "max-probes": 8}
    tcp.start(keepalive=knobs)
    began = time.time()
    tcp.world.mark(began, "tester rebooting (its dying FIN is dropped at the IUT's input)")
    tcp.faults.reboot_tester(tcp.peer)
    back = time.time()
    tcp.world.mark(back, "tester back, without the connection")
    bound = knobs["idle-time"] + knobs["max-probes"] * knobs["probe-interval"] + 2 - (back - began)
    reset = tcp.capture.wait_for(lambda tl: tl.first("rst", src=tcp.peer, after=back), max(bound, 1))
    if reset is None:
        verdict.inconclusive(
            "SUITE-TCP-reset-peer",
            f"no RST from the rebooted peer: the reboot took {back - began:.1f} s and no probe reached it afterwards",
            measured={"reboot_s": round(back - began, 3)},
        )
        return
    later = tcp.wait_probes(1, timeout=2 * knobs["probe-interval"], after=reset.t)
    verdict.observe(
        "SUITE-TCP-reset-peer",
        "the probe met RST and the IUT stopped probing" if later is None
        else "the IUT kept probing after the peer's RST",
        measured={"probes_after_rst": len(later or []), "reboot_s": round(back - began, 3)},
    )


@pytest.mark.requirement("SUITE-TCP-frozen-peer")
@pytest.mark.roles("server", "client")
def test_frozen_peer_goes_unnoticed(tcp, verdict):
    """A frozen peer's kernel keeps answering probes: TCP keep-alive alone does not notice it."""
    tcp.start(keepalive=KNOBS)
    tcp.world.mark(time.time(), "tester frozen")
    process_faults.freeze(tcp.world.tester_pod)
    try:
        answered = tcp.capture.wait_for(
            lambda tl: tl.count("probe-ack", src=tcp.peer) >= KNOBS["max-probes"] + 1 or None, DETECTION + 3
        )
    finally:
        process_faults.thaw(tcp.world.tester_pod)
    ended = tcp.iut_gave_up(tcp.timeline())
    verdict.observe(
        "SUITE-TCP-frozen-peer",
        "the frozen peer's kernel answered every probe; the IUT kept the connection" if answered and not ended
        else f"unexpected: {'the IUT dropped the connection' if ended else 'probes went unanswered'}",
        measured={"probe_replies": tcp.timeline().count("probe-ack", src=tcp.peer), "dropped": bool(ended)},
    )


@pytest.mark.requirement("RFC1122-4.2.3.6-probe-reply")
@pytest.mark.roles("server", "client")
def test_iut_answers_probes(tcp, verdict):
    """The tester probes the IUT; the IUT's TCP answers each probe with an ACK."""
    tcp.start(keepalive=None, needs_container=False)
    tcp.tester.keepalive(tcp.conn, idle=1, interval=1, count=5)
    replies = tcp.capture.wait_for(lambda tl: tl.count("probe-ack", src=tcp.iut) >= 2 or None, 5)
    timeline = tcp.timeline()
    verdict.observe(
        "RFC1122-4.2.3.6-probe-reply",
        f"the IUT answered {timeline.count('probe-ack', src=tcp.iut)} of {len(timeline.probes(src=tcp.peer))} probes"
        if replies else "the IUT left the tester's probes unanswered",
        measured={"tester_probes": len(timeline.probes(src=tcp.peer)), "iut_acks": timeline.count("probe-ack", src=tcp.iut)},
    )


@pytest.mark.requirement("RFC9643-keepalives-idle-time")
@pytest.mark.roles("server")
def test_idle_time_under_path_delay(tcp, verdict):
    """With 200 ms of path delay, the first probe still follows the idle-time (needs sch_netem)."""
    tcp.start(keepalive=KNOBS)
    tcp.faults.delay(200)
    probes = tcp.wait_probes(1, timeout=KNOBS["idle-time"] + 3)
    timeline = tcp.timeline()
    idle = probes[0].t - tcp.last_from_peer(timeline, probes[0].t).t if probes else None
    verdict.check("RFC9643-keepalives-idle-time", idle is not None and within(idle, KNOBS["idle-time"]),
                  f"first probe {idle} s after the last segment under delay", measured={"idle_s": idle})
