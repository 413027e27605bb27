"""A DOTS answer is judged missing only once the tester has read everything the IUT sent
(conformance/dots/rfc9132_s6_bad_input.py)."""
from __future__ import annotations

import pytest

from conformance.dots import rfc9132_s6_bad_input as s6


class Seen:
    def __init__(self, token: bytes) -> None:
        self.t = 10.0
        self.msg = type("Msg", (), {"token": token, "cls": 2})()


class FakeDots:
    def __init__(self, unread: list[int], answers: list[Seen]) -> None:
        self.unread, self.answers = unread, answers

    def from_iut(self, after: float):
        return self.answers

    def backlog(self) -> int:
        return self.unread.pop(0) if len(self.unread) > 1 else self.unread[0]


@pytest.fixture(autouse=True)
def short_bounds(monkeypatch):
    monkeypatch.setattr(s6, "ANSWER_BOUND", 0.1)
    monkeypatch.setattr(s6, "SETTLE_BOUND", 0.3)


def test_a_tester_still_behind_is_not_a_missing_answer():
    with pytest.raises(s6.TesterBehind, match="had not read 7 record"):
        s6.answer_to(FakeDots([7], []), b"\x01", 0.0)


def test_with_nothing_left_unread_a_missing_answer_is_missing():
    assert s6.answer_to(FakeDots([0], []), b"\x01", 0.0) is None


def test_an_answer_the_tester_reads_late_is_found():
    late = FakeDots([3, 2, 1, 0], [])
    original = late.backlog

    def reading() -> int:
        left = original()
        if left == 0:
            late.answers = [Seen(b"\x01")]
        return left

    late.backlog = reading
    assert s6.answer_to(late, b"\x01", 0.0).msg.token == b"\x01"
