"""WebSocket conformance: RFC 6455 §5.4, §5.5, §5.5.2, §5.5.3 ping/pong rules, and keepalive timing."""
