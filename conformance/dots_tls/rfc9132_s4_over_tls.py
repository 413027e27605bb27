"""RFC 9132 §4.5 and §4.7 over TLS ("coaps+tcp"): the DOTS configuration and heartbeat cases, run inside TLS 1.2.

The configuration, the heartbeat interval and its answers, and peer-hb-status mean the same over TLS; the cases
are the DTLS ones (conformance/dots/), collected here for IUTs with a ``[dots-tls]`` section. Only
heartbeat-interval is negotiated (RFC 9132 §4.5); a heartbeat has no message type over TCP, so the wire validator
judges its method, Content-Format, body and path. The hostile heartbeats are the DTLS ones plus the 64 KiB body
that cannot travel in a DTLS record: it goes out as four TLS records of one CoAP message. A server may refuse it
or abort the connection (RFC 8323 §5.6: it is over any Max-Message-Size a CoAP-over-TCP stack announces); either
way the agent must keep its signal channel: a valid heartbeat is then answered 2.04, on a new connection if the
first one was ended.
"""
from __future__ import annotations

import cbor2
import pytest

from conformance.dots import rfc9132_s4_5_config as s45
from conformance.dots import rfc9132_s4_7_heartbeat as s47
from conformance.dots import rfc9132_s6_bad_input as s6
from conformance.dots_tls.conftest import DotsTlsCase
from fixtures.coapwire import ABORT

pytestmark = pytest.mark.protocol("dots-tls")

for _case in (s45.test_the_configuration_is_announced_and_installed,
              s45.test_an_unacceptable_configuration_is_refused_and_changes_nothing,
              s47.test_heartbeats_come_at_the_negotiated_interval_and_are_answered,
              s47.test_peer_hb_status_follows_the_tester_s_heartbeats):
    globals()[_case.__name__] = _case

HUGE = 64 * 1024
BAD = dict(s6.BAD)
BAD["huge"] = ("a 64 KiB heartbeat body (one CoAP message in four TLS records)",
               cbor2.dumps({49: {51: True}, 9996: bytes(HUGE)}))


def survived(dots: DotsTlsCase):
    """After the input: a valid heartbeat on the same connection, or on a new one if the IUT ended the first."""
    def on_a_new_connection(sent: float):
        conn = dots.current
        end = dots.wire().end_by(dots.iut, after=sent - 0.005, conn=conn.key)
        aborts = [m for m in dots.wire().sent_by(dots.iut, after=sent - 0.005, conn=conn.key) if m.msg.code == ABORT]
        if end is None and not aborts and dots.tls[conn.id].ended is None:
            return s6.valid_heartbeat(dots), ""
        how = "an Abort" if aborts else f"a {end.kind.upper()}" if end else "closing it"
        dots.open()
        return s6.valid_heartbeat(dots), f" (the IUT ended the first connection with {how}: on a new one)"
    return on_a_new_connection


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-6-unknown-key-refused", "DOTS-survives-bad-input")
@pytest.mark.parametrize("kind", BAD, ids=BAD)
def test_hostile_heartbeats_are_refused_and_the_channel_survives(dots: DotsTlsCase, verdict, kind):
    s6.hostile(dots, verdict, kind, *BAD[kind], survived=survived(dots))
