"""Freezing and thawing a pod on a loaded engine: runc may give up on a freeze and thaw again."""
from __future__ import annotations

import docker.errors
import pytest

from fixtures.errors import HarnessError
from fixtures.pods import Container


class FakeEngineContainer:
    def __init__(self, refusals: int, message: str = "OCI runtime pause failed: unable to freeze: unknown"):
        self.refusals = refusals
        self.message = message
        self.status = "running"
        self.pauses = 0
        self.unpauses = 0

    def pause(self):
        self.pauses += 1
        if self.refusals:
            self.refusals -= 1
            raise docker.errors.APIError(f"500 Server Error: Cannot pause container: {self.message}")
        self.status = "paused"

    def unpause(self):
        if self.status != "paused":
            raise docker.errors.APIError("500 Server Error: Container is not paused")
        self.unpauses += 1
        self.status = "running"

    def reload(self):
        pass


def test_a_freeze_runc_gave_up_on_is_asked_for_again():
    fake = FakeEngineContainer(refusals=2)
    Container(fake, "tester").pause()
    assert (fake.pauses, fake.status) == (3, "paused")


def test_a_freeze_that_keeps_failing_raises_after_a_bounded_number_of_tries():
    fake = FakeEngineContainer(refusals=99)
    with pytest.raises(docker.errors.APIError, match="unable to freeze"):
        Container(fake, "tester").pause()
    assert fake.pauses == 5


def test_other_pause_errors_are_not_retried():
    fake = FakeEngineContainer(refusals=1, message="No such container")
    with pytest.raises(docker.errors.APIError, match="No such container"):
        Container(fake, "tester").pause()
    assert fake.pauses == 1


def test_thaw_is_a_no_op_when_nothing_is_frozen():
    fake = FakeEngineContainer(refusals=0)
    pod = Container(fake, "tester")
    pod.unpause()  # never frozen: no error
    pod.pause()
    pod.unpause()
    pod.unpause()  # second thaw: no error
    assert (fake.unpauses, fake.status) == (1, "running")


class _Answers:
    """A container whose exec_run gives these (exit code, output) pairs in turn."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    def exec_run(self, argv, demux=False):
        self.calls += 1
        return self.answers.pop(0)


def test_a_query_that_comes_back_empty_is_asked_again():

    fake = _Answers((0, b""), (0, None), (0, b"7200\n"))
    assert Container(fake, "IUT x").query(["cat", "f"], "the default idle time") == (0, "7200")
    assert fake.calls == 3


def test_a_query_that_never_answers_is_an_error_naming_the_call():

    fake = _Answers((0, b""), (0, b""), (0, b""))
    with pytest.raises(HarnessError, match=r"`cat f` \(the default idle time\) in IUT x 3 times"):
        Container(fake, "IUT x").query(["cat", "f"], "the default idle time")


def test_a_failed_query_is_returned_at_once():

    fake = _Answers((1, b""))
    assert Container(fake, "IUT x").query(["false"], "a query") == (1, "")
