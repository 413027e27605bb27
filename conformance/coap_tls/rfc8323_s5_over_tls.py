"""RFC 8323 §3.3 and §5 over TLS ("coaps+tcp"): the CoAP-over-TCP server cases, run inside TLS 1.2 sessions.

The CSM first, Ping and Pong, signalling options, the missing CSM and bad input mean the same over TLS; the
cases are the TCP ones (conformance/coap_tcp/), collected here for IUTs with a ``[coap-tls]`` section. Their
wire view is the capture rebuilt in clear from the tester's session keys, so answer times are still the
capture's. The bad input goes inside records (a length field that never completes ends a record, as a peer
behind TLS would send it), so it tests the CoAP layer, not the TLS one.
"""
from __future__ import annotations

import pytest

from conformance.coap_tcp import rfc8323_s5_signalling as s5

pytestmark = pytest.mark.protocol("coap-tls")

test_the_connection_opens_with_a_csm = s5.test_the_connection_opens_with_a_csm
test_a_ping_gets_a_pong_with_its_token = s5.test_a_ping_gets_a_pong_with_its_token
test_an_empty_message_is_ignored = s5.test_an_empty_message_is_ignored
test_elective_options_in_a_ping_are_ignored = s5.test_elective_options_in_a_ping_are_ignored
test_an_unknown_critical_option_aborts_the_connection = s5.test_an_unknown_critical_option_aborts_the_connection
test_a_connection_without_a_csm_is_aborted = s5.test_a_connection_without_a_csm_is_aborted
test_bad_input_leaves_the_server_serving = s5.test_bad_input_leaves_the_server_serving
