"""RFC 9293 §3.8.4 (and RFC 1122 §4.2.3.6): TCP keep-alives, as the IUT sends them.

Knobs are scaled to seconds; every time is taken from the capture in the IUT's namespace.
"""
from __future__ import annotations

import time

import pytest

from conformance.tcp.timing import EARLY, tolerance, within

KNOBS = {"idle-time": 2, "probe-interval": 1, "max-probes": 3}
# How long an idle connection with default settings is watched for probes.
QUIET_WINDOW = 8.0

pytestmark = pytest.mark.protocol("tcp")


@pytest.mark.requirement("RFC9293-MUST-25")
@pytest.mark.roles("server", "client")
def test_keepalive_off_by_default(tcp, verdict):
    """An idle connection with the IUT's default settings carries no keep-alive probes."""
    tcp.start(keepalive=None)
    probes = tcp.wait_probes(1, timeout=QUIET_WINDOW)
    timer = tcp.keepalive_timer()
    if probes:
        message = f"a probe {probes[0].t - tcp.established.t:.2f} s after the last exchange, with keep-alive never requested"
    else:
        message = "no probe in the quiet window"
        if timer:
            # The program asked for keep-alive itself; the stack's default is still off (the RFC's subject).
            message += (f"; note: the program switches keep-alive on by itself (kernel timer {timer}), "
                        "so probes would start after the system's default idle time")
    verdict.check(
        "RFC9293-MUST-25",
        probes is None,
        message,
        measured={"window_s": QUIET_WINDOW, "probes": len(probes or []), "keepalive_timer": timer},
    )


@pytest.mark.requirement("RFC9293-MUST-24", "RFC9293-MAY-5")
@pytest.mark.roles("server", "client")
def test_keepalive_switched_on_per_connection(tcp, verdict):
    """Asking for keep-alive on a connection makes probes appear on that connection."""
    tcp.start(keepalive=KNOBS)
    bound = KNOBS["idle-time"] + 2
    probes = tcp.wait_probes(1, timeout=bound)
    verdict.observe(
        "RFC9293-MAY-5",
        "keep-alive is implemented" if probes else "no probe seen: keep-alive looks unimplemented",
    )
    verdict.check(
        "RFC9293-MUST-24",
        probes is not None,
        f"the first probe came {probes[0].t - tcp.established.t:.2f} s after the last exchange" if probes
        else f"keep-alive was requested for the connection, but no probe came within {bound:g} s",
        measured={"bound_s": bound},
    )


@pytest.mark.requirement("RFC9293-MUST-26")
@pytest.mark.roles("server", "client")
def test_traffic_postpones_probes(tcp, verdict):
    """While the peer keeps sending, no probe goes out; the first probe comes an idle interval after it stops."""
    knobs = dict(KNOBS, **{"idle-time": 2})
    tcp.start(keepalive=knobs)
    # The stimulus: a segment from the tester every 0.5 s for 4 s, always under the 2 s idle time. Each pause
    # is a wait for a probe (none may come while traffic flows; one that does ends the stimulus early).
    began = time.time()
    for _ in range(8):
        tcp.chatter()
        if tcp.wait_probes(1, timeout=0.5, after=began):
            break
    stopped = time.time()
    probes = tcp.wait_probes(1, timeout=knobs["idle-time"] + 2, after=stopped - 0.5)
    timeline = tcp.timeline()
    early = []
    for probe in tcp.keepalive_probes(timeline):
        last = tcp.last_from_peer(timeline, probe.t)
        if last is not None and probe.t - last.t < knobs["idle-time"] - EARLY:
            early.append((probe, probe.t - last.t))
    if early:
        probe, gap = early[0]
        verdict.check(
            "RFC9293-MUST-26", False,
            f"a probe went out {gap:.2f} s after a segment from the peer, inside the {knobs['idle-time']} s idle interval",
            measured={"gap_s": round(gap, 3), "idle_time_s": knobs["idle-time"], "early_probes": len(early)},
            tolerance=tolerance(knobs["idle-time"]),
        )
    elif probes is None:
        verdict.inconclusive(
            "RFC9293-MUST-26", "no probe at all after the traffic stopped, so postponement cannot be told from absence"
        )
    else:
        verdict.check(
            "RFC9293-MUST-26", True,
            "no probe while the peer was sending; the first came an idle interval after the traffic stopped",
            measured={"first_probe_after_traffic_s": round(probes[0].t - tcp.last_from_peer(timeline, probes[0].t).t, 3)},
            tolerance=tolerance(knobs["idle-time"]),
        )


@pytest.mark.requirement("RFC9293-MUST-27", "RFC9643-keepalives-idle-time")
@pytest.mark.roles("server", "client")
def test_idle_interval_is_configurable(tcp, verdict):
    """The first probe follows the last segment from the peer by the configured idle-time."""
    knobs = dict(KNOBS, **{"idle-time": 3})
    tcp.start(keepalive=knobs)
    probes = tcp.wait_probes(1, timeout=knobs["idle-time"] + 3)
    if probes is None:
        for req in ("RFC9293-MUST-27", "RFC9643-keepalives-idle-time"):
            verdict.check(req, False, f"no probe within {knobs['idle-time'] + 3} s with idle-time {knobs['idle-time']} s")
        return
    timeline = tcp.timeline()
    idle = probes[0].t - tcp.last_from_peer(timeline, probes[0].t).t
    ok = within(idle, knobs["idle-time"])
    message = f"first probe {idle:.3f} s after the peer's last segment; configured {knobs['idle-time']} s"
    for req in ("RFC9293-MUST-27", "RFC9643-keepalives-idle-time"):
        verdict.check(req, ok, message, measured={"idle_s": round(idle, 3), "configured_s": knobs["idle-time"]},
                      tolerance=tolerance(knobs["idle-time"]))


@pytest.mark.requirement("RFC9293-MUST-28")
@pytest.mark.roles("server")
def test_default_idle_interval_at_least_two_hours(tcp, verdict):
    """The idle interval the IUT uses when none is configured is at least 7200 s (where the IUT exposes it)."""
    query = tcp.world.manifest.protocols["tcp"].option("default-idle-time")
    if not query:
        verdict.not_applicable("the manifest gives no default-idle-time query: the IUT does not expose its default")
    tcp.start(keepalive=None)
    code, text = tcp.world.iut.container.query(query, "the manifest's default-idle-time query")
    if code != 0 or not text.split()[0].isdigit():
        verdict.inconclusive("RFC9293-MUST-28", f"the default-idle-time query failed (exit {code}): {text[:200]!r}")
        return
    default = int(text.split()[0])
    verdict.check(
        "RFC9293-MUST-28", default >= 7200,
        f"default idle interval {default} s" + ("" if default >= 7200 else ", under two hours"),
        measured={"default_idle_s": default, "minimum_s": 7200},
    )


@pytest.mark.requirement("RFC9293-MUST-29")
@pytest.mark.roles("server", "client")
def test_one_lost_reply_is_not_a_dead_connection(tcp, verdict):
    """With the reply to one probe lost, the IUT keeps the connection and probes again."""
    tcp.start(keepalive=KNOBS)
    lost = tcp.drop_probes("replies", first=1)
    first = tcp.wait_probes(1, timeout=KNOBS["idle-time"] + 2)
    if first is None:
        verdict.inconclusive("RFC9293-MUST-29", "the IUT sent no probe, so no reply could be lost")
        return
    tcp.world.mark(first[0].t, "reply to this probe dropped")
    # Watch long enough for every further probe the IUT would send before giving up.
    horizon = KNOBS["probe-interval"] * (KNOBS["max-probes"] + 1) + 1
    answered = tcp.wait_probes(2, timeout=horizon, after=first[0].t - 0.001)
    lost.lift()
    timeline = tcp.timeline()
    ended = tcp.iut_gave_up(timeline)
    alive = ended is None or ended.t > first[0].t + KNOBS["probe-interval"] * KNOBS["max-probes"]
    if ended is not None and not alive:
        message = f"the IUT dropped the connection ({ended.kind}) {ended.t - first[0].t:.2f} s after one unanswered probe"
    elif answered is None:
        message = "the IUT sent no further probe after the lost reply"
    else:
        message = "the connection survived the lost reply; the next probe was answered"
    verdict.check("RFC9293-MUST-29", alive and answered is not None, message,
                  measured={"probes": len(tcp.keepalive_probes(timeline)), "ended": ended.kind if ended else None})


@pytest.mark.requirement("RFC9293-SHLD-12", "RFC9293-MAY-6")
@pytest.mark.roles("server", "client")
def test_probe_segment_form(tcp, verdict):
    """Probes carry no data (or, where configured, one garbage octet).

    That a probe sits at SND.NXT - 1 is how the capture recognises it, so the form is not judged here
    (RFC9293-3.8.4-probe-seq is catalogued as not observable on its own)."""
    tcp.start(keepalive=KNOBS)
    lost = tcp.drop_probes("replies")  # unanswered probes repeat: two are seen sooner
    # Two probes if the IUT repeats them; one is enough to judge the form if it gives up sooner.
    tcp.wait_probes(2, timeout=KNOBS["idle-time"] + KNOBS["probe-interval"] + 2)
    lost.lift()
    probes = tcp.keepalive_probes()
    if not probes:
        for req in ("RFC9293-SHLD-12", "RFC9293-MAY-6"):
            verdict.inconclusive(req, "no probe was seen")
        return
    lengths = sorted({p.length for p in probes})
    garbage = [p for p in probes if p.length == 1]
    claims = "garbage-octet" in tcp.world.manifest.protocols["tcp"].features
    verdict.check(
        "RFC9293-SHLD-12", not garbage or claims,
        "probes carry no data" if not garbage else
        ("probes carry one garbage octet, which the manifest says is configured" if claims
         else "probes carry one garbage octet although nobody configured that"),
        measured={"probe_lengths": lengths, "probes": len(probes)},
    )
    verdict.observe("RFC9293-MAY-6", f"{len(garbage)} of {len(probes)} probes carried one garbage octet",
                    measured={"garbage_octet_probes": len(garbage)})
