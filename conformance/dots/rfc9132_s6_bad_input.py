"""RFC 9132 §6 and hostile input, with the IUT as the DOTS server: what it does with heartbeats it cannot read.

Every CBOR key of RFC 9132's table is comprehension-required: a body with a key the agent does not know cannot
be processed, so it must not be answered 2.04. Around each piece of hostile input (a body that is not CBOR,
unknown keys, a 16000-octet body, 500 heartbeats back to back) the tester sends a valid heartbeat: the one after
must be answered as the one before was, so the agent kept its signal channel. A DTLS record carries at most
16 KiB of plaintext, so the 64 KiB body of CoAP over UDP's case cannot be sent here; 16000 octets is close to
the most one record holds.
"""
from __future__ import annotations

import time

import cbor2
import pytest

from conformance.dots.conftest import ANSWER_BOUND, DotsCase
from fixtures.coapwire import CHANGED, PUT, code_text
from fixtures.dotswire import CONTENT_FORMAT, HEARTBEAT_PATH, OPTION_CONTENT_FORMAT, heartbeat, uri_path
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("dots")

FLOOD = 500
BAD = {
    "garbage": ("a body that is not CBOR", b"\xff\xfe\x00garbage\x1c\x1d"),
    "unknown-key": ("a heartbeat with an unknown key next to peer-hb-status", cbor2.dumps({49: {51: True}, 9999: 1})),
    "unknown-inner-key": ("a heartbeat whose container holds an unknown key", cbor2.dumps({49: {51: True, 9998: "x"}})),
    "large": ("a 16000-octet body", cbor2.dumps({49: {51: True}, 9997: bytes(15980)})),
    "flood": (f"{FLOOD} heartbeats back to back", None),
}


def send_body(dots: DotsCase, body: bytes) -> bytes:
    """A PUT to the heartbeat resource with ``body`` (Non-confirmable over DTLS); returns its token."""
    token = dots.token()
    options = uri_path(*HEARTBEAT_PATH) + [(OPTION_CONTENT_FORMAT, CONTENT_FORMAT.to_bytes(2, "big"))]
    dots._send(dots._request_bytes(PUT, token, options, body, confirmable=False))
    return token


def backlog(dots: DotsCase) -> int:
    """What the IUT sent that the tester has not read yet (over TLS the view needs the tester's reading; over DTLS
    the IUT's records are opened from the capture, so nothing is ever behind)."""
    return dots.backlog() if hasattr(dots, "backlog") else 0


def answer_to(dots: DotsCase, token: bytes, sent: float):
    """The IUT's answer to ``token``, or None. An answer is judged missing only once the tester has read all the
    IUT sent: while a backlog shrinks the wait goes on (up to SETTLE_BOUND more); a tester still behind then makes
    the case inconclusive (``TesterBehind``), never a verdict on the IUT."""
    def found():
        return next((s for s in dots.from_iut(sent - 0.005) if s.msg.token == token and s.msg.cls in (2, 4, 5)), None)

    try:
        return wait_until(found, ANSWER_BOUND, poll_max=0.05, what="an answer")
    except TimedOut:
        pass
    try:
        wait_until(lambda: found() or not backlog(dots), SETTLE_BOUND, poll_max=0.1,
                   what="the tester to read what the IUT sent")
    except TimedOut:
        raise TesterBehind(backlog(dots)) from None
    return found()


class TesterBehind(Exception):
    """The tester had not read everything the IUT sent when an answer was to be judged missing."""

    def __init__(self, records: int) -> None:
        super().__init__(f"the tester had not read {records} record(s) the IUT sent, {SETTLE_BOUND:g} s after the "
                         f"answer was due: it fell behind, so a missing answer is not judged")
        self.records = records


SETTLE_BOUND = 30.0  # seconds the IUT has to work through the hostile input before the heartbeat after it


def settle(dots: DotsCase, sent: float) -> None:
    """Wait until the IUT has sent nothing new for a second (it may still be answering a flood: over TCP the
    heartbeat after it queues behind every one of them), at least a second after the input, within SETTLE_BOUND."""
    seen = {"count": -1, "since": time.time()}

    def quiet() -> bool:
        count = len(dots.from_iut(sent - 0.005))
        if count != seen["count"]:
            seen["count"], seen["since"] = count, time.time()
        # Quiet on the wire, not only in the tester's reading: records the tester has yet to read are not silence.
        return time.time() > max(seen["since"], sent) + 1.0 and not backlog(dots)

    try:
        wait_until(quiet, SETTLE_BOUND, poll_max=0.2, what="the IUT to work through the input")
    except TimedOut:
        pass  # still answering after the bound: the heartbeat after it is judged as it fares


def valid_heartbeat(dots: DotsCase):
    sent = time.time()
    return answer_to(dots, send_body(dots, heartbeat(True)), sent)


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-6-unknown-key-refused", "DOTS-survives-bad-input")
@pytest.mark.parametrize("kind", BAD, ids=BAD)
def test_hostile_heartbeats_are_refused_and_the_channel_survives(dots: DotsCase, verdict, kind):
    hostile(dots, verdict, kind, *BAD[kind])


def hostile(dots: DotsCase, verdict, kind: str, what: str, body: bytes | None, survived=None) -> None:
    """A valid heartbeat, the hostile input, a valid heartbeat again. ``survived`` (the TLS cases') may take the
    second heartbeat elsewhere (on a new connection once the IUT aborted the first): it returns (answer, how).
    Where the tester fell behind what the IUT sent, what is still open is inconclusive, with the count."""
    try:
        _hostile(dots, verdict, kind, what, body, survived)
    except TesterBehind as behind:
        verdict.inconclusive_rest(f"after {what}: {behind}")


def _hostile(dots: DotsCase, verdict, kind: str, what: str, body: bytes | None, survived) -> None:
    dots.start()
    before = valid_heartbeat(dots)
    if before is None or before.msg.code != CHANGED:
        verdict.inconclusive_rest(f"the baseline heartbeat was answered {code_text(before.msg.code) if before else 'not at all'}"
                                  " (see RFC9132-4.7-heartbeat-answered)")
    sent = time.time()
    if body is None:
        for _ in range(FLOOD):
            send_body(dots, heartbeat(True))
        answer = None
    else:
        answer = answer_to(dots, send_body(dots, body), sent)
    if kind.startswith("unknown"):
        verdict.check("RFC9132-6-unknown-key-refused", answer is not None and answer.msg.cls in (4, 5),
                      f"{what}: {code_text(answer.msg.code) if answer else f'no answer within {ANSWER_BOUND:g} s'}")
    else:
        verdict.not_applicable_for("RFC9132-6-unknown-key-refused", f"no unknown key to judge in the input ({what})")
    settle(dots, sent)
    after, how = survived(sent) if survived else (valid_heartbeat(dots), "")
    exited = dots.world.iut.container.exit_code()
    verdict.check("DOTS-survives-bad-input", after is not None and after.msg.code == CHANGED,
                  f"after {what}" + (f" (answered {code_text(answer.msg.code)})" if answer else "")
                  + f": a valid heartbeat{how} was answered {code_text(after.msg.code) if after else 'not at all'}"
                  + (f"; the IUT exited with status {exited}" if exited is not None else ""),
                  measured={"exit": exited})
