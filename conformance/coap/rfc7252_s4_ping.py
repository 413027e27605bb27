"""RFC 7252 §4.2 and §4.3 over UDP: the "CoAP ping" and the messages nobody may answer.

An Empty Confirmable message carries no request: the recipient has no context for it, so it rejects it
with a Reset that echoes its Message ID and is itself Empty (this is how CoAP endpoints test each other's
liveness). Acknowledgements and Resets are never answered with either; a Non-confirmable message is never
acknowledged. A Confirmable message with a format error is rejected too, and must not take the endpoint
down. Everything is judged on the capture in the IUT's namespace: the tester's message as it reached the
IUT, and what the IUT sent back to the tester's address and port within 2 s.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap.conftest import ANSWER_BOUND, CoapCase
from fixtures.coapwire import ACK, CON, EMPTY, NON, RST, TYPE_NAMES, decode_udp, encode_udp
from fixtures.waiting import wait_until

pytestmark = pytest.mark.protocol("coap")

PINGS = 3
TOLERANCE = f"an answer within {ANSWER_BOUND:g} s of the message's arrival"
MALFORMED = {
    "token": ("an Empty Confirmable with a 2-octet token", lambda mid: encode_udp(CON, EMPTY, mid, token=b"\x0b\x0c")),
    "payload": ("an Empty Confirmable with a payload", lambda mid: encode_udp(CON, EMPTY, mid, payload=b"ping")),
    "tkl15": ("a Confirmable GET whose token length is 15 (reserved)",
              lambda mid: encode_udp(CON, 1, mid, tkl=15) + bytes(range(15))),
}


def answered_alike(before, after) -> bool:
    """The endpoint still answers a ping as it did before the bad input (a Reset, or whatever it answers with:
    survival is judged apart from RFC7252-4.2-ping-reset)."""
    return after.first is not None and before.first is not None and after.first.mtype == before.first.mtype


def ping(coap: CoapCase):
    mid = coap.mid()
    return mid, coap.exchange_until_answer(encode_udp(CON, EMPTY, mid))


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.2-ping-reset", "RFC7252-4.2-reset-echoes-mid", "RFC7252-4.2-reset-empty")
def test_an_empty_confirmable_gets_a_matching_reset(coap: CoapCase, verdict):
    """Three CoAP pings, one after the other: each must get a Reset with its Message ID, and nothing in it."""
    coap.start()
    results = [ping(coap) for _ in range(PINGS)]
    arrived = [(mid, x) for mid, x in results if x.request is not None]
    if not arrived:
        verdict.inconclusive_rest("none of the tester's pings showed in the IUT's capture")
    missing = [(mid, x) for mid, x in arrived if x.first is None or x.first.mtype != RST]
    times = [x.answer_ms for _, x in arrived if x.answer_ms is not None]
    if missing:
        mid, x = missing[0]
        what = x.describe_answers() if x.first is None else f"{x.first.describe()} instead of a Reset"
        verdict.check("RFC7252-4.2-ping-reset", False,
                      f"{len(missing)} of {len(arrived)} Empty Confirmable messages got no Reset; mid={mid:#06x}: {what}",
                      measured={"pings": len(arrived), "reset": len(arrived) - len(missing)}, tolerance=TOLERANCE)
    else:
        after = ", ".join(f"{t:.1f}" for t in times)
        verdict.check("RFC7252-4.2-ping-reset", True,
                      f"each of {len(arrived)} Empty Confirmable messages got a Reset, after {after} ms",
                      measured={"pings": len(arrived), "answer_ms": times}, tolerance=TOLERANCE)
    resets = [(mid, x.first) for mid, x in arrived if x.first is not None and x.first.mtype == RST]
    if not resets:
        verdict.not_applicable_for("RFC7252-4.2-reset-echoes-mid", "the IUT sent no Reset to judge")
        verdict.not_applicable_for("RFC7252-4.2-reset-empty", "the IUT sent no Reset to judge")
        return
    wrong = [(mid, m) for mid, m in resets if m.mid != mid]
    verdict.check("RFC7252-4.2-reset-echoes-mid", not wrong,
                  f"a Reset carried mid={wrong[0][1].mid:#06x} for the ping with mid={wrong[0][0]:#06x}" if wrong else
                  f"each of {len(resets)} Resets echoed its ping's Message ID",
                  measured={"resets": len(resets), "wrong": len(wrong)})
    full = [m for _, m in resets if m.code != EMPTY or m.token or m.options or m.payload or m.error]
    verdict.check("RFC7252-4.2-reset-empty", not full,
                  f"a Reset was not Empty: {full[0].describe()}" if full else
                  f"each of {len(resets)} Resets was Empty (0.00, no token, options or payload)",
                  measured={"resets": len(resets), "not_empty": len(full)})


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.2-no-answer-to-ack-rst")
def test_an_acknowledgement_or_reset_is_never_answered(coap: CoapCase, verdict):
    """An Empty ACK and an Empty RST (for Message IDs the IUT never used): neither may get an ACK or a Reset back."""
    coap.start()
    sent = []
    for mtype in (ACK, RST):
        x = coap.exchange(encode_udp(mtype, EMPTY, coap.mid()))
        sent.append((mtype, x))
    arrived = [(t, x) for t, x in sent if x.request is not None]
    if not arrived:
        verdict.inconclusive_rest("none of the tester's messages showed in the IUT's capture")
    bad = [(t, m) for t, x in arrived for _, m in x.answers if m.mtype in (ACK, RST)]
    verdict.check("RFC7252-4.2-no-answer-to-ack-rst", not bad,
                  f"the IUT answered an Empty {TYPE_NAMES[bad[0][0]]} with {bad[0][1].describe()}" if bad else
                  f"no ACK or Reset came back within {ANSWER_BOUND:g} s of an Empty ACK or an Empty RST",
                  measured={"answers": [m.describe() for _, x in arrived for _, m in x.answers]},
                  tolerance=f"watched {ANSWER_BOUND:g} s after each")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.3-non-not-acknowledged")
def test_an_empty_non_confirmable_is_not_acknowledged(coap: CoapCase, verdict):
    """An Empty Non-confirmable message (which may not be Empty): it may get a Reset, never an Acknowledgement."""
    coap.start()
    x = coap.exchange(encode_udp(NON, EMPTY, coap.mid()))
    if x.request is None:
        verdict.inconclusive_rest("the tester's message never showed in the IUT's capture")
    acks = [m for _, m in x.answers if m.mtype == ACK]
    verdict.check("RFC7252-4.3-non-not-acknowledged", not acks,
                  f"the IUT acknowledged an Empty Non-confirmable message: {acks[0].describe()}" if acks else
                  f"not acknowledged ({x.describe_answers()})",
                  measured={"answers": [m.describe() for _, m in x.answers]}, tolerance=f"watched {ANSWER_BOUND:g} s")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.2-format-error-not-accepted", "RFC7252-4.2-format-error-reset",
                         "COAP-survives-bad-input")
@pytest.mark.parametrize("kind", MALFORMED, ids=MALFORMED)
def test_a_malformed_confirmable_is_rejected(coap: CoapCase, verdict, kind):
    """A ping first (the baseline), then the malformed Confirmable, then a ping again: the malformed one is
    rejected (a matching Reset, or at least never accepted), and the endpoint still answers pings after it."""
    what, build = MALFORMED[kind]
    coap.start()
    _, before = ping(coap)
    mid = coap.mid()
    x = coap.exchange_until_answer(build(mid))
    if x.request is None:
        verdict.inconclusive_rest("the tester's message never showed in the IUT's capture")
    accepted = [m for _, m in x.answers if m.mtype == ACK or (m.code != EMPTY and m.mtype != RST)]
    verdict.check("RFC7252-4.2-format-error-not-accepted", not accepted,
                  f"{what} was accepted: {accepted[0].describe()}" if accepted else f"{what}: {x.describe_answers()}",
                  measured={"answers": [m.describe() for _, m in x.answers]}, tolerance=TOLERANCE)
    reset = next((m for _, m in x.answers if m.mtype == RST), None)
    if accepted:
        verdict.not_applicable_for("RFC7252-4.2-format-error-reset", "the IUT accepted the message instead")
    else:
        verdict.check("RFC7252-4.2-format-error-reset", reset is not None and reset.mid == mid,
                      f"rejected with {reset.describe()}" if reset is not None and reset.mid == mid else
                      f"{what} got no matching Reset ({x.describe_answers()})", tolerance=TOLERANCE)
    if before.first is None:
        verdict.inconclusive("COAP-survives-bad-input", "the IUT did not answer the baseline ping at all, so a "
                                                        "ping afterwards proves nothing")
        return
    _, after = ping(coap)
    alive = answered_alike(before, after)
    exited = coap.world.iut.container.exit_code() if not coap.world.external and coap.world.iut.container else None
    verdict.check("COAP-survives-bad-input", alive,
                  f"a ping after {what} was still answered ({after.first.describe()})" if alive else
                  f"after {what} a ping got {after.describe_answers()}" + (f" (the IUT exited with status {exited})"
                                                                            if exited is not None else ""),
                  tolerance=TOLERANCE)


@pytest.mark.roles("server")
@pytest.mark.requirement("COAP-ping-burst")
def test_pings_in_a_burst_are_reported(coap: CoapCase, verdict):
    """Three pings 10 ms apart (a sender checking several paths at once, or retrying fast): how many get a Reset."""
    coap.start()
    mids = [coap.mid() for _ in range(3)]
    first = coap.send(encode_udp(CON, EMPTY, mids[0]))
    for mid in mids[1:]:
        coap.send(encode_udp(CON, EMPTY, mid), gap=0.01)
    until = time.time() + ANSWER_BOUND
    wait_until(lambda: time.time() > until, ANSWER_BOUND + 1, poll_max=0.1, what="the answer window to pass")
    resets = {m.mid for d in coap.datagrams() if d.src == coap.iut and d.destination == coap.origin and d.t >= first.sent
              for m in [decode_udp(d.head)] if m.mtype == RST}
    answered = [mid for mid in mids if mid in resets]
    missing = ", ".join(f"{m:#06x}" for m in mids if m not in resets)
    verdict.observe("COAP-ping-burst", f"{len(answered)} of {len(mids)} pings sent 10 ms apart got their Reset"
                    + (f" (none for mid {missing})" if missing else ""), measured={"pings": len(mids), "reset": len(answered)})


# Bad input that is not a format error: each is sent between two pings; only survival is graded.
STORM_OPTIONS = 500
FLOOD = 2000
BAD_INPUT = {
    "truncated-header": ("a 2-octet datagram (a header cut short: no Message ID to answer)", lambda coap: [b"\x40\x01"]),
    "option-storm": (f"a Confirmable GET with {STORM_OPTIONS} options (Uri-Path, one octet each)",
                     lambda coap: [encode_udp(CON, 1, coap.mid(), token=b"\x51", options=[(11, b"s")] * STORM_OPTIONS)]),
    "64k-datagram": ("a 65507-octet datagram (the largest UDP over IPv4 carries): a Confirmable POST with that much payload",
                     lambda coap: [encode_udp(CON, 2, coap.mid(), token=b"\x64", payload=b"\xa5" * (65507 - 6))]),
    "flood": (f"{FLOOD} Confirmable GETs back to back",
              lambda coap: [encode_udp(CON, 1, coap.mid(), token=b"\xf1", options=[(11, b"f")]) for _ in range(FLOOD)]),
}


@pytest.mark.roles("server")
@pytest.mark.requirement("COAP-survives-bad-input")
@pytest.mark.parametrize("kind", BAD_INPUT, ids=BAD_INPUT)
def test_bad_input_leaves_the_endpoint_alive(coap: CoapCase, verdict, kind):
    """A ping (the baseline), then an option storm, a 64 KiB datagram or a bounded flood, then a ping again:
    whatever the IUT made of the bad input, it must still answer the second ping."""
    what, build = BAD_INPUT[kind]
    coap.start()
    _, before = ping(coap)
    if before.first is None:
        verdict.inconclusive_rest("the IUT did not answer the baseline ping at all, so a ping afterwards proves nothing")
    messages = build(coap)
    start = time.time()
    coap.send(messages[0])
    for data in messages[1:]:
        coap.send(data, gap=0)
    # The flood is queued at once; the answers it draws are counted, not waited for one by one.
    until = time.time() + ANSWER_BOUND
    wait_until(lambda: time.time() > until, ANSWER_BOUND + 1, poll_max=0.1, what="the bad input to be taken in")
    answers = [d for d in coap.datagrams() if d.src == coap.iut and d.destination == coap.origin and start <= d.t <= until]
    kinds = sorted({decode_udp(d.head).describe().split(" mid=")[0] for d in answers})
    _, after = ping(coap)
    alive = answered_alike(before, after)
    exited = coap.world.iut.container.exit_code() if not coap.world.external and coap.world.iut.container else None
    reaction = f"{len(answers)} datagrams back ({', '.join(kinds[:4])})" if answers else "no answer"
    verdict.check("COAP-survives-bad-input", alive,
                  f"after {what} ({reaction}) a ping was still answered ({after.first.describe()})" if alive else
                  f"after {what} ({reaction}) a ping got {after.describe_answers()}"
                  + (f" (the IUT exited with status {exited})" if exited is not None else ""),
                  measured={"sent": len(messages), "answers": len(answers)}, tolerance=TOLERANCE)
