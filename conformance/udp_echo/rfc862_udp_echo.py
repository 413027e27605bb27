"""RFC 862, UDP Based Echo Service: every datagram a server receives goes back, data unchanged, in an
answering datagram to where it came from.

The tester sends datagrams one at a time (each waits for the echo of the one before, or for the answer
bound), each with a text of its own, so an answer cannot be taken for another datagram's. Everything is
judged on the capture in the IUT's namespace, which keeps whole datagrams: what reached the IUT, what it
sent back and when. A datagram that reached the IUT is answered when a datagram leaves the IUT for the
tester's address and port within ``ANSWER_BOUND`` (2 s; an echo takes about a millisecond); the echo's
data must be the datagram's, octet for octet. Losing a datagram on the way there, or its echo on the way
back, must not stop the service: UDP keeps no state between datagrams, and neither does the echo.
"""
from __future__ import annotations

import pytest

from conformance.udp_echo.conftest import Exchange, payload
from fixtures.datagrams import Datagram, endpoint_text
from fixtures.protocols.udp_echo import ANSWER_BOUND
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("udp-echo")

# The IDs as the markers name them (the markers spell them out: tests/unit/test_catalogue.py reads them).
ANSWER = "RFC862-udp-echo-answer"
DATA = "RFC862-udp-echo-data"
TIME = "UDPECHO-echo-time"
EMPTY = "UDPECHO-empty-datagram"

SIZES = [1, 64, 1200]  # one octet; a short message; a datagram near a full Ethernet frame (no fragments)
PER_SIZE = 3
TOLERANCE = f"an answer leaves the IUT for the sender's address and port within {ANSWER_BOUND:g} s of the datagram's arrival"


def datagram_of(size: int, index: int) -> bytes:
    """The ``index``-th datagram of ``size`` octets: each one different (one octet: a different letter)."""
    if size == 1:
        return bytes([ord("a") + index])
    return payload(size, f"echo-{size}-{index}")


def difference(sent: Datagram, got: Datagram) -> str:
    """Where an answer's data departs from the datagram's."""
    if got.size != sent.size:
        return f"{got.size} octets instead of {sent.size}"
    at = next(i for i, (a, b) in enumerate(zip(sent.head, got.head, strict=False)) if a != b)
    return f"octet {at} is {got.head[at]:#04x}, not {sent.head[at]:#04x}"


def count(n: int, what: str, plural: str | None = None) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {plural or what + 's'}"


def judge(udp, verdict, exchanges: list[Exchange], context: str = "") -> None:
    """Grade RFC862-udp-echo-answer and RFC862-udp-echo-data on ``exchanges`` (what reached the IUT of them)."""
    arrived = [x for x in exchanges if x.request is not None]
    if not arrived:
        verdict.inconclusive_rest("none of the tester's datagrams showed in the IUT's capture, so nothing could be judged")
    origin = endpoint_text(*udp.origin)
    suffix = f" {context}" if context else ""
    unanswered = [x for x in arrived if x.answer is None]
    measured = {"datagrams": len(arrived), "answered": len(arrived) - len(unanswered),
                "sizes": sorted({len(x.payload) for x in arrived})}
    if unanswered:
        miss = unanswered[0]
        strays = miss.strays
        elsewhere = (f"; it sent {strays[0].describe()} to {endpoint_text(*strays[0].destination)} instead"
                     if strays else "")
        message = (f"{miss.what()} reached the IUT{suffix} and nothing went back to {origin} within "
                   f"{ANSWER_BOUND:g} s{elsewhere} ({len(unanswered)} of {count(len(arrived), 'datagram')} unanswered)")
    elif len(arrived) == 1:
        message = f"the IUT answered the datagram{suffix}, to {origin} where it came from"
    else:
        message = f"the IUT answered each of the {len(arrived)} datagrams{suffix}, to {origin} where they came from"
    verdict.check(ANSWER, not unanswered, message, measured=measured, tolerance=TOLERANCE)

    answered = [x for x in arrived if x.answer is not None]
    if not answered:
        verdict.not_applicable_for(DATA, "the IUT answered none of the datagrams, so there is no answer to compare")
        return
    altered = [x for x in answered if x.echo is None]
    if altered:
        bad = altered[0]
        message = (f"the answer to {bad.what()}{suffix} carried {bad.answer.describe()}: "
                   f"{difference(bad.request, bad.answer)} ({len(altered)} of {count(len(answered), 'answer')} differ)")
    else:
        which = "the answer" if len(answered) == 1 else f"each of the {len(answered)} answers"
        sizes = ", ".join(str(len(x.payload)) for x in answered)
        message = f"{which} carried its datagram's data unchanged ({sizes} octets, compared octet by octet)"
    verdict.check(DATA, not altered, message,
                  measured={"answers": len(answered), "altered": len(altered),
                            "first_altered": bad.answer.describe() if altered else None},
                  tolerance="identical octets and length")


def observe_time(verdict, exchanges: list[Exchange]) -> None:
    times = [x.echo_ms for x in exchanges if x.echo_ms is not None]
    if not times:
        verdict.observe(TIME, "no datagram was echoed, so there is no echo time to report")
        return
    verdict.observe(
        TIME,
        f"echoed in {min(times):.2f} to {max(times):.2f} ms (arrival to departure at the IUT's interface, "
        f"{count(len(times), 'echo', 'echoes')})",
        measured={"echo_ms": times},
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.requirement("RFC862-udp-echo-answer", "RFC862-udp-echo-data", "UDPECHO-echo-time")
@pytest.mark.roles("server")
def test_datagram_is_echoed_with_its_data(udp, verdict, size):
    """Datagrams of one size (1, 64 or 1200 octets) each come back in one datagram with the same data."""
    udp.start(needs_container=False)
    exchanges = [udp.exchange(datagram_of(size, i)) for i in range(PER_SIZE)]
    observe_time(verdict, exchanges)
    judge(udp, verdict, exchanges)


@pytest.mark.requirement("UDPECHO-empty-datagram", "RFC862-udp-echo-answer", "RFC862-udp-echo-data")
@pytest.mark.roles("server")
def test_an_empty_datagram_then_one_with_data(udp, verdict):
    """A datagram with no data (reported), then one with data: the service still answers after the empty one."""
    udp.start(needs_container=False)
    empty = udp.exchange(b"")
    if empty.request is None:
        verdict.inconclusive(EMPTY, "the empty datagram does not show in the IUT's capture")
    elif empty.answer is None:
        verdict.observe(EMPTY, f"the empty datagram reached the IUT and was not answered within {ANSWER_BOUND:g} s",
                        measured={"answered": False})
    elif empty.answer.size == 0:
        verdict.observe(EMPTY, f"the empty datagram was answered with an empty datagram in "
                        f"{(empty.answer.t - empty.request.t) * 1000:.2f} ms", measured={"answered": True})
    else:
        verdict.observe(EMPTY, f"the empty datagram was answered with {empty.answer.describe()}",
                        measured={"answered": True, "answer": empty.answer.describe()})
    after = udp.exchange(payload(32, "after-empty"))
    judge(udp, verdict, [after], "after an empty datagram")


@pytest.mark.requirement("RFC862-udp-echo-answer", "RFC862-udp-echo-data")
@pytest.mark.roles("server")
def test_echo_goes_on_after_a_lost_datagram(udp, verdict):
    """The first datagram is lost on the way to the IUT; the next one is answered as if nothing had happened."""
    udp.start(needs_container=False)
    udp.drop_probes("to-iut", first=1)
    lost = udp.send(payload(48, "ping-1 lost on the way"))
    kept = udp.exchange(payload(48, "ping-2 sent after the lost one"))
    if kept.request is None:
        verdict.inconclusive_rest("the datagram sent after the lost one never reached the IUT either")
    if udp.arrived(lost.payload, lost.sent):
        verdict.inconclusive_rest("the fault did not drop the first datagram: it reached the IUT")
    udp.world.mark(kept.request.t, "the datagram before this one was dropped on its way to the IUT")
    judge(udp, verdict, [kept], "after the datagram before it was lost on the way to the IUT")


@pytest.mark.requirement("RFC862-udp-echo-answer", "RFC862-udp-echo-data")
@pytest.mark.roles("server")
def test_echo_goes_on_after_a_lost_answer(udp, verdict):
    """The IUT's first answer is lost on the way back; the IUT answers the next datagram all the same."""
    udp.start(needs_container=False)
    udp.drop_probes("from-iut", first=1)
    first = udp.exchange(payload(48, "ping-1 whose echo is lost"))
    second = udp.exchange(payload(48, "ping-2 after the lost echo"))
    if first.request is None or second.request is None:
        verdict.inconclusive_rest("a datagram of the tester's does not show in the IUT's capture")
    if second.echo is not None:
        try:  # the tester hears the second echo (the fault dropped only one), then the first is known lost
            wait_until(lambda: udp.received(second.payload), ANSWER_BOUND, poll_max=0.05, what="the tester to get the echo")
        except TimedOut:
            pass
    if first.echo is not None and udp.received(first.payload):
        verdict.inconclusive_rest("the fault did not drop the IUT's first answer: the tester received it")
    if first.answer is not None:
        udp.world.mark(first.answer.t, "the first answer is dropped on its way to the tester")
    judge(udp, verdict, [first, second], "(the first answer lost on the way back to the tester)")
