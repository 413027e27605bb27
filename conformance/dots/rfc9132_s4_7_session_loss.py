"""RFC 9132 §4.7: what an agent does when its heartbeats go unanswered, under normal conditions and under attack.

Heartbeat-interval H = 2 s and missing-hb-allowed 3 are agreed first (conformance/dots/rfc9132_s4_7_heartbeat.py).

- Client IUT, normal conditions: the tester (its DOTS server) dies, silent or blackholed. The client must give the
  session up after missing-hb-allowed unanswered heartbeats, not before, and try a new one (a new DTLS handshake:
  a ClientHello with a new random); blackholed for good, it must not try again within 60 s of that attempt.
- Server IUT that still hears its client: everything it sends is dropped while the tester heartbeats on, or only
  the heartbeats are lost both ways while the tester's other requests get through. It must keep the session: its
  heartbeats go on, and afterwards a mitigation request on it is answered.
- Client IUT under random loss (a quarter of the datagrams each way): a new session only after missing-hb-allowed
  heartbeats in a row went unanswered, by what reached it.
- Client IUT under attack (its manifest's ``attack-trigger`` tells it, run in its container): everything from
  the tester is dropped while the tester still hears it. It must not take the session for terminated, should
  keep heartbeating and send its mitigation request on it, and should try a second session in parallel.

New session attempts and alerts are read from the capture's DTLS records (fixtures/tlswire.py); the heartbeats
and requests on the first association from the capture in clear.
"""
from __future__ import annotations

import time

import pytest

from conformance.dots.conftest import CREATED, DotsCase
from conformance.dots.rfc9132_s4_7_heartbeat import MISSING, agreed, slack
from fixtures.coapwire import CHANGED, CONTENT, GET, PUT, code_text
from fixtures.dotswire import CONFIG_PATH, MITIGATE_PATH, MITIGATION_SCOPE, encode
from fixtures.tlswire import tls_records
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("dots")

RETRY_FLOOR = 60.0  # RFC 9132 §4.7: no new session attempt sooner than this after the previous one
RETRY_WATCH = 65.0  # seconds watched after the first new attempt
DEATHS = {"silent": "the tester stops answering and heartbeating (its DTLS layer still reads)",
          "blackholed": "every datagram between the client and the tester is dropped"}
CLIENT_HELLO, ALERT = 1, 21


def attempts(dots: DotsCase, after: float, src: str | None = None) -> list[tuple[float, int, bytes]]:
    """(capture time, source port, random) of each distinct ClientHello the IUT (or ``src``) sent after ``after``:
    one per handshake attempt (DTLS retransmits a ClientHello with its random, and repeats it after a
    HelloVerifyRequest)."""
    src = src or dots.iut
    seen: dict[bytes, tuple[float, int, bytes]] = {}
    for record in tls_records(dots.world.capture.segments()).records:
        if (record.src != src or record.t <= after or record.content_type != 22 or record.epoch
                or record.body[:1] != bytes([CLIENT_HELLO]) or len(record.body) < 12 + 34):
            continue
        random = record.body[12 + 2:12 + 34]
        port = next(p for host, p in record.conn if host == src)
        seen.setdefault(random, (record.t, port, random))
    return sorted(seen.values())


def alerts_on_first(dots: DotsCase, after: float) -> list[str]:
    """The alerts the IUT sent on the tester's association after ``after`` (opened with the tester's keys)."""
    found = []
    for record in tls_records(dots.world.capture.segments()).records:
        if record.src != dots.iut or record.t <= after or record.content_type != ALERT:
            continue
        if dots.association is None or dots.association[1] not in record.conn:
            continue
        body = dots.dtls.open_wire(record) if record.epoch else record.body
        if body and len(body) >= 2:
            found.append(f"{'fatal' if body[0] == 2 else 'warning'} alert {body[1]} at {record.t - after:.1f} s")
    return found


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC9132-4.7-loss-after-missing", "RFC9132-4.7-client-reestablishes", "RFC9132-4.7-retry-floor")
@pytest.mark.parametrize("how", DEATHS, ids=DEATHS)
def test_a_client_gives_a_dead_session_up_and_tries_again_no_faster_than_the_floor(dots: DotsCase, verdict, how):
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 3, 5 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    died = time.time()
    dots.world.tester_dies(how, mute=lambda: (setattr(dots, "answering", False), setattr(dots, "heartbeating", False)))
    bound = (MISSING + 2) * interval + 5

    def first_attempt():
        found = attempts(dots, died)
        return found[0] if found else None

    try:
        first = wait_until(first_attempt, bound + 2, poll_max=0.1, what="a new session attempt")
    except TimedOut:
        first = None
    unanswered = [b for b in dots.heartbeats_from_iut(died) if first is None or b.t < first[0]]
    tolerance = f"a new ClientHello within (missing-hb-allowed + 2) x {interval:g} s + 5 s = {bound:g} s of the death"
    if first is None:
        verdict.check("RFC9132-4.7-client-reestablishes", False,
                      f"{DEATHS[how]}: no new session attempt within {bound:g} s ({len(unanswered)} unanswered heartbeats)",
                      tolerance=tolerance)
        verdict.not_applicable_for("RFC9132-4.7-loss-after-missing", "the IUT never gave the session up")
        verdict.not_applicable_for("RFC9132-4.7-retry-floor", "the IUT made no new attempt")
        return
    after = first[0] - died
    dots.world.mark(died, f"the tester dies ({how})")
    dots.world.mark(first[0], f"detected: a new ClientHello after {after:.1f} s")
    verdict.check("RFC9132-4.7-client-reestablishes", True,
                  f"{DEATHS[how]}: a new ClientHello (port {first[1]}) {after:.1f} s after the death",
                  measured={"reestablish_s": round(after, 3), "detect_s": round(after, 3),
                            "threshold_s": MISSING * interval}, tolerance=tolerance)
    verdict.check("RFC9132-4.7-loss-after-missing", len(unanswered) >= MISSING,
                  f"the new attempt came after {len(unanswered)} unanswered heartbeats (missing-hb-allowed {MISSING})",
                  measured={"unanswered": len(unanswered)})
    if how != "blackholed":
        verdict.not_applicable_for("RFC9132-4.7-retry-floor", "judged with the tester blackholed, where a new attempt fails")
        return
    until = first[0] + RETRY_WATCH
    wait_until(lambda: time.time() > until, RETRY_WATCH + 5, poll_max=0.5, what="the retry watch to end")
    later = attempts(dots, died)
    gaps = [round(b[0] - a[0], 1) for a, b in zip(later, later[1:], strict=False)]
    verdict.check("RFC9132-4.7-retry-floor", all(g >= RETRY_FLOOR for g in gaps),
                  f"{len(later)} session attempts in the {RETRY_WATCH:g} s after the first"
                  + (f", {', '.join(f'{g:g}' for g in gaps)} s apart" if gaps else ""),
                  measured={"attempts": len(later), "gaps_s": gaps}, tolerance=f"at least {RETRY_FLOOR:g} s apart")


HEARD = {"its-sends-dropped": "everything it sent was dropped while it heard the tester's heartbeats",
         "heartbeats-dropped": "the heartbeats were dropped both ways while it heard the tester's mitigation "
                               "status requests, one every heartbeat-interval"}


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-4.7-server-keeps-heard-session")
@pytest.mark.parametrize("how", HEARD, ids=HEARD)
def test_a_server_that_still_hears_its_client_keeps_the_session(dots: DotsCase, verdict, how):
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 2, 4 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    scope = encode({MITIGATION_SCOPE: {"scope": [{"target-prefix": ["203.0.113.0/24"], "lifetime": 3600}]}})
    mitigation = (*MITIGATE_PATH, "cuid=aliveness-tester", "mid=1")
    spell = (MISSING + 3) * interval
    cut = time.time()
    if how == "its-sends-dropped":
        fault = dots.world.faults.blackhole("from-iut")
        dots.world.mark(cut, "from the IUT dropped")
        wait_until(lambda: time.time() > cut + spell, spell + 2, poll_max=0.2, what="the spell to pass")
        fault.lift()
    else:
        # The tester as an attacked client whose heartbeats are lost: none of its own, none of the server's answered,
        # but its other requests get through.
        dots.heartbeating = False
        dots.answer_heartbeats = False
        dots.world.mark(cut, "heartbeats dropped both ways")
        while time.time() < cut + spell:
            due = time.time() + interval
            dots.request(GET, mitigation[:-1], bound=interval)
            wait_until(lambda due=due: time.time() > due, interval + 1, poll_max=0.05, what="the next status request")
        dots.answer_heartbeats = True
        dots.heartbeating = True
    dots.world.mark(time.time(), "heartbeats get through again")
    beats = [b.t for b in dots.heartbeats_from_iut(cut - interval)]
    edges = [cut] + [t for t in beats if t > cut] + [cut + spell]
    longest = max(b - a for a, b in zip(edges, edges[1:], strict=False))
    alerts = alerts_on_first(dots, cut)
    answer = dots.request(PUT, mitigation, scope)
    problems = []
    if longest > 2 * interval:
        problems.append(f"its heartbeats stopped: the longest silence in the spell was {longest:.1f} s")
    if alerts:
        problems.append(f"it ended the association ({', '.join(alerts)})")
    if answer is None or answer.msg.code not in (CREATED, CHANGED):
        got = code_text(answer.msg.code) if answer else "no answer"
        problems.append(f"a mitigation request on the association afterwards: {got}")
    verdict.check("RFC9132-4.7-server-keeps-heard-session", not problems,
                  "; ".join(problems) or f"for {spell:g} s {HEARD[how]}: its heartbeats went on (longest silence "
                                         f"{longest:.1f} s) and a mitigation request afterwards was answered "
                                         f"{code_text(answer.msg.code)}",
                  measured={"longest_silence_s": round(longest, 3), "alerts": alerts},
                  tolerance=f"no silence over 2 x heartbeat-interval = {2 * interval:g} s")


LOSS = 25  # percent of datagrams lost each way in the random-loss case
LOSS_SPELL = 8  # heartbeat-intervals under random loss


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC9132-4.7-loss-after-missing")
def test_a_client_under_random_loss_gives_up_only_after_missing_in_a_row(dots: DotsCase, verdict):
    """The tester loses a quarter of the datagrams each way at random for 8 intervals while it heartbeats and answers.
    Whenever the client starts a new session, the heartbeats it sent just before must have gone unanswered (no 2.04
    with their token reached it, by its own capture) missing-hb-allowed times in a row."""
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 2, 4 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    start = time.time()
    loss = dots.world.faults.loss(LOSS)
    dots.world.mark(start, f"{LOSS} % of datagrams lost each way")
    spell = LOSS_SPELL * interval
    wait_until(lambda: time.time() > start + spell, spell + 2, poll_max=0.2, what="the spell to pass")
    loss.lift()
    dots.world.mark(time.time(), "no more loss")
    first_attempt = next((t for t, _, _ in attempts(dots, start)), None)
    beats = [b for b in dots.heartbeats_from_iut(start - interval) if first_attempt is None or b.t < first_attempt]
    answered = {s.msg.token for s in dots.to_iut(start - interval) if s.msg.cls == 2}
    runs, run = [], 0
    for beat in beats:
        run = 0 if beat.msg.token in answered else run + 1
        runs.append(run)
    before = runs[-1] if runs else 0
    got = f"{sum(1 for b in beats if b.msg.token in answered)} of its {len(beats)} heartbeats answered"
    if first_attempt is None:
        verdict.check("RFC9132-4.7-loss-after-missing", True,
                      f"{LOSS} % loss each way for {spell:g} s: {got}, at most {max(runs, default=0)} unanswered in a "
                      "row; it kept its session", measured={"longest_run": max(runs, default=0), "attempts": 0})
        return
    dots.world.mark(first_attempt, f"a new session after {before} unanswered in a row")
    verdict.check("RFC9132-4.7-loss-after-missing", before >= MISSING,
                  f"{LOSS} % loss each way: {got}; a new session attempt {first_attempt - start:.1f} s in came after "
                  f"{before} unanswered in a row (missing-hb-allowed {MISSING})",
                  measured={"run_before_attempt": before, "attempts": len(attempts(dots, start))})


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC9132-4.7-attack-session-kept", "RFC9132-4.7-attack-heartbeats-continue",
                         "RFC9132-4.7-attack-new-session", "RFC9132-4.7-attack-mitigation-on-current",
                         "RFC9132-4.7-attack-link-returns")
def test_a_client_under_attack_keeps_its_session_and_tries_another(dots: DotsCase, verdict):
    trigger = dots.world.manifest.role("dots", "client").option("attack-trigger")
    if not trigger:
        verdict.not_applicable("the manifest names no attack-trigger ([dots.client]): the client cannot be told of an attack")
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 2, 4 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    cut = time.time()
    dots.world.iut.container.exec(trigger)
    attack = dots.world.faults.blackhole("to-iut")
    dots.world.mark(cut, "attack: to the IUT dropped")
    spell = (MISSING + 3) * interval
    wait_until(lambda: time.time() > cut + spell, spell + 2, poll_max=0.2, what="the spell to pass")
    threshold = cut + MISSING * interval  # missing-hb-allowed heartbeats have gone unanswered by then
    mine = [s for s in dots.from_iut(cut)]
    beats = [s.t for s in dots.heartbeats_from_iut(cut)]
    after = [t for t in beats if t > threshold + slack(interval)]
    alerts = alerts_on_first(dots, cut)
    kept = not alerts and any(s.t > threshold + interval for s in mine)
    verdict.check("RFC9132-4.7-attack-session-kept", kept,
                  (f"it ended the association ({', '.join(alerts)})" if alerts else
                   f"it sent {len(mine)} messages on the association in the {spell:g} s spell, the last "
                   f"{(mine[-1].t - cut) if mine else 0:.1f} s in (threshold {MISSING * interval:g} s)"),
                  measured={"alerts": alerts, "messages": len(mine)})
    edges = [threshold] + after + [cut + spell]
    longest = max(b - a for a, b in zip(edges, edges[1:], strict=False))
    verdict.check("RFC9132-4.7-attack-heartbeats-continue", bool(after) and longest <= 2 * interval,
                  f"{len(after)} heartbeats on it after the threshold, the longest silence {longest:.1f} s",
                  measured={"after_threshold": len(after), "longest_silence_s": round(longest, 3)},
                  tolerance=f"no silence over 2 x heartbeat-interval = {2 * interval:g} s")
    others = attempts(dots, threshold)
    verdict.check("RFC9132-4.7-attack-new-session", bool(others),
                  f"{len(others)} new session attempts after the threshold"
                  + (f", the first {others[0][0] - cut:.1f} s in from port {others[0][1]}" if others else ""),
                  measured={"attempts": len(others)})
    mitigations = [s for s in mine if s.msg.code == PUT and s.path[:len(MITIGATE_PATH)] == MITIGATE_PATH]
    verdict.check("RFC9132-4.7-attack-mitigation-on-current", bool(mitigations),
                  f"{len(mitigations)} mitigation requests on the association during the spell"
                  + (f", the first {mitigations[0].t - cut:.1f} s in" if mitigations else ""),
                  measured={"mitigation_requests": len(mitigations)})
    attack.lift()
    lifted = time.time()
    dots.world.mark(lifted, "attack over: the path is back")
    watch = 3 * interval
    wait_until(lambda: time.time() > lifted + watch, watch + 2, poll_max=0.2, what="the watch after the attack")
    answered = [b for b in dots.heartbeats_from_iut(lifted)]
    late_attempts = [a for a in attempts(dots, lifted + interval)]
    verdict.observe("RFC9132-4.7-attack-link-returns",
                    f"in the {watch:g} s after the path came back: {len(answered)} heartbeats on the first association "
                    f"(the tester answered them), {len(late_attempts)} new ClientHellos after the first interval"
                    + (" (still trying the second session)" if late_attempts else ""),
                    measured={"heartbeats_on_first": len(answered), "attempts_after": len(late_attempts)})



@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-4.7-server-hears-nothing", "DOTS-returning-client-served")
def test_a_server_that_hears_nothing_gives_up_and_serves_the_returning_client(dots: DotsCase, verdict):
    """The tester falls silent for missing-hb-allowed + 3 intervals, then comes back on a new association."""
    interval = agreed(dots, verdict)
    dots.heartbeating = True
    wait_until(lambda: len(dots.heartbeats_from_iut()) >= 2, 4 * interval + 5, poll_max=0.1, what="the IUT's heartbeats")
    silent = time.time()
    dots.world.tester_dies("silent", mute=lambda: (setattr(dots, "answering", False), setattr(dots, "heartbeating", False)))
    spell = (MISSING + 3) * interval
    wait_until(lambda: time.time() > silent + spell, spell + 2, poll_max=0.2, what="the silence to pass")
    beats = [b.t for b in dots.heartbeats_from_iut(silent)]
    alerts = alerts_on_first(dots, silent)
    stopped = beats and beats[-1] < silent + spell - 2 * interval
    verdict.observe("RFC9132-4.7-server-hears-nothing",
                    f"the tester fell silent for {spell:g} s (missing-hb-allowed {MISSING} x {interval:g} s = "
                    f"{MISSING * interval:g} s): {len(beats)} heartbeats of the server's went unanswered, "
                    + (f"the last {beats[-1] - silent:.1f} s in, then none" if stopped else
                       "and it was still heartbeating at the end" if beats else "none at all")
                    + (f"; {', '.join(alerts)}" if alerts else "; no alert"),
                    measured={"unanswered": len(beats), "last_heartbeat_s": round(beats[-1] - silent, 3) if beats else None,
                              "detect_s": round(beats[-1] - silent, 3) if stopped else None,
                              "threshold_s": MISSING * interval,
                              "stopped": bool(stopped)})
    dots.answering = True
    back = time.time()
    dots.world.mark(back, "the client comes back")
    handshake = dots.associate()
    if not handshake.ok:
        verdict.check("DOTS-returning-client-served", False, f"the new DTLS handshake failed: {handshake.describe()}")
        return
    config = dots.request(GET, CONFIG_PATH)
    sent = time.time()
    dots.send_heartbeat(True)
    token = dots.tester_heartbeats[-1][1]
    try:
        answer = wait_until(lambda: next((s for s in dots.from_iut(sent - 0.005) if s.msg.token == token
                                          and s.msg.cls in (2, 4, 5)), None), 5, poll_max=0.05, what="the answer")
    except TimedOut:
        answer = None
    hello = next((t for t, _, _ in attempts(dots, back, src=dots.world.tester_address)), None)
    ok = config is not None and config.msg.code == CONTENT and answer is not None and answer.msg.code == CHANGED
    recovered = round(answer.t - hello, 3) if answer is not None and hello is not None else None
    dots.world.mark(silent, "the tester falls silent")
    if stopped:
        dots.world.mark(beats[-1], f"detected: the server's last heartbeat, {beats[-1] - silent:.1f} s in")
    if recovered is not None and ok:
        dots.world.mark(answer.t, f"recovered: a heartbeat answered {recovered:.2f} s after the new ClientHello")
    verdict.check("DOTS-returning-client-served", ok,
                  f"a new association from port {dots.tester_port}: handshake in {handshake.seconds:.2f} s, configuration "
                  f"GET {code_text(config.msg.code) if config else 'unanswered'}, heartbeat "
                  f"{code_text(answer.msg.code) if answer else 'unanswered'}"
                  + (f"; recovered {recovered:.2f} s after the new ClientHello" if recovered is not None and ok else ""),
                  measured={"recover_s": recovered})
