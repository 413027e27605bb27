"""UDP echo conformance: RFC 862, the UDP based echo service."""
