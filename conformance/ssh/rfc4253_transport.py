"""RFC 4253 §4.2 and §6: what the SSH transport shows in clear is well formed.

The tester logs in (or, for a client IUT, takes its login) and ends the session. The ssh wire validator
(fixtures/protocols/ssh.py) then judges the IUT's identification line and every packet it sent before its
NEWKEYS (the padding and the block alignment of the "none" cipher), and it judges the same in every other SSH
case: a rule broken anywhere is failed where it was broken.
"""
from __future__ import annotations

import pytest

from conformance.ssh.conftest import SshCase

pytestmark = pytest.mark.protocol("ssh")


@pytest.mark.requirement("RFC4253-4.2-identification", "RFC4253-6-padding")
@pytest.mark.roles("server", "client")
def test_the_identification_line_and_the_plain_packets_are_well_formed(ssh: SshCase, verdict):
    """One login, then the session closed: the validator reads the identification line and the key exchange."""
    ssh.start()
    ssh.session()
    ssh.close_all()
