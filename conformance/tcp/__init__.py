"""TCP keep-alive conformance: RFC 9293 §3.8.4, RFC 1122 §4.2.3.6, RFC 9643 keepalive knobs."""
