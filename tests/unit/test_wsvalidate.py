"""The WebSocket wire validator on crafted captures, and how its findings become verdicts."""
from __future__ import annotations

import pytest

from fixtures.protocols import Validation, Violation
from fixtures.testers import wsframes
from fixtures.verdicts import Verdicts
from fixtures.wsvalidate import (
    CLIENT_MASKS,
    CONTROL_FRAGMENTED,
    CONTROL_LENGTH,
    MINIMAL_LENGTH,
    RESERVED_CLOSE_CODES,
    RESERVED_OPCODE,
    RSV_ZERO,
    RULES,
    SERVER_NO_MASK,
    validate,
)
from reports.model import Outcome
from tests.unit.test_wswire import IUT, TESTER, Conn


def server_sends(*frames: bytes):
    c = Conn()
    c.handshake()
    for i, frame in enumerate(frames):
        c.seg(1.0 + i, IUT, payload=frame)
    return validate(c.segments, IUT, TESTER, "server")


def broken(found) -> set[str]:
    return {v.requirement for v in found.violations}


def test_well_formed_server_frames_break_nothing_and_are_counted():
    found = server_sends(wsframes.encode(wsframes.TEXT, b"x" * 300), wsframes.encode(wsframes.PING, b"p"),
                         wsframes.encode(wsframes.CLOSE, wsframes.close_payload(1000)))
    assert not found.violations
    assert found.checked[SERVER_NO_MASK] == 3 and found.checked[CONTROL_LENGTH] == 2 and found.checked[RESERVED_CLOSE_CODES] == 1
    assert CLIENT_MASKS in found.not_applicable and set(found.rules) == set(RULES)


@pytest.mark.parametrize(("frame", "rule"), [
    (wsframes.encode(wsframes.TEXT, b"hi", mask=b"abcd"), SERVER_NO_MASK),
    (wsframes.encode(wsframes.PING, b"p", rsv=4), RSV_ZERO),
    (wsframes.encode(0x3, b"?"), RESERVED_OPCODE),
    (wsframes.encode(wsframes.TEXT, b"short", length_bits=64), MINIMAL_LENGTH),
    (wsframes.encode(wsframes.PONG, b"x" * 126), CONTROL_LENGTH),
    (wsframes.encode(wsframes.PING, b"p", fin=False), CONTROL_FRAGMENTED),
    (wsframes.encode(wsframes.CLOSE, wsframes.close_payload(1005)), RESERVED_CLOSE_CODES),
], ids=["masked", "rsv", "opcode", "long-form", "long-pong", "fragmented-ping", "close-1005"])
def test_each_rule_catches_its_frame(frame, rule):
    assert broken(server_sends(frame)) == {rule}


def test_a_client_must_mask():
    c = Conn()
    c.handshake()
    c.seg(1.0, IUT, payload=wsframes.encode(wsframes.TEXT, b"unmasked"))
    c.seg(1.1, IUT, payload=wsframes.encode(wsframes.TEXT, b"masked", mask=b"abcd"))
    found = validate(c.segments, IUT, TESTER, "client")
    assert broken(found) == {CLIENT_MASKS} and found.checked[CLIENT_MASKS] == 2


def test_after_a_frame_that_is_not_a_frame_the_rest_of_that_stream_is_not_judged():
    found = server_sends(b"\x7f\x05" + bytes(5), wsframes.encode(wsframes.TEXT, b"x", mask=b"abcd"))
    assert broken(found) == {RSV_ZERO, RESERVED_OPCODE, CONTROL_FRAGMENTED}


def test_the_testers_own_frames_are_never_judged():
    c = Conn()
    c.handshake()
    c.seg(1.0, TESTER, payload=wsframes.encode(wsframes.PING, b"x" * 126, mask=b"abcd"))
    assert not validate(c.segments, IUT, TESTER, "server").violations


def recorder(*declared: str) -> Verdicts:
    return Verdicts("case::id", "peer", "server", list(declared))


def test_a_violation_is_a_verdict_even_on_a_rule_the_case_does_not_declare():
    v = recorder("RFC6455-5.5.2-pong-reply")
    v.check("RFC6455-5.5.2-pong-reply", True, "answered")
    v.judge_wire(Validation(rules=RULES, checked={RSV_ZERO: 3}, violations=[Violation(RSV_ZERO, 5.0, "a ping frame")]))
    assert [(i.requirement, i.outcome) for i in v.items] == [("RFC6455-5.5.2-pong-reply", Outcome.PASS), (RSV_ZERO, Outcome.FAIL)]
    assert v.requirements == ["RFC6455-5.5.2-pong-reply", RSV_ZERO]
    assert "a ping frame" in v.items[1].message


def test_declared_rules_pass_with_their_count_or_are_not_applicable():
    v = recorder(RSV_ZERO, CLIENT_MASKS, RESERVED_CLOSE_CODES)
    v.judge_wire(Validation(rules=RULES, checked={RSV_ZERO: 4}, not_applicable={CLIENT_MASKS: "a rule for clients"}))
    outcomes = {i.requirement: i.outcome for i in v.items}
    assert outcomes == {RSV_ZERO: Outcome.PASS, CLIENT_MASKS: Outcome.NOT_APPLICABLE, RESERVED_CLOSE_CODES: Outcome.NOT_APPLICABLE}


def test_once_the_tester_stopped_reading_later_verdicts_are_inconclusive_and_say_why():
    v = recorder("RFC6455-5.5.2-pong-reply", "WS-KEEPALIVE-live-peer")
    v.check("RFC6455-5.5.2-pong-reply", True, "answered before")
    v.stream_stopped("ProtocolViolation: reserved bits 0b100 set")
    v.check("WS-KEEPALIVE-live-peer", False, "ended a connection whose peer answered every Ping")
    v.inconclusive("RFC6455-5.5.2-pong-reply", "the connection ended after one Ping")
    v.judge_wire(Validation(rules=RULES, violations=[Violation(RSV_ZERO, 5.0, "a ping frame")]))
    v.settle()
    outcomes = [(i.requirement, i.outcome) for i in v.items]
    assert outcomes == [("RFC6455-5.5.2-pong-reply", Outcome.PASS), ("WS-KEEPALIVE-live-peer", Outcome.INCONCLUSIVE),
                        ("RFC6455-5.5.2-pong-reply", Outcome.INCONCLUSIVE), (RSV_ZERO, Outcome.FAIL)]
    assert "reserved bits" in v.items[1].message and "reserved bits" in v.items[2].message


def test_the_framing_case_declares_every_rule_the_validator_judges():
    from tests.unit.test_catalogue import case_requirements

    declared = case_requirements()["rfc6455_s5_1_framing.py::test_every_frame_the_iut_sends_is_well_formed"]
    assert declared == set(RULES)


def test_a_case_that_stopped_on_an_error_keeps_its_open_rules_for_the_error():
    v = recorder(RSV_ZERO)
    v.judge_wire(Validation(rules=RULES, checked={RSV_ZERO: 4}), completed=False)
    assert v.items == []
    assert [i.outcome for i in v.finish("harness error: the IUT was not ready")] == [Outcome.ERROR]
