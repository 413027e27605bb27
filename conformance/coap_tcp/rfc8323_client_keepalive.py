"""RFC 8323 §3.3, §3.4 and §5.4 with the IUT as a client: its CSM, its keepalive Pings, and a server gone dead.

The tester listens; the IUT connects to it. The connection initiator must send its CSM without waiting for the
acceptor's, so the tester holds its own back until the IUT's has come. An IUT that claims keepalive (its
manifest's keepalive-command, with ``{keepalive-interval}``) sends a 7.02 Ping after that many seconds of
silence; the tester answers each with a Pong for a few rounds, then stops: it stays silent, is frozen, or the
path is blackholed. RFC 8323 leaves patience to the application (§5.4), so the suite holds an IUT to its own
configured interval: it must end the connection within three intervals of the tester's last message (one
interval to its Ping, up to two waiting for the Pong). How it ends (7.05 Abort, 7.04 Release, FIN, RST) is
reported. Everything is timed on the capture in the IUT's namespace.
"""
from __future__ import annotations

import time

import pytest

from conformance.coap_tcp.conftest import ANSWER_BOUND, CoapTcpCase
from fixtures.coapwire import ABORT, CSM, PING, RELEASE, encode_tcp
from fixtures.waiting import TimedOut, wait_until

pytestmark = pytest.mark.protocol("coap-tcp")

INTERVAL = 2  # seconds: the keepalive-interval the case configures
ROUNDS = 3  # Pings answered before the tester dies
SLACK_FRACTION, SLACK_FIXED = 0.10, 0.25  # a Ping may be off its interval by 10 % plus 250 ms (timers, scheduling)
GIVE_UP_INTERVALS = 3
# Why an end was seen in the IUT's namespace rather than on the wire.
SOCKET_NOTE = {
    "blackholed": " (seen in its namespace: on a blackholed path its FIN waits behind the unacknowledged Ping)",
    "crashed": " (seen in its namespace: what it sent after the tester's FIN drew an RST from the dead tester's kernel)",
}
HOW = {
    "silent": "the tester stops answering Pings (its kernel still acknowledges every segment)",
    "frozen": "the tester's processes are frozen (cgroup freezer): its kernel still acknowledges",
    "blackholed": "every segment between the IUT and the tester is dropped",
    "crashed": "the tester's process is killed (its kernel closes the connection: a FIN, then an RST for what comes)",
}


@pytest.mark.roles("client")
@pytest.mark.requirement("RFC8323-3.3-csm-first", "RFC8323-3.3-initiator-no-wait")
def test_the_client_opens_with_a_csm_without_waiting(coap_tcp: CoapTcpCase, verdict):
    """The tester accepts and says nothing: the IUT's first message must be its CSM, sent unprompted."""
    conn = coap_tcp.start_client(send_csm=False)
    try:
        first = wait_until(lambda: next(iter(coap_tcp.from_iut(conn)), None), ANSWER_BOUND, poll_max=0.05,
                           what="the IUT's first message")
    except TimedOut:
        first = None
    verdict.check("RFC8323-3.3-initiator-no-wait", first is not None,
                  f"the IUT sent {first.describe()} {(first.t - conn.opened) * 1000:.1f} ms after connecting, before any "
                  "CSM of the tester's" if first else
                  f"the IUT sent nothing in {ANSWER_BOUND:g} s after connecting: it waits for the acceptor's CSM",
                  tolerance=f"its first message within {ANSWER_BOUND:g} s of the connection, the tester silent")
    if first is None:
        coap_tcp.send(conn, encode_tcp(CSM), gap=0)
        try:
            first = wait_until(lambda: next(iter(coap_tcp.from_iut(conn)), None), ANSWER_BOUND, poll_max=0.05,
                               what="the IUT's first message")
        except TimedOut:
            verdict.check("RFC8323-3.3-csm-first", False, "the IUT sent nothing, even after the tester's CSM")
            return
    verdict.check("RFC8323-3.3-csm-first", first.msg.code == CSM, f"the IUT's first message was {first.describe()}",
                  measured={"first": first.describe()})


def pings_after(coap: CoapTcpCase, conn, after: float):
    return coap.wire().sent_by(coap.iut, PING, after=after, conn=conn.key)


def idle_gaps(coap: CoapTcpCase, conn, pings) -> list[float]:
    """Each Ping's time since the message before it on the connection, either way (the silence it ended)."""
    messages = sorted(m.t for m in coap.wire().messages if m.conn == conn.key)
    return [round(p.t - max(t for t in messages if t < p.t), 3) for p in pings]


@pytest.mark.roles("client")
@pytest.mark.requirement("COAP-TCP-keepalive-interval")
def test_keepalive_pings_come_at_the_interval(coap_tcp: CoapTcpCase, verdict):
    """The tester answers every Ping: each must end a silence of keepalive-interval seconds."""
    conn = coap_tcp.start_client({"keepalive-interval": INTERVAL})
    start = conn.opened
    slack = INTERVAL * SLACK_FRACTION + SLACK_FIXED
    try:
        wait_until(lambda: len(pings_after(coap_tcp, conn, start)) >= ROUNDS + 1, (ROUNDS + 2) * (INTERVAL + slack) + 3,
                   poll_max=0.1, what="the IUT's keepalive Pings")
    except TimedOut:
        pass
    pings = pings_after(coap_tcp, conn, start)
    tolerance = f"keepalive-interval = {INTERVAL} s of silence before each Ping, +/- {slack:.2f} s (10 % + 250 ms)"
    if not pings:
        verdict.check("COAP-TCP-keepalive-interval", False, f"no Ping in {time.time() - start:.1f} s on an idle connection",
                      tolerance=tolerance)
        return
    gaps = idle_gaps(coap_tcp, conn, pings)
    off = [g for g in gaps if abs(g - INTERVAL) > slack]
    verdict.check("COAP-TCP-keepalive-interval", not off and len(pings) > ROUNDS,
                  f"{len(pings)} Pings, after {', '.join(f'{g:.3f}' for g in gaps)} s of silence "
                  f"(keepalive-interval {INTERVAL} s)",
                  measured={"pings": len(pings), "silence_s": gaps}, tolerance=tolerance)


@pytest.mark.roles("client")
@pytest.mark.requirement("COAP-TCP-dead-peer", "COAP-TCP-ending")
@pytest.mark.parametrize("how", HOW, ids=HOW)
def test_a_dead_server_is_given_up(coap_tcp: CoapTcpCase, verdict, how):
    """After a few answered Pings the tester dies; the IUT must end the connection within three intervals."""
    conn = coap_tcp.start_client({"keepalive-interval": INTERVAL})
    slack = INTERVAL * SLACK_FRACTION + SLACK_FIXED
    try:
        wait_until(lambda: len(pings_after(coap_tcp, conn, conn.opened)) >= ROUNDS, ROUNDS * (INTERVAL + slack) + 5,
                   poll_max=0.1, what="the IUT's keepalive Pings")
    except TimedOut:
        verdict.inconclusive_rest(f"the IUT sent fewer than {ROUNDS} Pings on an idle connection, so it keeps no "
                                  "keepalive to judge (see COAP-TCP-keepalive-interval)")
    before = time.time()
    coap_tcp.world.tester_dies(how, mute=lambda: setattr(coap_tcp, "answering", False),
                               before_cut=lambda: coap_tcp.watch_socket(conn))
    # The tester's last message the IUT heard: every Pong sent before the fault (give a late one time to land).
    coap_tcp.watch(before + 0.2)
    last = max(m.t for m in coap_tcp.wire().sent_by(coap_tcp.world.tester_address, conn=conn.key))
    bound = GIVE_UP_INTERVALS * INTERVAL + slack
    end = coap_tcp.ended(conn, before, max(last + 3 * bound - time.time(), 1))  # watched past the bound: a late end is measured
    after = coap_tcp.from_iut(conn, last)
    tolerance = (f"the connection ended within {GIVE_UP_INTERVALS} x keepalive-interval = {GIVE_UP_INTERVALS * INTERVAL} s "
                 f"(+ {slack:.2f} s) of the tester's last message")
    if end is None:
        verdict.check("COAP-TCP-dead-peer", False,
                      f"{HOW[how]}: the IUT still had the connection open {time.time() - last:.1f} s after the tester's "
                      f"last message ({sum(m.msg.code == PING for m in after)} more Pings)",
                      measured={"pings_after": sum(m.msg.code == PING for m in after)}, tolerance=tolerance)
        verdict.observe("COAP-TCP-ending", "the IUT never ended the connection")
        return
    took = end.t - last
    verdict.check("COAP-TCP-dead-peer", took <= bound,
                  f"{HOW[how]}: the IUT ended the connection ({end_text(end)}) {took:.3f} s after the tester's last "
                  f"message, after {sum(m.msg.code == PING for m in after)} unanswered Ping(s)"
                  + (SOCKET_NOTE[how] if end.kind.startswith("socket") else ""),
                  measured={"given_up_s": round(took, 3), "pings_after": sum(m.msg.code == PING for m in after)},
                  tolerance=tolerance)
    signals = [m.describe() for m in after if m.msg.code in (ABORT, RELEASE)]
    verdict.observe("COAP-TCP-ending", f"{', '.join(signals) + ', then ' if signals else 'no 7.05 Abort or 7.04 Release; '}"
                                       f"{end_text(end)}",
                    measured={"signals": signals, "tcp": end.kind})


def end_text(end) -> str:
    return end.kind if end.kind.startswith("socket") else f"TCP {end.kind.upper()}"
