"""RFC 6520 §2-§4 over DTLS 1.2: the TLS cases, run over a UDP association.

Negotiation and the modes (§2), the IUT's own Requests (§3) and the messages (§4) mean the same over DTLS;
the cases are the TLS ones (conformance/tls/), collected here for IUTs with a ``[dtls]`` section. The DTLS
tester takes over GnuTLS's record layer after the handshake, so it sends the same malformed messages
(an over-long payload_length, short padding, a Response nobody asked for) and reads every Response verbatim.

RFC6520-4-total-length is judged over TLS only: over DTLS a HeartbeatMessage must fit the path MTU as well
(RFC 6520 §5.1), so no Response near 2^14 octets comes back and the case would show nothing.
"""
from __future__ import annotations

import pytest

from conformance.tls import rfc6520_s2_negotiation as s2
from conformance.tls import rfc6520_s3_requests as s3
from conformance.tls import rfc6520_s4_messages as s4

pytestmark = pytest.mark.protocol("dtls")

test_the_extension_only_where_negotiated = s2.test_the_extension_only_where_negotiated
test_the_heartbeat_modes = s2.test_the_heartbeat_modes
test_no_request_to_a_peer_not_allowed = s3.test_no_request_to_a_peer_not_allowed
test_the_iut_s_own_requests = s3.test_the_iut_s_own_requests
test_requests_answered_with_an_exact_copy = s4.test_requests_answered_with_an_exact_copy
test_malformed_and_unasked_messages_are_discarded_silently = s4.test_malformed_and_unasked_messages_are_discarded_silently
