"""The ssh wire validator (fixtures/protocols/ssh.py) on crafted TCP streams: the IUT's identification line and
its packets in clear, whatever the case was about."""
from __future__ import annotations

import pytest

from fixtures.protocols import ssh
from tests.unit.test_coaptcp import IUT, TESTER, Conn


def packet(kind: int, payload: bytes, padding: int | None = None, block: int = 8) -> bytes:
    """A plain binary packet (RFC 4253 §6) with ``padding`` octets of padding (default: the least that aligns)."""
    body = bytes([kind]) + payload
    if padding is None:
        padding = block - (5 + len(body)) % block
        padding += block if padding < 4 else 0
    length = 1 + len(body) + padding
    return length.to_bytes(4, "big") + bytes([padding]) + body + bytes(padding)


def judged(iut_sends: bytes):
    c = Conn()
    c.seg(0.01, TESTER, payload=b"SSH-2.0-aliveness_tester\r\n")
    c.seg(0.02, IUT, payload=iut_sends)
    found = ssh.validate(c.segments, IUT, TESTER, "server", {})
    return [v.requirement for v in found.violations], found


def test_a_conformant_start_passes_and_is_counted():
    found, validation = judged(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n" + packet(20, bytes(100)) + packet(21, b""))
    assert found == []
    assert validation.checked == {ssh.IDENTIFICATION: 1, ssh.PADDING: 2}


@pytest.mark.parametrize("line", [
    b"SSH-2.0-nocr\n", b"SSH-2.0-" + b"x" * 250 + b"\r\n", b"SSH-2.0-with\x00nul\r\n", b"SSH-1.5-old\r\n",
    b"SSH-2.0-has-minus\r\n", b"SSH-2.0-\r\n",
])
def test_a_broken_identification_line_is_a_violation(line):
    assert judged(line)[0] == [ssh.IDENTIFICATION]


def test_lines_before_the_identification_and_the_compatible_version_are_accepted():
    assert judged(b"a banner line\r\nSSH-1.99-dual_stack comment text\r\n")[0] == []


@pytest.mark.parametrize("bad", [packet(2, b"\x00\x00\x00\x03abc", padding=3), packet(20, bytes(10), padding=5)],
                         ids=["three-octets-of-padding", "not-a-multiple-of-8"])
def test_a_plain_packet_short_of_padding_or_alignment_is_a_violation(bad):
    assert judged(b"SSH-2.0-x\r\n" + bad)[0] == [ssh.PADDING]
