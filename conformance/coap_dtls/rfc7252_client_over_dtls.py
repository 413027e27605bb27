"""RFC 7252 §4.2/§4.3 as a keepalive over DTLS ("coaps"), with the IUT as client: the CoAP ping it sends to its
server inside a DTLS 1.2 association, the tester playing the PSK server.

The pings at the manifest's keepalive-interval, answered with Resets, then a dead server (silent, frozen,
blackholed, crashed) and what the IUT does about it: the cases are the UDP ones
(conformance/coap/rfc7252_client_keepalive.py), collected here for IUTs with a ``[coap-dtls.client]`` section.
The tester answers from the records it decrypts, and the capture is rebuilt in clear, so the silences are still
timed on the capture. The retransmission case stays UDP-only: a client whose server is blackholed from the
start never gets past its ClientHello, so its schedule would be DTLS's handshake timer, not CoAP's.
"""
from __future__ import annotations

import pytest

from conformance.coap import rfc7252_client_keepalive as keepalive

pytestmark = pytest.mark.protocol("coap-dtls")

test_keepalive_pings_come_at_the_interval = keepalive.test_keepalive_pings_come_at_the_interval
test_what_a_client_does_when_its_pings_go_unanswered = keepalive.test_what_a_client_does_when_its_pings_go_unanswered
