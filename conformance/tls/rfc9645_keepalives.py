"""RFC 9645 (ietf-tls-client keepalives/test-peer-aliveness): a TLS client tests its server's aliveness with
RFC 6520 HeartbeatRequests, one after max-wait seconds of silence, and drops a server that leaves
max-attempts of them unanswered.

The IUT is a client started with its keepalive command and the knobs below; the tester is its server, in
the pytest process, answering every Request (``auto_answer``) until a case makes it die: frozen (its
processes stopped, its kernel still acknowledging TCP segments, so TCP keepalive would see nothing wrong)
or blackholed (nothing passes). All times come from the capture in the IUT's namespace: the records the
tester sent, the IUT's Requests (content type 24 in TLS 1.2; in TLS 1.3 the tester's decrypted records are
matched to the capture's), and the IUT's FIN, RST or alert.
"""
from __future__ import annotations

import time

import pytest

from conformance.tcp.timing import tolerance, within
from conformance.tls.conftest import PerVersion, Session, TlsCase
from fixtures import faults as process_faults
from fixtures.sockwatch import SocketWatch
from fixtures.testers.tls import REQUEST
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("tls")

KNOBS = {"max-wait": 2, "max-attempts": 2}
MAX_WAIT = "RFC9645-keepalives-max-wait"
MAX_ATTEMPTS = "RFC9645-keepalives-max-attempts"
ACKED = "TLSKA-frozen-peer-acked"
LIVE_WATCH = 3 * KNOBS["max-wait"] + 1
# Socket states that mean the IUT itself closed (CLOSE-WAIT is the peer's close, not yet the IUT's).
CLOSED_BY_IUT = {"FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "LAST-ACK", "TIME-WAIT", "gone"}


def start(tls: TlsCase) -> None:
    if not tls.claims("test-peer-aliveness"):
        tls.world.verdicts.not_applicable(f"{tls.world.manifest.name} does not claim test-peer-aliveness for TLS")
    tls.start(needs_heartbeat=True, knobs=KNOBS)
    if tls.world.external:
        tls.world.verdicts.not_applicable("an already running endpoint cannot be given the knobs")


def gaps_before_requests(session: Session) -> tuple[list[float], str]:
    """For each Request of the IUT's: seconds since the last record the tester sent before it (capture times)."""
    tester = [w.t for w in session.wire_from_tester()]
    requests = [r for r, _ in session.tls.heartbeats(REQUEST)]
    times = session.capture_times(requests)
    clock = "capture"
    if times is None:
        times, clock = [r.t for r in requests], "tester's clock (the capture's records could not be matched)"
    gaps = []
    for t in times:
        before = [x for x in tester if x < t]
        if before:
            gaps.append(round(t - before[-1], 3))
    return gaps, clock


@pytest.mark.requirement("RFC9645-keepalives-max-wait")
@pytest.mark.roles("client")
def test_requests_follow_max_wait_of_silence(tls: TlsCase, verdict):
    """A server that answers at once: a Request every max-wait seconds of silence, and the connection kept."""
    start(tls)
    judge = PerVersion(verdict, MAX_WAIT)
    for version, session in tls.each_version(judge):
        session.tls.auto_answer = True
        began = time.time()
        session.quiet_for(LIVE_WATCH, began)
        gaps, clock = gaps_before_requests(session)
        wrong = [g for g in gaps if not within(g, KNOBS["max-wait"])]
        if session.tls.ended:
            judge.check(version, False, f"the IUT dropped a server that answered every Request ({session.ended_text()})",
                        gaps_s=gaps, clock=clock)
        elif not gaps:
            judge.check(version, False, f"no HeartbeatRequest in {LIVE_WATCH:g} s of a connection with nothing else on it",
                        gaps_s=gaps)
        else:
            judge.check(version, not wrong,
                        (f"a Request came {wrong[0]:.3f} s after the server's last record (max-wait {KNOBS['max-wait']} s)"
                         if wrong else f"{len(gaps)} Requests, each {', '.join(f'{g:.3f}' for g in gaps)} s after the server's"
                                       " last record, all answered; the connection stayed open"),
                        gaps_s=gaps, clock=clock)
    judge.record(tolerance(KNOBS["max-wait"]))


@pytest.mark.requirement("RFC9645-keepalives-max-attempts", "TLSKA-frozen-peer-acked")
@pytest.mark.roles("client")
@pytest.mark.parametrize("how", ["frozen", "blackholed"])
def test_a_dead_server_is_dropped(tls: TlsCase, verdict, how):
    """The tester answers one Request, then dies: the IUT gives up after max-attempts unanswered Requests."""
    start(tls)
    version = tls.versions[0]  # one version: the timers are the client's own, not the record layer's
    judge = PerVersion(verdict, MAX_ATTEMPTS)
    wait, attempts = KNOBS["max-wait"], KNOBS["max-attempts"]
    session = next(tls.each_version(judge, only=version), (None, None))[1]
    if session is None:
        judge.record()
        verdict.not_applicable_for(ACKED, f"no TLS {version} session could be opened, so no peer was frozen")
        return
    session.tls.auto_answer = True
    answered = session.tls.wait_for(lambda: session.tls.heartbeats(REQUEST), wait + 3, what="the IUT's first Request")
    if not answered:
        judge.inconclusive(version, f"no HeartbeatRequest within {wait + 3:g} s, so the server's death has no reference")
        judge.record()
        verdict.not_applicable_for(ACKED, "no Request was sent")
        return
    session.quiet_for(0.3, time.time())  # let the first Response leave
    pod = tls.world.tester_pod
    watch = None
    if how == "blackholed":
        # What the IUT sends after its first unanswered Request stays in its TCP queue behind that Request
        # (its FIN too): the socket leaving ESTABLISHED in the IUT's own namespace is the end to time.
        watch = SocketWatch(tls.world.iut.sidecar, tls.world.tester_address)
        tls.world.cleanups.append(watch.stop)
        tls.world.logs["socket-states.txt"] = lambda: "\n".join(f"{t:.3f} {state}" for t, state in watch.changes)
        wait_until(lambda: watch.changes, 5, what="the IUT's socket state")
    if how == "frozen":
        tls.world.cleanups.insert(0, lambda: process_faults.thaw(pod))
        process_faults.freeze(pod)
    else:
        tls.world.faults.blackhole("both")
    died = time.time()
    tls.world.mark(died, f"tester {how}")
    low, high = wait * attempts, wait * (attempts + 1)
    slack = high * 0.125 + 0.5
    def end() -> float | None:
        on_wire = session.iut_end(after=died)
        closed = watch.closed_by_iut(CLOSED_BY_IUT) if watch else None
        return min([t for t in (on_wire, closed[0] if closed else None) if t is not None], default=None)

    try:
        ended = wait_until(end, high + slack + 2, poll_max=0.1, what="the IUT to drop the dead server")
    except TimedOut:
        ended = None
    last = max((w.t for w in session.wire_from_tester() if w.t <= died + 0.05), default=None)
    unanswered = [w for w in session.iut_requests_on_wire() if last is not None and w.t > last]
    if ended is None or last is None:
        judge.check(version, False, f"the IUT still held the connection {high + slack + 2:.1f} s after the tester was {how}"
                    f" ({len(unanswered)} unanswered Requests so far)", unanswered=len(unanswered))
    else:
        took = round(ended - last, 3)
        # On a blackholed path only the first unanswered Request reaches the wire: the rest wait behind it.
        counted = how != "blackholed"
        ok = low - 0.1 <= took <= high + slack and (len(unanswered) <= attempts or not counted)
        seen = (f"after {len(unanswered)} unanswered Requests" if counted
                else "its socket closing in its namespace (later Requests never left its TCP queue)")
        judge.check(version, ok, f"the IUT ended the connection {took:.3f} s after the {how} tester's last record, {seen} "
                    f"(max-wait {wait} s x max-attempts {attempts})",
                    detection_s=took, unanswered=len(unanswered) if counted else None, expected_s=[low, high])
    judge.record(f"between max-wait x max-attempts = {low:g} s and max-wait x (max-attempts + 1) = {high:g} s "
                 f"(-0.1 s / +{slack:.2f} s), by the capture")
    if how != "frozen":
        verdict.not_applicable_for(ACKED, "only a frozen peer's kernel is there to acknowledge")
        return
    acked = session.acks_after(unanswered)
    verdict.observe(ACKED, f"the frozen tester's kernel acknowledged {acked} of the {len(unanswered)} unanswered Requests at"
                           " the TCP level: TCP keepalive would have found the peer alive", measured={"acked": acked})
