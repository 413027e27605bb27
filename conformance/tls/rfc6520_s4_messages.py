"""RFC 6520 §3-§4: HeartbeatRequests answered with an exact copy, the padding rules, the length limits, and
the malformed messages that must be discarded silently (the Heartbleed rule among them).

Every case runs once per TLS version the IUT speaks, on an IUT that claims the heartbeat feature, after a
handshake in which the tester's Hello said peer_allowed_to_send. The tester decrypts what the IUT sends
(tls.txt); each heartbeat is judged on its plaintext: payload_length, payload, padding (the record's
length - payload_length - 3). Every probe that could hurt a server is followed by a well-formed Request
on the same connection and a fresh handshake on a new one: a probe that kills the server fails the case's
rule with the server's exit as evidence.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, VERSIONS, Session, TlsCase, payload
from fixtures.testers.tls import MAX_MESSAGE, MIN_PADDING, HeartbeatMessage
from fixtures.testers.tls import RESPONSE as RESPONSE_TYPE

pytestmark = pytest.mark.protocol("tls")

RESPONSE = "RFC6520-3-response"
EXACT = "RFC6520-4-exact-copy"
PADDING = "RFC6520-4-padding-min"
RANDOM = "RFC6520-4-padding-random"
IGNORED = "RFC6520-4-padding-ignored"
OVERLONG = "RFC6520-4-overlong-discard"
SHORT = "RFC6520-4-short-padding-discard"
TOTAL = "RFC6520-4-total-length"
NO_EXPECTED = "RFC6520-4-response-check"
ANSWER_TOLERANCE = f"an answer within {ANSWER_BOUND:g} s of the Request"


def _mine(session: Session) -> list[HeartbeatMessage]:
    return [hb for _, hb in session.tls.heartbeats()]


def judge_padding(verdict, messages: list[HeartbeatMessage]) -> None:
    """RFC6520-4-padding-min and -padding-random on every heartbeat the IUT sent."""
    if not messages:
        verdict.not_applicable_for(PADDING, "the IUT sent no heartbeat, so there is no padding to judge")
        verdict.not_applicable_for(RANDOM, "the IUT sent no heartbeat, so there is no padding to judge")
        return
    short = [m for m in messages if len(m.padding) < MIN_PADDING]
    verdict.check(
        PADDING, not short,
        (f"{short[0].name} with {len(short[0].padding)} octets of padding ({len(short)} of {len(messages)} short)"
         if short else f"each of the IUT's {len(messages)} heartbeats carried at least {MIN_PADDING} octets of padding "
                       f"({', '.join(str(len(m.padding)) for m in messages)})"),
        measured={"paddings": [len(m.padding) for m in messages]}, tolerance=f"at least {MIN_PADDING} octets")
    flat = [m for m in messages if len(m.padding) >= 2 and len(set(m.padding)) == 1]
    paddings = [m.padding for m in messages if m.padding]
    same = [p for p in paddings if paddings.count(p) > 1]
    if flat:
        message = f"{flat[0].name}'s padding is {len(flat[0].padding)} octets of {flat[0].padding[:1].hex()}: not random"
    elif same:
        message = f"two of the IUT's heartbeats carry the same {len(same[0])} octets of padding ({same[0][:16].hex()}...)"
    else:
        message = f"the padding of the IUT's {len(messages)} heartbeats differs from message to message and is no repeated octet"
    verdict.check(RANDOM, not flat and not same, message, measured={"messages": len(messages)},
                  tolerance="no padding that is one repeated octet, none equal to another's")


def judge_limit(verdict, messages: list[HeartbeatMessage], context: str) -> None:
    over = [m for m in messages if m.size > MAX_MESSAGE]
    verdict.check(
        TOTAL, not over,
        (f"the IUT sent a {over[0].name} of {over[0].size} octets {context}" if over else
         f"each of the IUT's {len(messages)} heartbeats {context} was at most {MAX_MESSAGE} octets "
         f"(largest {max((m.size for m in messages), default=0)})"),
        measured={"sizes": [m.size for m in messages], "limit": MAX_MESSAGE}, tolerance=f"at most 2^14 = {MAX_MESSAGE} octets")


@pytest.mark.requirement("RFC6520-3-response", "RFC6520-4-exact-copy", "RFC6520-4-padding-min",
                         "RFC6520-4-padding-random", "RFC6520-4-padding-ignored", "RFC6520-3-no-request-in-handshake")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_requests_answered_with_an_exact_copy(tls: TlsCase, verdict, version):
    """Requests of 1, 64 and 1000 octets, then with 64 and 1000 octets of padding: each answered, payload copied."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version, send_requests=True)
    sizes = [(1, 16), (64, 16), (1000, 16)]
    padded = [(48, 64), (48, 1000)]
    exchanges = []
    for size, pad in sizes + padded:
        data = payload(size, f"hb-{size}-{pad}")
        sent = session.request(data, padding=pad)
        # The answer is the Response carrying this payload; failing that, whatever Response came that is not
        # a late answer to an earlier Request.
        earlier = {x[2] for x in exchanges}
        copy = session.answer_to(sent, data)
        answers = [copy] if copy else [hb for _, hb in session.responses(sent.t) if hb.payload not in earlier]
        exchanges.append((size, pad, data, answers))
        if session.tls.ended:
            break
    plain = [x for x in exchanges if x[1] == MIN_PADDING]
    unanswered = [x for x in plain if not x[3]]
    verdict.check(
        RESPONSE, not unanswered,
        (f"the {unanswered[0][0]}-octet Request got no Response within {ANSWER_BOUND:g} s ({session.ended_text()})"
         if unanswered else f"each of the {len(plain)} Requests ({', '.join(str(x[0]) for x in plain)} octets) was answered"),
        measured={"requests": len(plain), "answered": len(plain) - len(unanswered)}, tolerance=ANSWER_TOLERANCE)
    answered = [x for x in plain if x[3]]
    if answered:
        wrong = [x for x in answered if x[3][0].payload != x[2]]
        if wrong:
            size, _, data, answers = wrong[0]
            got = answers[0].payload
            at = next((i for i, (a, b) in enumerate(zip(data, got, strict=False)) if a != b), min(len(data), len(got)))
            message = (f"the Response to the {size}-octet Request carries {len(got)} octets, differing from the "
                       f"payload at octet {at} ({got[at:at + 8].hex() or 'end'} for {data[at:at + 8].hex() or 'end'})")
        else:
            message = f"each Response's payload is an exact copy of its Request's ({len(answered)} compared octet by octet)"
        verdict.check(EXACT, not wrong, message, measured={"compared": len(answered), "wrong": len(wrong)})
    else:
        verdict.not_applicable_for(EXACT, "no Request was answered, so there is no copy to compare")
    reference = next((x for x in plain if x[3] and x[3][0].payload == x[2]), None)
    if reference is None:
        verdict.not_applicable_for(IGNORED, "no Request with 16 octets of padding was answered with its payload,"
                                            " so there is nothing to compare the padded ones with")
    else:
        differ = [x for x in exchanges if x[1] != MIN_PADDING and not (x[3] and x[3][0].payload == x[2])]
        verdict.check(
            IGNORED, not differ,
            (f"the Request with {differ[0][1]} octets of padding was not answered with its payload "
             f"({'answered otherwise' if differ[0][3] else 'no Response'}), though 16 octets of padding were" if differ
             else f"Requests with {', '.join(str(x[1]) for x in exchanges if x[1] != MIN_PADDING)} octets of padding "
                  "were answered just like the one with 16"),
            measured={"paddings": [x[1] for x in exchanges]})
    judge_padding(verdict, _mine(session))


def _judge_discarded(tls: TlsCase, verdict, session: Session, rule: str, sent, what: str, sent_octets: bytes) -> None:
    """A message the IUT must discard silently: no Response, no alert, the connection and the server still fine."""
    got = session.quiet_for(ANSWER_BOUND, sent.t)
    responses = [(r, hb) for r in got if (hb := r.heartbeat) is not None]
    alerts = [r for r in got if r.alert is not None]
    if responses:
        hb = responses[0][1]
        leaked = hb.payload[len(sent_octets):]
        message = f"the IUT answered {what} with a {hb.describe()}"
        if leaked:
            message += (f"; beyond the {len(sent_octets)} octets the tester sent it carries {len(leaked)} more, "
                        f"from the IUT's memory: {leaked[:48].hex()}{'...' if len(leaked) > 48 else ''}")
        verdict.check(rule, False, message, measured={"response_octets": hb.size, "leaked_octets": len(leaked),
                                                      "leaked_hex": leaked[:256].hex()})
        return
    if alerts or session.tls.ended:
        how = alerts[0].describe() if alerts else session.ended_text()
        verdict.check(rule, False, f"the IUT did not discard {what} silently: {how}",
                      measured={"alerts": [a.describe() for a in alerts]})
        return
    check = payload(16, "after")
    follow = session.request(check)
    if session.answer_to(follow, check) is None:
        verdict.check(rule, False, f"after {what} the IUT no longer answered a well-formed Request ({session.ended_text()})")
        return
    alive, why = tls.still_serving(session.version)
    verdict.check(rule, alive, f"the IUT discarded {what} silently and answered the next Request; {why}"
                  if alive else f"the IUT stopped serving after {what}: {why}")


@pytest.mark.requirement("RFC6520-4-overlong-discard")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_overlong_payload_length_is_discarded_silently(tls: TlsCase, verdict, version):
    """The Heartbleed probe: payload_length 16384 in a 36-octet message; no octet may come back."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version, send_requests=True)
    data = b"aliveness-overlong"[:17]
    sent = session.request(data, padding=MIN_PADDING, declared=2**14)
    body = sent.body[3:]  # the payload and padding the tester really sent
    _judge_discarded(tls, verdict, session, OVERLONG, sent,
                     f"a Request whose payload_length says 16384 in a {len(sent.body)}-octet message", body)


@pytest.mark.requirement("RFC6520-4-short-padding-discard")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_short_padding_is_discarded_silently(tls: TlsCase, verdict, version):
    """A Request with a 20-octet payload and 4 octets of padding."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version, send_requests=True)
    data = payload(20, "short")
    sent = session.request(data, padding=4)
    _judge_discarded(tls, verdict, session, SHORT, sent, "a Request with 4 octets of padding", data)


@pytest.mark.requirement("RFC6520-4-total-length")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeats_stay_within_2_14_octets(tls: TlsCase, verdict, version):
    """A Request of exactly 2^14 octets, then (on a new connection) one of 2^14 + 1: no answer may exceed 2^14."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version, send_requests=True)
    edge = payload(MAX_MESSAGE - 3 - MIN_PADDING, "edge")
    sent = session.request(edge)
    session.answer_to(sent, edge, bound=ANSWER_BOUND + 1)
    messages = _mine(session)
    over = tls.open_session(version, send_requests=True)
    big = payload(MAX_MESSAGE - 3 - MIN_PADDING + 1, "over")
    over.request(big)
    over.quiet_for(ANSWER_BOUND, over.tls.records[-1].t)
    messages += _mine(over)
    judge_limit(verdict, messages, "in answer to Requests of 2^14 and 2^14 + 1 octets")


@pytest.mark.requirement("RFC6520-4-response-check")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_response_nobody_asked_for_is_discarded(tls: TlsCase, verdict, version):
    """An unprompted HeartbeatResponse, then a Request: still answered, with no alert in between."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version, send_requests=True)
    stray = session.tls.send_heartbeat(RESPONSE_TYPE, payload(32, "unasked"))
    got = session.quiet_for(0.5, stray.t)
    alerts = [r for r in got if r.alert is not None]
    if alerts or session.tls.ended:
        verdict.check(NO_EXPECTED, False, "the IUT did not discard a HeartbeatResponse it never asked for: "
                      + (alerts[0].describe() if alerts else session.ended_text()))
        return
    check = payload(16, "after")
    follow = session.request(check)
    answered = session.answer_to(follow, check)
    verdict.check(NO_EXPECTED, answered is not None,
                  "the IUT discarded a HeartbeatResponse it never asked for, silently, and answered the next Request"
                  if answered else f"after a HeartbeatResponse it never asked for the IUT no longer answered a Request "
                                   f"({session.ended_text()})")
