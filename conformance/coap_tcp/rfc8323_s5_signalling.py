"""RFC 8323 §3.3 and §5 over TCP: the CSM that opens a connection, Ping and Pong, and signalling options.

Over a reliable transport CoAP has no Reset to probe with: liveness is the 7.02 Ping, answered by a 7.03 Pong
with the same token. Both ends open a connection with a 7.01 CSM, and one that does not is aborted; a
signalling message's unknown elective options are ignored, its unknown critical ones abort the connection.
Everything is judged on the capture in the IUT's namespace: the tester's messages as they reached the IUT,
and what the IUT sent back on the same connection.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap_tcp.conftest import ABORT_BOUND, ANSWER_BOUND, CoapTcpCase, Conn
from fixtures.coapwire import ABORT, CSM, EMPTY, OPTION_CUSTODY, PING, PONG, encode_tcp
from fixtures.waiting import TimedOut

pytestmark = pytest.mark.protocol("coap-tcp")

PROMPT = 0.5  # seconds: a Pong later than this is not "as soon as practical" (it takes about a millisecond)
TOKENS = (b"\x0a\x11\x22\x33", b"", b"aliveok!")
ELECTIVE, CRITICAL = 10, 9  # unregistered Ping option numbers: even is elective, odd critical (RFC 7252 §5.4.1)


def opened(coap: CoapTcpCase, verdict) -> Conn:
    """A connection with both CSMs exchanged; inconclusive for the case if the IUT sent none."""
    conn = coap.open()
    mine = coap.arrived(conn, 0)
    if mine is None:
        verdict.inconclusive_rest("the tester's CSM never showed in the IUT's capture")
    csm = coap.answer(conn, conn.opened - 1, lambda m: True)
    if csm is None or csm.msg.code != CSM:
        verdict.inconclusive_rest("the IUT did not open the connection with a CSM (see RFC8323-3.3-csm-first)")
    return conn


def baseline(coap: CoapTcpCase, conn: Conn, verdict, rule: str) -> None:
    """A plain Ping that must get a Pong first: otherwise a Ping that goes unanswered later proves nothing."""
    _, pong = ping(coap, conn, b"\xb0")
    if pong is None or pong.msg.code != PONG:
        verdict.inconclusive_rest(f"a plain Ping got {pong.describe() if pong else 'no answer'}, so what a Ping gets "
                                  f"later says nothing about {rule} (see RFC8323-5.4-pong-token)")


def ping(coap: CoapTcpCase, conn: Conn, token: bytes, options=()):
    """Send a Ping; return (the Ping as it reached the IUT, the IUT's first message after it, or None)."""
    index = conn.sent
    coap.send(conn, encode_tcp(PING, token=token, options=options))
    arrived = coap.arrived(conn, index)
    if arrived is None:
        return None, None
    return arrived, coap.answer(conn, arrived.t, lambda m: True)


def closed_after(coap: CoapTcpCase, conn: Conn, after: float) -> tuple[str, bool]:
    """How the IUT ended ``conn`` within ABORT_BOUND after ``after``: (description, ended), and whether it
    sent a 7.05 Abort before."""
    end = coap.ended(conn, after, ABORT_BOUND)
    aborts = [m for m in coap.from_iut(conn, after) if m.msg.code == ABORT]
    said = f"a 7.05 Abort after {(aborts[0].t - after) * 1000:.1f} ms, then " if aborts else "no 7.05 Abort; "
    if end is None:
        return said + f"the connection still open {ABORT_BOUND:g} s later", False
    return said + f"{end.kind.upper()} after {(end.t - after) * 1000:.1f} ms", True


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-3.3-csm-first")
def test_the_connection_opens_with_a_csm(coap_tcp: CoapTcpCase, verdict):
    """The tester connects and sends its CSM; the IUT's first message on the connection must be a CSM."""
    coap_tcp.start()
    conn = coap_tcp.open()
    mine = coap_tcp.arrived(conn, 0)
    if mine is None:
        verdict.inconclusive_rest("the tester's CSM never showed in the IUT's capture")
    start = conn.opened - 1  # the IUT may send its CSM before the tester's arrives
    first = coap_tcp.answer(conn, start, lambda m: True, bound=mine.t + ANSWER_BOUND - start)
    if first is None:
        verdict.check("RFC8323-3.3-csm-first", False,
                      f"no message from the IUT within {ANSWER_BOUND:g} s of the tester's CSM",
                      tolerance=f"watched {ANSWER_BOUND:g} s after the tester's CSM")
        return
    lead = (first.t - mine.t) * 1000
    when = f"{abs(lead):.1f} ms {'after' if lead >= 0 else 'before'} the tester's CSM arrived"
    verdict.check("RFC8323-3.3-csm-first", first.msg.code == CSM,
                  f"the IUT's first message was {first.describe()}, {when}",
                  measured={"first": first.describe(), "after_tester_csm_ms": round(lead, 3)})


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-5.4-pong-token", "RFC8323-5.4-pong-prompt")
def test_a_ping_gets_a_pong_with_its_token(coap_tcp: CoapTcpCase, verdict):
    """Three Pings (4-octet, empty and 8-octet tokens): each must get a Pong with the same token, promptly."""
    coap_tcp.start()
    conn = opened(coap_tcp, verdict)
    results = [(token, *ping(coap_tcp, conn, token)) for token in TOKENS]
    arrived = [(token, a, m) for token, a, m in results if a is not None]
    if not arrived:
        verdict.inconclusive_rest("none of the tester's Pings showed in the IUT's capture")
    wrong = [(token, m) for token, _, m in arrived if m is None or m.msg.code != PONG or m.msg.token != token]

    def said(token, m):
        if m is None:
            return f"the Ping with token {token.hex() or '(empty)'} got no answer within {ANSWER_BOUND:g} s"
        return f"the Ping with token {token.hex() or '(empty)'} got {m.describe()} (token {m.msg.token.hex() or 'empty'})"

    verdict.check("RFC8323-5.4-pong-token", not wrong,
                  said(*wrong[0]) + (f"; {len(wrong)} of {len(arrived)} wrong" if len(wrong) > 1 else "") if wrong else
                  f"each of {len(arrived)} Pings got a Pong with its token",
                  measured={"answers": [m.describe() if m else None for _, _, m in arrived]},
                  tolerance=f"an answer within {ANSWER_BOUND:g} s")
    pongs = [(m.t - a.t) for _, a, m in arrived if m is not None and m.msg.code == PONG]
    if not pongs:
        verdict.not_applicable_for("RFC8323-5.4-pong-prompt", "the IUT sent no Pong to time")
        return
    late = max(pongs)
    verdict.check("RFC8323-5.4-pong-prompt", late <= PROMPT,
                  f"Pongs came {', '.join(f'{t * 1000:.1f}' for t in pongs)} ms after their Pings",
                  measured={"pong_ms": [round(t * 1000, 3) for t in pongs]},
                  tolerance=f"at most {PROMPT:g} s from the Ping's arrival (capture)")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-5.4-empty-ignored")
def test_an_empty_message_is_ignored(coap_tcp: CoapTcpCase, verdict):
    """An Empty message (0.00) after the CSMs draws nothing, and a Ping after it still gets its Pong."""
    coap_tcp.start()
    conn = opened(coap_tcp, verdict)
    baseline(coap_tcp, conn, verdict, "the Empty message")
    index = conn.sent
    coap_tcp.send(conn, encode_tcp(EMPTY))
    empty = coap_tcp.arrived(conn, index)
    if empty is None:
        verdict.inconclusive_rest("the tester's Empty message never showed in the IUT's capture")
    coap_tcp.watch(empty.t + ANSWER_BOUND)
    answers = coap_tcp.from_iut(conn, empty.t)
    end = coap_tcp.wire().end_by(coap_tcp.iut, after=empty.t, conn=conn.key)
    if answers or end:
        what = answers[0].describe() if answers else f"a TCP {end.kind.upper()}"
        verdict.check("RFC8323-5.4-empty-ignored", False, f"the IUT answered an Empty message with {what}",
                      measured={"answers": [m.describe() for m in answers], "end": end.kind if end else None},
                      tolerance=f"watched {ANSWER_BOUND:g} s")
        return
    arrived, pong = ping(coap_tcp, conn, b"\x05")
    ok = pong is not None and pong.msg.code == PONG
    verdict.check("RFC8323-5.4-empty-ignored", ok,
                  f"nothing came back within {ANSWER_BOUND:g} s of the Empty message, and the Ping after it got "
                  + (pong.describe() if pong else "no answer"),
                  measured={"after_ping": pong.describe() if pong else None}, tolerance=f"watched {ANSWER_BOUND:g} s")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-5.4-elective-ignored", "RFC8323-5.4.1-custody")
def test_elective_options_in_a_ping_are_ignored(coap_tcp: CoapTcpCase, verdict):
    """A Ping with an unknown elective option, and one asking for Custody: both must get their Pong."""
    coap_tcp.start()
    conn = opened(coap_tcp, verdict)
    baseline(coap_tcp, conn, verdict, "its options")
    _, pong = ping(coap_tcp, conn, b"\x0e", options=[(ELECTIVE, b"x")])
    ok = pong is not None and pong.msg.code == PONG
    verdict.check("RFC8323-5.4-elective-ignored", ok,
                  f"a Ping with the unknown elective option {ELECTIVE} got " + (pong.describe() if pong else
                                                                                f"no answer within {ANSWER_BOUND:g} s"),
                  measured={"answer": pong.describe() if pong else None})
    arrived, pong = ping(coap_tcp, conn, b"\xc0", options=[(OPTION_CUSTODY, b"")])
    if pong is None or pong.msg.code != PONG:
        verdict.observe("RFC8323-5.4.1-custody", "the Ping asking for Custody got " +
                        (pong.describe() if pong else f"no answer within {ANSWER_BOUND:g} s"))
        return
    has = bool(pong.msg.option(OPTION_CUSTODY))
    verdict.observe("RFC8323-5.4.1-custody",
                    f"the Pong to a Ping asking for Custody {'carried' if has else 'did not carry'} the Custody option "
                    f"({pong.describe()}, {(pong.t - arrived.t) * 1000:.1f} ms)",
                    measured={"custody": has, "pong_ms": round((pong.t - arrived.t) * 1000, 3)})


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-5.2-critical-aborts", "RFC8323-5.6-abort-sent")
def test_an_unknown_critical_option_aborts_the_connection(coap_tcp: CoapTcpCase, verdict):
    """A Ping with the unknown critical option 9: the IUT must abort the connection, not answer."""
    coap_tcp.start()
    conn = opened(coap_tcp, verdict)
    must_abort(coap_tcp, verdict, conn, encode_tcp(PING, token=b"\x09", options=[(CRITICAL, b"x")]),
               "RFC8323-5.2-critical-aborts", f"a Ping with the unknown critical option {CRITICAL}")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC8323-3.3-missing-csm-aborts", "RFC8323-5.6-abort-sent")
def test_a_connection_without_a_csm_is_aborted(coap_tcp: CoapTcpCase, verdict):
    """The tester opens with a Ping, no CSM: the IUT must abort the connection."""
    coap_tcp.start()
    conn = coap_tcp.open(csm=False)
    must_abort(coap_tcp, verdict, conn, encode_tcp(PING, token=b"\x0c\x5a"), "RFC8323-3.3-missing-csm-aborts",
               "a Ping as the tester's first message")


def must_abort(coap: CoapTcpCase, verdict, conn: Conn, data: bytes, rule: str, what: str) -> None:
    """Send ``data`` on ``conn``: the IUT must end the connection within ABORT_BOUND (``rule``), and the
    7.05 Abort before it is judged on RFC8323-5.6-abort-sent."""
    index = conn.sent
    coap.send(conn, data)
    arrived = coap.arrived(conn, index)
    if arrived is None:
        verdict.inconclusive_rest("the tester's message never showed in the IUT's capture")
    said, ended = closed_after(coap, conn, arrived.t)
    answers = [m.describe() for m in coap.from_iut(conn, arrived.t)]
    verdict.check(rule, ended, f"after {what}: {said}" + (f" (it sent {', '.join(answers)})" if answers else ""),
                  measured={"answers": answers}, tolerance=f"the connection ended within {ABORT_BOUND:g} s")
    judge_abort(coap, verdict, conn, arrived.t, ended)


def judge_abort(coap: CoapTcpCase, verdict, conn: Conn, after: float, ended: bool) -> None:
    if not ended:
        verdict.not_applicable_for("RFC8323-5.6-abort-sent", "the IUT did not abort the connection")
        return
    aborts = [m for m in coap.from_iut(conn, after) if m.msg.code == ABORT]
    verdict.check("RFC8323-5.6-abort-sent", bool(aborts),
                  f"a 7.05 Abort came before the close: {aborts[0].describe()}" if aborts else
                  "the IUT closed the connection without a 7.05 Abort",
                  measured={"abort": aborts[0].describe() if aborts else None})


# Each bad input goes on a connection of its own, after the tester's CSM.
BAD_INPUT = {
    "length-never-completes": ("a message whose 16-bit length field promises 1000 octets, of which 20 come",
                               lambda: (encode_tcp(PING, token=b"\x01", payload=b"\x00" * 1000))[:24]),
    "tkl15": ("a message with token length 15 (reserved)", lambda: bytes([0x0F, PING]) + bytes(range(15))),
    "option-storm": ("a Ping with 500 elective options",
                     lambda: encode_tcp(PING, token=b"\x02", options=[(ELECTIVE, b"s")] * 500)),
    "64k-payload": ("a 65536-octet POST", lambda: encode_tcp(0x02, token=b"\x03", payload=b"\xa5" * 65536)),
}
WATCH = 1.0  # seconds the IUT's reaction to a bad input is watched before the next


@pytest.mark.roles("server")
@pytest.mark.requirement("COAP-TCP-survives-bad-input")
def test_bad_input_leaves_the_server_serving(coap_tcp: CoapTcpCase, verdict):
    """A baseline connection (CSM, Ping, Pong), four connections with bad input, then a fresh connection that
    must get the IUT's CSM and a Pong as the baseline did."""
    coap_tcp.start()
    base = opened(coap_tcp, verdict)
    _, pong = ping(coap_tcp, base, b"\xba")
    if pong is None or pong.msg.code != PONG:
        verdict.inconclusive_rest("the baseline Ping got no Pong, so a Ping afterwards proves nothing")
    reactions = []
    for kind, (what, build) in BAD_INPUT.items():
        conn = coap_tcp.open()
        coap_tcp.send(conn, build())
        sent = time.time()
        coap_tcp.watch(sent + WATCH)
        answers = [m.describe() for m in coap_tcp.from_iut(conn, sent - 0.001) if m.msg.code != CSM]
        end = coap_tcp.wire().end_by(coap_tcp.iut, after=sent - 0.001, conn=conn.key)
        reaction = ", ".join(answers[:3]) or "no answer"
        reactions.append(f"{kind} ({what}): {reaction}" + (f", then {end.kind.upper()}" if end else ", connection left open"))
        if not coap_tcp.world.external and coap_tcp.world.iut.container.exit_code() is not None:
            break
    exited = None if coap_tcp.world.external else coap_tcp.world.iut.container.exit_code()
    fresh_pong = None
    if exited is None:
        try:
            fresh = coap_tcp.open()
        except (ConnectionError, TimedOut) as err:
            fresh = None
            reactions.append(f"a fresh connection failed: {err}")
        if fresh is not None:
            _, fresh_pong = ping(coap_tcp, fresh, b"\xaf")
    alive = fresh_pong is not None and fresh_pong.msg.code == PONG
    verdict.check("COAP-TCP-survives-bad-input", alive,
                  ("a fresh connection still got a Pong" if alive else
                   f"the IUT exited with status {exited}" if exited is not None else
                   "a fresh connection got " + (fresh_pong.describe() if fresh_pong else "no Pong"))
                  + " after: " + "; ".join(reactions),
                  measured={"reactions": reactions}, tolerance=f"a Pong within {ANSWER_BOUND:g} s")
