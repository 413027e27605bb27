"""RFC 6520 §3-§4: HeartbeatRequests answered with an exact copy, the padding rules, the length limits, and
the malformed messages that must be discarded silently (the Heartbleed rule among them).

Every case runs on an IUT that claims the heartbeat feature, once per TLS version it speaks (a session per
version, in one case: each requirement gets one verdict that gives every version's finding), after a
handshake in which the tester's Hello said peer_allowed_to_send. The tester decrypts what the IUT sends
(tls.txt); each heartbeat is judged on its plaintext: payload_length, payload, padding (the record's length
- payload_length - 3). Every probe that could hurt a server is followed by a well-formed Request on the same
connection and a fresh handshake on a new one: a probe that kills the server (or leaves it serving no one)
fails the case's rule with that as evidence, and the server is restarted for the case's next probe.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, PerVersion, Session, TlsCase, payload
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


def judge_padding(padding: PerVersion, random: PerVersion, version: str, messages: list[HeartbeatMessage]) -> None:
    """RFC6520-4-padding-min and -padding-random on every heartbeat the IUT sent in one session."""
    if not messages:
        padding.not_applicable(version, "the IUT sent no heartbeat, so there is no padding to judge")
        random.not_applicable(version, "the IUT sent no heartbeat, so there is no padding to judge")
        return
    short = [m for m in messages if len(m.padding) < MIN_PADDING]
    padding.check(
        version, not short,
        (f"{short[0].name} with {len(short[0].padding)} octets of padding ({len(short)} of {len(messages)} short)"
         if short else f"each of the IUT's {len(messages)} heartbeats carried at least {MIN_PADDING} octets of padding "
                       f"({', '.join(str(len(m.padding)) for m in messages)})"),
        paddings=[len(m.padding) for m in messages])
    flat = [m for m in messages if len(m.padding) >= 2 and len(set(m.padding)) == 1]
    paddings = [m.padding for m in messages if m.padding]
    same = [p for p in paddings if paddings.count(p) > 1]
    if flat:
        message = f"{flat[0].name}'s padding is {len(flat[0].padding)} octets of {flat[0].padding[:1].hex()}: not random"
    elif same:
        message = f"two of the IUT's heartbeats carry the same {len(same[0])} octets of padding ({same[0][:16].hex()}...)"
    else:
        message = f"the padding of the IUT's {len(messages)} heartbeats differs from message to message and is no repeated octet"
    random.check(version, not flat and not same, message, messages=len(messages))


@pytest.mark.requirement("RFC6520-3-response", "RFC6520-4-exact-copy", "RFC6520-4-padding-min",
                         "RFC6520-4-padding-random", "RFC6520-4-padding-ignored", "RFC6520-3-no-request-in-handshake")
@pytest.mark.roles("server", "client")
def test_requests_answered_with_an_exact_copy(tls: TlsCase, verdict):
    """Requests of 1, 64 and 1000 octets, then with 64 and 1000 octets of padding: each answered, payload copied."""
    tls.start(needs_heartbeat=True)
    judges = [PerVersion(verdict, rule) for rule in (RESPONSE, EXACT, IGNORED, PADDING, RANDOM)]
    response, exact, ignored, padding, random = judges
    for version, session in tls.each_version(*judges, send_requests=True):
        exchanges = []
        for size, pad in [(1, 16), (64, 16), (1000, 16), (48, 64), (48, 1000)]:
            data = payload(size, f"hb-{size}-{pad}")
            sent = session.request(data, padding=pad)
            # The answer is the Response carrying this payload; failing that, whatever Response came that is
            # not a late answer to an earlier Request.
            earlier = {x[2] for x in exchanges}
            copy = session.answer_to(sent, data)
            answers = [copy] if copy else [hb for _, hb in session.responses(sent.t) if hb.payload not in earlier]
            exchanges.append((size, pad, data, answers))
            if session.tls.ended:
                break
        plain = [x for x in exchanges if x[1] == MIN_PADDING]
        unanswered = [x for x in plain if not x[3]]
        response.check(
            version, not unanswered,
            (f"the {unanswered[0][0]}-octet Request got no Response within {ANSWER_BOUND:g} s ({session.ended_text()})"
             if unanswered else f"each of the {len(plain)} Requests ({', '.join(str(x[0]) for x in plain)} octets) was answered"),
            requests=len(plain), answered=len(plain) - len(unanswered))
        answered = [x for x in plain if x[3]]
        if answered:
            wrong = [x for x in answered if x[3][0].payload != x[2]]
            if wrong:
                size, _, data, got_answers = wrong[0]
                got = got_answers[0].payload
                at = next((i for i, (a, b) in enumerate(zip(data, got, strict=False)) if a != b), min(len(data), len(got)))
                message = (f"the Response to the {size}-octet Request carries {len(got)} octets, differing from the "
                           f"payload at octet {at} ({got[at:at + 8].hex() or 'end'} for {data[at:at + 8].hex() or 'end'})")
            else:
                message = f"each Response's payload is an exact copy of its Request's ({len(answered)} compared octet by octet)"
            exact.check(version, not wrong, message, compared=len(answered), wrong=len(wrong))
        else:
            exact.not_applicable(version, "no Request was answered, so there is no copy to compare")
        if not any(x[3] and x[3][0].payload == x[2] for x in plain):
            ignored.not_applicable(version, "no Request with 16 octets of padding was answered with its payload,"
                                            " so there is nothing to compare the padded ones with")
        else:
            differ = [x for x in exchanges if x[1] != MIN_PADDING and not (x[3] and x[3][0].payload == x[2])]
            ignored.check(
                version, not differ,
                (f"the Request with {differ[0][1]} octets of padding was not answered with its payload "
                 f"({'answered otherwise' if differ[0][3] else 'no Response'}), though 16 octets of padding were" if differ
                 else f"Requests with {', '.join(str(x[1]) for x in exchanges if x[1] != MIN_PADDING)} octets of padding "
                      "were answered just like the one with 16"),
                paddings=[x[1] for x in exchanges])
        judge_padding(padding, random, version, _mine(session))
    response.record(ANSWER_TOLERANCE)
    exact.record()
    ignored.record()
    padding.record(f"at least {MIN_PADDING} octets")
    random.record("no padding that is one repeated octet, none equal to another's")


def _judge_discarded(tls: TlsCase, judge: PerVersion, version: str, session: Session, sent, what: str,
                     sent_octets: bytes) -> None:
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
        judge.check(version, False, message, response_octets=hb.size, leaked_octets=len(leaked),
                    leaked_hex=leaked[:256].hex())
        return
    if alerts or session.tls.ended:
        how = alerts[0].describe() if alerts else session.ended_text()
        judge.check(version, False, f"the IUT did not discard {what} silently: {how}",
                    alerts=[a.describe() for a in alerts])
        return
    check = payload(16, "after")
    follow = session.request(check)
    if session.answer_to(follow, check) is None:
        ended = session.ended_text()  # before still_serving closes this session
        alive, why = tls.still_serving(version)
        judge.check(version, False, f"after {what} the IUT no longer answered a well-formed Request ({ended}); {why}",
                    serving=alive)
        if not alive:
            tls.revive()
        return
    alive, why = tls.still_serving(version)
    judge.check(version, alive, f"the IUT discarded {what} silently and answered the next Request; {why}"
                if alive else f"the IUT stopped serving after {what}: {why}")
    if not alive:
        tls.revive()


@pytest.mark.requirement("RFC6520-4-overlong-discard", "RFC6520-4-short-padding-discard", "RFC6520-4-response-check")
@pytest.mark.roles("server", "client")
def test_malformed_and_unasked_messages_are_discarded_silently(tls: TlsCase, verdict):
    """Per version, each in a session of its own: the Heartbleed probe (payload_length 16384 in a 36-octet
    message: no octet may come back), a Request with 4 octets of padding, and a HeartbeatResponse nobody asked
    for; each followed by a Request that must still be answered."""
    tls.start(needs_heartbeat=True)
    overlong, short, unasked = PerVersion(verdict, OVERLONG), PerVersion(verdict, SHORT), PerVersion(verdict, NO_EXPECTED)
    for version in tls.versions:
        for _, session in tls.each_version(overlong, send_requests=True, only=version):
            sent = session.request(b"aliveness-overlong"[:17], padding=MIN_PADDING, declared=2**14)
            _judge_discarded(tls, overlong, version, session, sent,
                             f"a Request whose payload_length says 16384 in a {len(sent.body)}-octet message", sent.body[3:])
        for _, session in tls.each_version(short, send_requests=True, only=version):
            data = payload(20, "short")
            sent = session.request(data, padding=4)
            _judge_discarded(tls, short, version, session, sent, "a Request with 4 octets of padding", data)
        for _, session in tls.each_version(unasked, send_requests=True, only=version):
            stray = session.tls.send_heartbeat(RESPONSE_TYPE, payload(32, "unasked"))
            got = session.quiet_for(0.5, stray.t)
            alerts = [r for r in got if r.alert is not None]
            if alerts or session.tls.ended:
                unasked.check(version, False, "the IUT did not discard a HeartbeatResponse it never asked for: "
                              + (alerts[0].describe() if alerts else session.ended_text()))
                continue
            check = payload(16, "after")
            answered = session.answer_to(session.request(check), check)
            unasked.check(version, answered is not None,
                          "the IUT discarded a HeartbeatResponse it never asked for, silently, and answered the next Request"
                          if answered else f"after a HeartbeatResponse it never asked for the IUT no longer answered a "
                                           f"Request ({session.ended_text()})")
    overlong.record()
    short.record()
    unasked.record()


@pytest.mark.requirement("RFC6520-4-total-length")
@pytest.mark.roles("server", "client")
def test_heartbeats_stay_within_2_14_octets(tls: TlsCase, verdict):
    """A Request of exactly 2^14 octets, then one of 2^14 + 1 (a record too long for TLS): no answer may exceed 2^14."""
    tls.start(needs_heartbeat=True)
    judge = PerVersion(verdict, TOTAL)
    for version, session in tls.each_version(judge, send_requests=True):
        edge = payload(MAX_MESSAGE - 3 - MIN_PADDING, "edge")
        sent = session.request(edge)
        session.answer_to(sent, edge, bound=ANSWER_BOUND + 1)
        over = session.request(payload(MAX_MESSAGE - 3 - MIN_PADDING + 1, "over"))  # the IUT may well close on it
        session.quiet_for(ANSWER_BOUND, over.t)
        messages = _mine(session)
        too_long = [m for m in messages if m.size > MAX_MESSAGE]
        if not messages:
            mtu = " (over DTLS a Response that large exceeds any path MTU, so an IUT may well not send one)" \
                if tls.datagram else ""
            judge.inconclusive(version, f"the IUT sent no heartbeat in answer to Requests of 2^14 and 2^14 + 1 octets, "
                                        f"so there is no length to judge{mtu} ({session.ended_text()})")
            continue
        judge.check(
            version, not too_long,
            (f"the IUT sent a {too_long[0].name} of {too_long[0].size} octets" if too_long else
             f"each of the IUT's {len(messages)} heartbeats was at most {MAX_MESSAGE} octets "
             f"(largest {max((m.size for m in messages), default=0)})") + " in answer to Requests of 2^14 and 2^14 + 1 octets",
            sizes=[m.size for m in messages])
    judge.record(f"at most 2^14 = {MAX_MESSAGE} octets")
