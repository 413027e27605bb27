"""The ``tls`` fixture over DTLS 1.2: the TLS cases' fixture (conformance/tls/conftest.py), its world opened
for the ``dtls`` manifest section, so its sessions are UDP associations with the DTLS tester.

The modules here run the TLS cases that mean the same over DTLS (they import them; the protocol marker of
the module they are collected in is ``dtls``) and add the rules only DTLS has: retransmission on the DTLS
timer, giving up, older epochs.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import TlsCase
from fixtures.sessions import CaseWorld


@pytest.fixture
def tls(iut, run_state, verdict):
    with CaseWorld.opened(run_state, verdict, iut, "dtls") as world:
        yield TlsCase(world)
