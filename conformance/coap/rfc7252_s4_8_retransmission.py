"""RFC 7252 §4.2 and §4.8 over UDP: how a client retransmits a Confirmable request that nobody acknowledges.

The IUT is a client; its request goes to the tester's UDP port, and every datagram between the two is
dropped in the tester's namespace (a blackholed server). The capture in the IUT's own namespace sees each
transmission of the request leave: the same Message ID, again and again. With RFC 7252's default
transmission parameters (ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4) the first retransmission
comes 2 to 3 s after the request, each later wait is twice the one before, there are at most four
retransmissions, all within MAX_TRANSMIT_SPAN (45 s), and then the sender gives up (judged in
conformance/coap/schedule.py, which the server's notification case shares).
"""
from __future__ import annotations

import time

import pytest

from conformance.coap import schedule
from conformance.coap.conftest import CoapCase
from fixtures.coapwire import CON
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("coap")

FIRST_REQUEST_BOUND = 30.0  # seconds the IUT has, once started, to send its request


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC7252-4.2-initial-timeout", "RFC7252-4.2-backoff-doubles", "RFC7252-4.2-retransmit-bounded",
                         "RFC7252-4.8.2-transmit-span", "COAP-retransmission-schedule")
def test_a_request_to_a_blackholed_server_backs_off_and_gives_up(coap: CoapCase, verdict):
    """The request, its retransmissions and the give-up, timed on the capture."""
    coap.start_client()
    coap.world.faults.blackhole("both")
    coap.launch()
    started = time.time()

    def request():
        return next(((d, m) for d, m in coap.from_iut(started - 1) if m.mtype == CON and not m.error), None)

    try:
        first, msg = wait_until(request, FIRST_REQUEST_BOUND, poll_max=0.05, what="the IUT's first Confirmable request")
    except TimedOut:
        verdict.inconclusive_rest(f"the IUT sent no Confirmable request to the tester within {FIRST_REQUEST_BOUND:g} s")

    def transmissions() -> list[float]:
        return [d.t for d, m in coap.from_iut(first.t - 0.001) if m.mtype == CON and m.mid == msg.mid]

    times = schedule.watch(transmissions)
    schedule.judge(verdict, msg, times, "the request")
