"""RFC 7252 §4.2 and §4.3 over DTLS ("coaps"): the CoAP-over-UDP server cases, run inside a DTLS 1.2 association.

The CoAP ping, the messages nobody may answer, malformed Confirmable messages and the type rules mean the same
inside DTLS (RFC 7252 §9.1: the message layer is unchanged); the cases are the UDP ones (conformance/coap/),
collected here for IUTs with a ``[coap-dtls]`` section. Their wire view is the capture rebuilt in clear from the
tester's keys, so answer times are still the capture's. The bad-input cases stay UDP-only: a 64 KiB message does
not fit a record, and a flood inside DTLS tests the DTLS layer's rate more than CoAP's.
"""
from __future__ import annotations

import pytest

from conformance.coap import rfc7252_s4_messages as messages
from conformance.coap import rfc7252_s4_ping as ping

pytestmark = pytest.mark.protocol("coap-dtls")

test_an_empty_confirmable_gets_a_matching_reset = ping.test_an_empty_confirmable_gets_a_matching_reset
test_an_acknowledgement_or_reset_is_never_answered = ping.test_an_acknowledgement_or_reset_is_never_answered
test_an_empty_non_confirmable_is_not_acknowledged = ping.test_an_empty_non_confirmable_is_not_acknowledged
test_a_malformed_confirmable_is_rejected = ping.test_a_malformed_confirmable_is_rejected
test_every_message_the_iut_sends_fits_its_type = messages.test_every_message_the_iut_sends_fits_its_type
