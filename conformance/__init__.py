"""The conformance cases, one package per protocol, one module per spec section."""
