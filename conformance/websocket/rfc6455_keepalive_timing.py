"""WebSocket keepalive timing: Pings on an idle connection (RFC 6455 §5.5.2 lets either end ping at any
time) at the manifest's ``ping-interval``, a dead peer given up within ``ping-interval + ping-timeout``,
a live peer kept, how the end looks on the wire, and whether a client dials again.

No RFC fixes a WebSocket keepalive schedule: the knobs are the manifest's (``[websocket]``
keepalive-command), and an IUT that offers none gets not-applicable. Every time is read from the
capture in the IUT's namespace.
"""
from __future__ import annotations

import time

import pytest

from conformance.websocket.conftest import KNOBS, Ending
from fixtures import faults as process_faults
from fixtures.testers import wsframes
from fixtures.verdicts import outside

PINGS_WATCHED = 4  # Pings the interval case waits for (three intervals)
# User-space timers (asyncio, libuv) on a loaded 2-core machine: 10 % of the interval, plus 400 ms.
INTERVAL_FRACTION, INTERVAL_FIXED = 0.10, 0.4
# Giving up on a dead peer: the knobs' sum, plus 10 % and 1 s for timers on a loaded machine and the Close being written.
DEAD_FRACTION, DEAD_FIXED = 0.10, 1.0
IDLE_WATCH = 6.0  # seconds an idle connection without keepalive is watched (a proxy's idle cut shows here)
RECONNECT_WATCH = 15.0  # seconds to wait for each dial-again of a client IUT
SCHEDULE_INTERVALS = 3  # ping-intervals the schedule case keeps traffic flowing
RECONNECTS = 3  # attempts the reconnect case observes (each refused with RST, to see the backoff)

pytestmark = pytest.mark.protocol("websocket")


def interval_tolerance(interval: float) -> float:
    return interval * INTERVAL_FRACTION + INTERVAL_FIXED


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("WS-KEEPALIVE-ping-interval", "WS-KEEPALIVE-live-peer")
def test_idle_connection_is_pinged_at_the_interval_and_kept(ws, verdict):
    """With ping-interval set, an idle connection sees a Ping every ping-interval, and a peer that
    answers each one keeps its connection."""
    interval = KNOBS["ping-interval"]
    ws.start(knobs=KNOBS)
    opened = time.time()
    bound = interval * (PINGS_WATCHED + 1) + 3

    def enough(wire):
        pings = wire.sent_by(ws.iut, wsframes.PING)
        return wire if len(pings) >= PINGS_WATCHED or ws.ending(wire) else None

    wire = ws.wait_wire(enough, bound) or ws.wire()
    pings = wire.sent_by(ws.iut, wsframes.PING)
    ending = ws.ending(wire)
    gaps = [round(b.t - a.t, 3) for a, b in zip(pings, pings[1:], strict=False)]
    slack = interval_tolerance(interval)
    tolerance = f"each interval within ±{slack * 1000:.0f} ms of {interval} s (10 % + 400 ms, user-space timers)"
    measured = {"interval_s": interval, "ping_gaps_s": gaps, "pings": len(pings)}
    if len(pings) >= 2:
        worst = max(gaps, key=lambda g: abs(g - interval))
        verdict.check(
            "WS-KEEPALIVE-ping-interval",
            abs(worst - interval) <= slack,
            f"Pings {gaps} s apart for ping-interval {interval} s" if abs(worst - interval) <= slack
            else f"a Ping interval of {worst} s for ping-interval {interval} s (Pings {gaps} s apart)",
            measured=measured,
            tolerance=tolerance,
            window=(pings[0].t, pings[-1].t),
            deviation=outside(worst, interval - slack, interval + slack),
        )
    elif ending is not None:
        verdict.inconclusive("WS-KEEPALIVE-ping-interval",
                             f"the connection ended ({ending.describe()}) after {len(pings)} Ping(s), too few to time",
                             measured=measured)
    else:
        verdict.check("WS-KEEPALIVE-ping-interval", False,
                      f"{len(pings)} Ping(s) in {bound:g} s with ping-interval {interval} s", measured=measured,
                      tolerance=tolerance)
    pongs = len(ws.wire().sent_by(ws.tester, wsframes.PONG))
    kept = ending is None
    verdict.check(
        "WS-KEEPALIVE-live-peer",
        kept,
        f"the connection stayed open for {len(pings)} Pings, each answered" if kept
        else f"the IUT ended a connection whose peer answered every Ping ({pongs} Pongs): {ending.describe()}",
        measured={"pings": len(pings), "pongs": pongs, "ending": ending.describe() if ending else None,
                  "watched_s": round(time.time() - opened, 2)},
    )


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("WS-KEEPALIVE-schedule")
def test_pings_while_the_peer_sends_data(ws, verdict):
    """Does traffic from the peer hold the IUT's Pings back? The tester sends a small message every half
    ping-interval for SCHEDULE_INTERVALS intervals and counts the IUT's Pings meanwhile: Pings at the interval
    mean a fixed clock; none mean the knob counts time without traffic from the peer."""
    interval = KNOBS["ping-interval"]
    peer = ws.start(knobs=KNOBS)
    began = time.time()
    ending = None
    for n in range(SCHEDULE_INTERVALS * 2):
        peer.send_frame(wsframes.TEXT, f"aliveness traffic {n}".encode())
        # the pace of the traffic; an IUT that ends the connection meanwhile stops the case early
        ending = ws.wait_ending(interval / 2, after=began)
        if ending is not None:
            break
    wire = ws.wire()
    sent = wire.sent_by(ws.tester, wsframes.TEXT)
    pings = [p for p in wire.sent_by(ws.iut, wsframes.PING) if sent and p.t >= sent[0].t]
    gaps = [round(b.t - a.t, 2) for a, b in zip(pings, pings[1:], strict=False)]
    watched = round((ending.t if ending else time.time()) - (sent[0].t if sent else began), 2)
    if ending is not None:
        text = f"the IUT ended the connection after {watched} s of traffic: {ending.describe()}"
    elif not pings:
        text = (f"no Ping in {watched} s while the peer sent a message every {interval / 2:g} s: the IUT pings "
                f"only after {interval:g} s without traffic from its peer")
    elif len(pings) == 1:
        text = (f"one Ping in {watched} s while the peer sent a message every {interval / 2:g} s: traffic "
                "held the IUT's Pings back only in part, so neither a fixed clock nor an idle timer fits")
    else:
        text = (f"{len(pings)} Pings in {watched} s while the peer sent a message every {interval / 2:g} s, "
                f"{gaps} s apart: the IUT pings on a fixed clock, traffic or not")
    verdict.observe(
        "WS-KEEPALIVE-schedule",
        text,
        measured={"interval_s": interval, "messages_sent": len(sent), "pings": len(pings), "ping_gaps_s": gaps,
                  "watched_s": watched, "ending": ending.describe() if ending else None},
    )


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("WS-KEEPALIVE-defaults")
def test_idle_connection_without_keepalive(ws, verdict):
    """Without keepalive knobs: does the IUT ping an idle connection, and does the connection survive?"""
    peer = ws.start(needs_container=False)
    ending = ws.wait_ending(IDLE_WATCH)
    wire = ws.wire()
    pings = wire.sent_by(ws.iut, wsframes.PING)
    start = wire.frames[0].t if wire.frames else None
    handshake_done = ws.world.capture.timeline().last_data_time(src=ws.iut) if start is None else start
    gaps = [round(b.t - a.t, 2) for a, b in zip(pings, pings[1:], strict=False)]
    text = (f"{len(pings)} Ping(s) in {IDLE_WATCH:g} s" + (f", {gaps} s apart" if gaps else "")) if pings \
        else f"no Ping in {IDLE_WATCH:g} s"
    if ending:
        after = round(ending.t - handshake_done, 2) if handshake_done else None
        text += f"; the IUT ended the idle connection after about {after} s: {ending.describe()}"
    else:
        text += "; the connection stayed open"
    verdict.observe(
        "WS-KEEPALIVE-defaults",
        text,
        measured={"pings": len(pings), "ping_gaps_s": gaps, "ending": ending.describe() if ending else None,
                  "close_code": ending.code if ending else None, "ending_label": ending.label if ending else None,
                  "peer_gone": peer.ended() is not None},
    )


DEAD_PEERS = {
    "silent": "the tester stops answering at the WebSocket layer (TCP still acknowledges)",
    "frozen": "the tester's process is frozen (cgroup freezer; its kernel still acknowledges)",
    "blackholed": "every segment between the IUT and the tester is dropped",
    "crashed": "the tester's process is killed (its kernel closes the connection with FIN)",
}


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("WS-KEEPALIVE-dead-peer", "WS-KEEPALIVE-close-code")
@pytest.mark.parametrize("how", DEAD_PEERS, ids=DEAD_PEERS)
def test_dead_peer_is_given_up(ws, verdict, how):
    """A peer that stops answering is dropped within ping-interval + ping-timeout of the last frame it
    sent; the way the connection ends (Close code, FIN, RST) is reported."""
    interval, timeout = KNOBS["ping-interval"], KNOBS["ping-timeout"]
    ws.world.require(keepalive=True)
    if not ws.claims("dead-peer-close"):
        verdict.not_applicable(f"{ws.world.manifest.name} does not claim dead-peer-close for WebSocket")
    peer = ws.start(knobs=KNOBS)
    pod = ws.world.tester_pod
    before = time.time()  # the fault takes effect somewhere inside the call below; the IUT may react at once
    if how == "silent":
        peer.go_silent()
    elif how == "frozen":
        ws.world.cleanups.insert(0, lambda: process_faults.thaw(pod))
        process_faults.freeze(pod)
    elif how == "blackholed":
        ws.watch_socket()
        blackhole = ws.faults.blackhole("both")
    else:
        process_faults.crash(pod)
    dead_at = time.time()
    ws.world.mark(dead_at, f"tester {how}")
    limit = interval + timeout
    slack = limit * DEAD_FRACTION + DEAD_FIXED
    # The idle clock starts at the last octets of data the IUT got from the tester (a Pong, or the handshake).
    last_rx = ws.world.capture.wait_for(lambda tl: tl.last_data_time(src=ws.tester), 5)
    if last_rx is None:
        verdict.inconclusive_rest("the capture shows no data from the tester, so the idle clock has no start")
    if how == "blackholed":
        ending = blackholed_ending(ws, blackhole, deadline=last_rx + limit + slack, after=before)
    else:
        ending = ws.wait_ending(limit + slack + 5, after=before)
    wire = ws.wire()
    tolerance = f"within ping-interval + ping-timeout = {limit:g} s (+{slack:.1f} s: 10 % + 1 s) of the peer's last data" + (
        "; on a blackholed path the IUT's socket state is read every 50 ms in its namespace, and a Close still queued"
        " at the deadline counts at the deadline" if how == "blackholed" else "")
    if ending is None:
        verdict.check("WS-KEEPALIVE-dead-peer", False,
                      f"the IUT still held the connection {limit + slack + 5:.1f} s after the peer went {how}",
                      measured={"dead_peer": how}, tolerance=tolerance)
        verdict.observe("WS-KEEPALIVE-close-code", f"no end within the watch ({how} peer)", measured={"dead_peer": how})
        return
    took = round(ending.t - last_rx, 3)
    verdict.check(
        "WS-KEEPALIVE-dead-peer",
        took <= limit + slack,
        (f"the IUT had given up on the {how} peer by the deadline, {took} s after its last frame" if ending.how == "queued"
         else f"the IUT gave up on the {how} peer {took} s after its last frame")
        + ("" if took <= limit + slack else f" (limit {limit:g} s)"),
        measured={"dead_peer": how, "detect_s": took, "limit_s": limit},
        tolerance=tolerance,
    )
    tcp_end = wire.end_by(ws.iut, after=before)
    verdict.observe(
        "WS-KEEPALIVE-close-code",
        f"{how} peer: {ending.describe()}" + (f", then TCP {tcp_end.kind.upper()} {round(tcp_end.t - ending.t, 2)} s later"
                                              if tcp_end and ending.how == "close" else ""),
        measured={"dead_peer": how, "ending": ending.how, "close_code": ending.code, "close_reason": ending.reason,
                  "ending_label": ending.label,
                  "tcp_end": tcp_end.kind if tcp_end else None},
    )


def blackholed_ending(ws, blackhole, deadline: float, after: float):
    """How the IUT ended a connection whose path is blackholed, if it did by ``deadline`` (wall time).

    What the IUT sends after its unanswered Ping cannot leave its namespace: TCP holds new data
    behind unacknowledged data. So a socket that leaves ESTABLISHED is taken from ``ss`` as it happens;
    failing that, at the deadline the octets the IUT has written but TCP has not sent are counted,
    the path is restored, and the first new frame the IUT then puts on the wire shows what those
    octets were. A Close there was written by the deadline.
    """
    ending = ws.wait_ending(max(deadline - time.time(), 0.1), after=after, socket=True)
    if ending is not None:
        return ending
    queued = ws.unsent_octets()
    lifted = time.time()
    ws.world.mark(lifted, f"path restored ({queued} octets queued)")
    blackhole.lift()
    if not queued:
        return None
    previous = {(f.t, f.payload) for f in ws.wire().sent_by(ws.iut)}
    first_new = ws.wait_wire(
        lambda w: next((f for f in w.sent_by(ws.iut) if (f.t, f.payload) not in previous), None), 10)
    if first_new is not None and first_new.opcode == wsframes.CLOSE:
        code, reason = first_new.close
        return Ending(deadline, "queued", code, reason)
    return None


@pytest.mark.roles("client")
@pytest.mark.requirement("WS-KEEPALIVE-reconnect", "WS-KEEPALIVE-reconnect-claimed")
def test_client_dials_again_after_the_connection_dies(ws, verdict):
    """The connection is reset under a client IUT: does it dial again, and after what delays? (Each new
    attempt is refused with RST, so the backoff shows.) Graded only where the manifest claims reconnect."""
    peer = ws.start(needs_container=False)
    claims = ws.claims("reconnect")
    tcp = ws.tcp
    seen = {peer.conn}
    died = [time.time()]
    tcp.close(peer.conn, how="rst")
    attempts: list[float] = []
    for _ in range(RECONNECTS):
        accepted = tcp.maybe(lambda e: e.ev == "accepted" and e.conn not in seen, RECONNECT_WATCH)
        if accepted is None:
            break
        seen.add(accepted.conn)
        attempts.append(accepted.data["wall"])
        tcp.close(accepted.conn, how="rst")
        died.append(time.time())
    syns = [t for t, _ in ws.wire().connects[1:]]  # the first SYN is the connection that was reset
    times = syns if len(syns) >= len(attempts) else attempts
    delays = [round(t - d, 2) for t, d in zip(times, died, strict=False)]
    text = (f"dialled again {len(delays)} time(s), after {delays} s" if delays
            else f"did not dial again within {RECONNECT_WATCH:g} s")
    verdict.observe("WS-KEEPALIVE-reconnect", text + " (each attempt refused with RST)",
                    measured={"reconnect_delays_s": delays})
    if not claims:
        verdict.not_applicable(f"{ws.world.manifest.name} does not claim reconnect")
    verdict.check(
        "WS-KEEPALIVE-reconnect-claimed",
        bool(delays),
        f"the client claims reconnect and {text}",
        measured={"reconnect_delays_s": delays},
        tolerance=f"a new connection within {RECONNECT_WATCH:g} s",
    )
