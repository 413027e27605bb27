"""RFC 8323 §3.3, §3.4 and §5.4 over TLS with the IUT as client: the CoAP-over-TCP client cases, the tester playing
a TLS 1.2 server (the run's certificate, ALPN coap).

The CSM sent unprompted, keepalive Pings at the manifest's keepalive-interval, a dead server (silent, frozen,
blackholed, crashed) given up within three intervals and how the connection ends: the cases are the TCP ones
(conformance/coap_tcp/rfc8323_client_keepalive.py), collected here for IUTs with a ``[coap-tls.client]``
section; the tester answers Pings from the records it decrypts, and the capture is rebuilt in clear.
"""
from __future__ import annotations

import pytest

from conformance.coap_tcp import rfc8323_client_keepalive as client

pytestmark = pytest.mark.protocol("coap-tls")

test_the_client_opens_with_a_csm_without_waiting = client.test_the_client_opens_with_a_csm_without_waiting
test_keepalive_pings_come_at_the_interval = client.test_keepalive_pings_come_at_the_interval
test_a_dead_server_is_given_up = client.test_a_dead_server_is_given_up
