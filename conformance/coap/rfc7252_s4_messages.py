"""RFC 7252 §4.2 and §4.3: every message the IUT sends has the Message ID and the body its type requires.

The tester holds an ordinary conversation with a server IUT: a Confirmable GET (answered by an ACK that
echoes its Message ID and carries a response or nothing, perhaps followed by a separate response), a
Non-confirmable GET (answered, if at all, by a non-Empty message), then a quiet spell in which the IUT's
unprompted messages show. The coap wire validator (fixtures/protocols/coap.py) then judges every message the
IUT put on the wire in this case, and it judges the same rules in every other CoAP case too: a rule broken
anywhere is failed where it was broken.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap.conftest import CoapCase
from fixtures.coapwire import CON, EMPTY, GET, NON, OPTION_URI_PATH, encode_udp
from fixtures.waiting import wait_until

pytestmark = pytest.mark.protocol("coap")

QUIET = 4.0  # seconds of listening after the last answer window: room for an unprompted message or two


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.2-ack-echoes-mid", "RFC7252-4.2-ack-response-or-empty", "RFC7252-4.3-non-not-empty")
def test_every_message_the_iut_sends_fits_its_type(coap: CoapCase, verdict):
    """A Confirmable and a Non-confirmable GET, then a quiet spell: every ACK, Reset and Non-confirmable message
    the IUT sent is judged from the capture by the wire validator."""
    coap.start()
    path = [(OPTION_URI_PATH, b"aliveness")]
    con = coap.exchange(encode_udp(CON, GET, coap.mid(), token=b"\x4b\x01", options=path))
    non = coap.exchange(encode_udp(NON, GET, coap.mid(), token=b"\x4b\x02", options=path))
    if con.request is None and non.request is None:
        verdict.inconclusive_rest("neither GET showed in the IUT's capture")
    until = time.time() + QUIET
    wait_until(lambda: time.time() > until, QUIET + 1, poll_max=0.2, what="the quiet spell to pass")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.5-duplicate-answered")
def test_a_duplicate_confirmable_is_answered_as_the_first(coap: CoapCase, verdict):
    """A ping and a Confirmable GET, each sent twice with the same Message ID: the second copy of each must get a
    message of the same type with the same Message ID as the first did."""
    coap.start()
    path = [(OPTION_URI_PATH, b"aliveness")]
    pairs = []
    for what, data in (("a ping", encode_udp(CON, EMPTY, coap.mid())),
                       ("a Confirmable GET", encode_udp(CON, GET, coap.mid(), token=b"\x4b\x03", options=path))):
        first, again = coap.exchange_until_answer(data), coap.exchange_until_answer(data)
        pairs.append((what, first, again))
    judged = [(what, a, b) for what, a, b in pairs if a.first is not None and a.request is not None and b.request is not None]
    if not judged:
        verdict.inconclusive_rest("the IUT answered neither first copy, so its duplicates prove nothing "
                                  "(see RFC7252-4.2-ping-reset)")
    alike = [(what, a.first, b.first) for what, a, b in judged]
    off = [(what, m1, m2) for what, m1, m2 in alike if m2 is None or (m2.mtype, m2.mid) != (m1.mtype, m1.mid)]
    verdict.check("RFC7252-4.5-duplicate-answered", not off,
                  "; ".join(f"{what}: first {m1.describe()}, duplicate {m2.describe() if m2 else 'no answer'}"
                            for what, m1, m2 in alike),
                  measured={"duplicates": len(alike), "answered_alike": len(alike) - len(off)},
                  tolerance="the duplicate's answer within 2 s, of the first answer's type and Message ID")
