"""RFC 7252 §4.2 and §4.8: judging the transmissions of one Confirmable message that nobody acknowledges.

Shared by the client case (a request to a blackholed server, rfc7252_s4_8_retransmission.py) and the server
case (a notification to an observer that never acknowledges, rfc7252_s4_8_notification.py). ``times`` are the
capture timestamps of every transmission of the message (one Message ID), the first included. With RFC 7252's
default transmission parameters (ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5, MAX_RETRANSMIT 4) the first
retransmission comes 2 to 3 s after the first transmission, each later wait is twice the one before, there
are at most four retransmissions, all within MAX_TRANSMIT_SPAN (45 s), and then the sender gives up. Watching
ends at a sixth transmission, or once MAX_TRANSMIT_WAIT (93 s) has passed since the first and twice the last
wait since the last, so a sender that never gives up is seen doing so.
"""
from __future__ import annotations

import time

from fixtures.coapwire import Message
from fixtures.verdicts import outside
from fixtures.waiting import wait_until

ACK_TIMEOUT, ACK_RANDOM_FACTOR, MAX_RETRANSMIT = 2.0, 1.5, 4  # RFC 7252 §4.8, the defaults
MAX_TRANSMIT_SPAN = ACK_TIMEOUT * (2 ** MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR  # 45 s
MAX_TRANSMIT_WAIT = ACK_TIMEOUT * (2 ** (MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR  # 93 s
# Timer tolerance, judged on capture timestamps: a late timer is normal (scheduling), an early one is not.
EARLY, LATE = 0.02, 0.15  # seconds before/after a window
RATIO = 0.05  # a doubled wait may be off by this fraction of it, plus LATE
# Watching ends at a sixth transmission, or once MAX_TRANSMIT_WAIT has passed since the first (by then any sender
# must have given up) and twice the last wait since the last; never later than WATCH_CAP after the first.
WATCH_CAP = MAX_TRANSMIT_WAIT + 7


def windows(count: int) -> list[tuple[float, float]]:
    """RFC 7252's window for each transmission after the first, as seconds after the first: the k-th
    retransmission comes ACK_TIMEOUT x (2**k - 1) to that x ACK_RANDOM_FACTOR after the request."""
    return [(ACK_TIMEOUT * (2 ** k - 1), ACK_TIMEOUT * ACK_RANDOM_FACTOR * (2 ** k - 1)) for k in range(1, count)]


def next_wait(times: list[float]) -> float:
    """How long after the latest transmission a conformant sender could still send another (or give up)."""
    if len(times) == 1:
        return ACK_TIMEOUT * ACK_RANDOM_FACTOR + LATE
    return 2 * (times[-1] - times[-2]) * (1 + RATIO) + LATE


def watch(transmissions) -> list[float]:
    """Wait until the transmissions of the message (``transmissions()``: their capture times) are over."""

    def watched():
        times = transmissions()
        until = min(max(times[-1] + next_wait(times), times[0] + MAX_TRANSMIT_WAIT + LATE), times[0] + WATCH_CAP)
        return len(times) > MAX_RETRANSMIT + 1 or time.time() > until

    wait_until(watched, MAX_TRANSMIT_WAIT * 2, poll_max=0.2, what="the retransmissions to end")
    return transmissions()


def judge(verdict, msg: Message, times: list[float], what: str) -> None:
    """The verdicts on RFC7252-4.2-initial-timeout, -backoff-doubles, -retransmit-bounded, RFC7252-4.8.2-transmit-span
    and the schedule (COAP-retransmission-schedule) for ``msg`` ("the request", "the notification"), sent at ``times``."""
    rel = [t - times[0] for t in times]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    schedule = ", ".join(f"{t:.3f}" for t in rel[1:]) or "none"
    measured = {"mid": msg.mid, "transmissions": len(times), "after_first_s": [round(t, 3) for t in rel]}
    rfc = "; ".join(f"{lo:g}-{hi:g}" for lo, hi in windows(MAX_RETRANSMIT + 1))
    verdict.observe("COAP-retransmission-schedule",
                    f"{msg.describe()}: sent {len(times)} times; retransmissions at {schedule} s after the first",
                    measured=measured, tolerance=f"RFC 7252's windows with its defaults: {rfc} s after the first")

    if len(times) == 1:
        verdict.check("RFC7252-4.2-initial-timeout", False,
                      f"{what} was never retransmitted: no second transmission within {next_wait(times):.2f} s",
                      measured=measured, tolerance=f"[{ACK_TIMEOUT:g}, {ACK_TIMEOUT * ACK_RANDOM_FACTOR:g}] s, "
                                                    f"-{EARLY * 1000:g}/+{LATE * 1000:g} ms")
        for rule in ("RFC7252-4.2-backoff-doubles", "RFC7252-4.2-retransmit-bounded", "RFC7252-4.8.2-transmit-span"):
            verdict.not_applicable_for(rule, "the IUT never retransmitted")
        return
    lo, hi = ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR
    verdict.check("RFC7252-4.2-initial-timeout", lo - EARLY <= gaps[0] <= hi + LATE,
                  f"the first retransmission came {gaps[0]:.3f} s after {what}", measured={"initial_s": round(gaps[0], 3)},
                  tolerance=f"[{lo:g}, {hi:g}] s, -{EARLY * 1000:g}/+{LATE * 1000:g} ms (capture)",
                  window=(times[0], times[1]), deviation=outside(gaps[0], lo - EARLY, hi + LATE))
    if len(gaps) < 2:
        verdict.not_applicable_for("RFC7252-4.2-backoff-doubles", "only one retransmission: no wait to compare")
    else:
        off = [(k, g, 2 * p) for k, (p, g) in enumerate(zip(gaps, gaps[1:], strict=False), start=2)
               if not (2 * p * (1 - RATIO) - EARLY <= g <= 2 * p * (1 + RATIO) + LATE)]
        waits = ", ".join(f"{g:.3f}" for g in gaps)
        verdict.check("RFC7252-4.2-backoff-doubles", not off,
                      f"waits between transmissions: {waits} s" + (f"; wait {off[0][0]} was {off[0][1]:.3f} s, not about "
                                                                    f"{off[0][2]:.3f} s (twice the one before)" if off else
                                                                    ", each about twice the one before"),
                      measured={"waits_s": [round(g, 3) for g in gaps]},
                      tolerance=f"twice the previous wait, within ±{RATIO:.0%} (+{LATE * 1000:g} ms late)",
                      window=(times[0], times[-1]),
                      deviation=max((outside(g, w * (1 - RATIO) - EARLY, w * (1 + RATIO) + LATE) for _, g, w in off),
                                    default=0.0))
    retransmissions = len(times) - 1
    watched_for = time.time() - times[-1]
    verdict.check("RFC7252-4.2-retransmit-bounded", retransmissions <= MAX_RETRANSMIT,
                  f"{retransmissions} retransmissions, and none in the {watched_for:.1f} s after the last"
                  if retransmissions <= MAX_RETRANSMIT else
                  f"{retransmissions} retransmissions, more than MAX_RETRANSMIT ({MAX_RETRANSMIT}), when watching stopped",
                  measured={"retransmissions": retransmissions},
                  tolerance=f"at most {MAX_RETRANSMIT}; watched {MAX_TRANSMIT_WAIT:g} s past the first and twice the last wait")
    span = rel[-1] if retransmissions <= MAX_RETRANSMIT else rel[MAX_RETRANSMIT]
    verdict.check("RFC7252-4.8.2-transmit-span", span <= MAX_TRANSMIT_SPAN + LATE,
                  f"the first {min(len(times), MAX_RETRANSMIT + 1)} transmissions spanned {span:.3f} s",
                  measured={"span_s": round(span, 3)}, tolerance=f"at most {MAX_TRANSMIT_SPAN:g} s (+{LATE * 1000:g} ms)",
                  window=(times[0], times[0] + span), deviation=outside(span, 0.0, MAX_TRANSMIT_SPAN + LATE))
