"""RFC 7252 §4.2 and §4.8 for a server: a Confirmable notification that its observer never acknowledges.

A server IUT whose manifest names an observable resource (``notify-path``, RFC 7641) is observed from one of
the tester's sockets: a Confirmable GET with Observe 0. Another socket then changes the resource with a PUT
(its payload the current Unix time in decimal digits; a resource that changes by itself, as libcoap's /time
does every second, notifies anyway). The server sends its observer a notification; when it is Confirmable, the
observer never acknowledges it (the tester just stays silent, as a client that died would), and every
transmission of it is timed on the capture in the IUT's namespace, against the same rules as a client's
request (conformance/coap/schedule.py). A server that notifies with Non-confirmable messages has no
retransmission to judge: the rules are then not applicable, and the report says so.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap import schedule
from conformance.coap.conftest import CoapCase
from fixtures import deadline
from fixtures.coapwire import ACK, CON, GET, OPTION_OBSERVE, OPTION_URI_PATH, PUT, encode_udp
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("coap")

REGISTER_BOUND = 5.0  # seconds for the Observe registration's answer
NOTIFY_BOUND = 10.0  # seconds from the PUT's answer to the first notification


def uri_path(path: str) -> list[tuple[int, bytes]]:
    return [(OPTION_URI_PATH, part.encode()) for part in path.strip("/").split("/") if part]


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC7252-4.2-initial-timeout", "RFC7252-4.2-backoff-doubles", "RFC7252-4.2-retransmit-bounded",
                         "RFC7252-4.8.2-transmit-span", "COAP-retransmission-schedule")
def test_an_unacknowledged_notification_backs_off_and_gives_up(coap: CoapCase, verdict):
    """Observe, change, and never acknowledge: the notification's retransmissions, timed on the capture."""
    path = coap.world.manifest.role("coap", "server").option("notify-path")
    if not path:
        verdict.not_applicable("the manifest names no observable resource ([coap.server] notify-path)")
    coap.start()
    deadline.extend(schedule.WATCH_CAP + REGISTER_BOUND + NOTIFY_BOUND)
    token = b"\x0b\x5e"
    register = coap.exchange_until_answer(
        encode_udp(CON, GET, coap.mid(), token=token, options=[(OPTION_OBSERVE, b"")] + uri_path(path)))
    answer = register.first
    if answer is None or answer.cls != 2 or not answer.option(OPTION_OBSERVE):
        verdict.inconclusive_rest(f"the Observe registration for {path} was not taken: {register.describe_answers()}")
    observer = coap.origin
    changer, changer_port = coap.second_socket()
    changed = coap.send_from(changer, changer_port, encode_udp(CON, PUT, coap.mid(), token=b"\x0c",
                                                           options=uri_path(path), payload=b"%d" % time.time()))

    def notification():
        return next(((d, m) for d, m in coap.from_iut(changed - 1, to=observer)
                     if m.token == token and m.cls == 2 and m.mtype != ACK and d.t > register.first_t), None)

    try:
        first, msg = wait_until(notification, NOTIFY_BOUND, poll_max=0.05, what="a notification after the PUT")
    except TimedOut:
        verdict.inconclusive_rest(f"no notification came within {NOTIFY_BOUND:g} s of the PUT to {path}")
    if msg.mtype != CON:
        verdict.not_applicable(f"the IUT notified with a {'NON' if msg.mtype == 1 else msg.mtype} message "
                                    f"({msg.describe()}): nothing to retransmit")

    def transmissions() -> list[float]:
        return [d.t for d, m in coap.from_iut(first.t - 0.001, to=observer) if m.mtype == CON and m.mid == msg.mid]

    times = schedule.watch(transmissions)
    schedule.judge(verdict, msg, times, "the notification")
