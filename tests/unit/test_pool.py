"""The worker's tester pod is lent again only as a new one would be (fixtures/pool.py)."""
from __future__ import annotations

from fixtures.pool import FIRST_IUT_INDEX, WorkerPool


class FakeContainer:
    def __init__(self, status: str = "running", answer: str = "", sidecar=None) -> None:
        self._status = status
        self.answer = answer
        self.sidecar = sidecar
        self.disturbed = None
        self.removed = False
        self.commands: list[str] = []

    def status(self) -> str:
        return self._status

    def exec(self, cmd, check=True) -> str:
        self.commands.append(cmd)
        return self.answer

    def remove(self) -> None:
        self.removed = True


def pod(answer: str = "", status: str = "running") -> FakeContainer:
    return FakeContainer(status, sidecar=FakeContainer(answer=answer))


def test_a_clean_pod_is_kept_after_its_rules_and_conntrack_went():
    box = pod()
    assert WorkerPool._unfit(box) is None
    (reset,) = box.sidecar.commands
    assert "nft delete table inet aliveness" in reset and "conntrack -F" in reset and "ss -H" in reset


def test_a_disturbed_pod_is_not_lent_again():
    box = pod()
    box.disturbed = "crashed"
    assert WorkerPool._unfit(box) == "a case crashed it"
    assert box.sidecar.commands == []  # not even reset


def test_a_pod_with_a_socket_left_is_not_lent_again():
    box = pod(answer="tcp LISTEN 0 5 0.0.0.0:7000 0.0.0.0:*\n")
    assert "sockets were left open" in WorkerPool._unfit(box)


def test_a_stopped_pod_is_not_lent_again():
    assert WorkerPool._unfit(pod(status="exited")) == "it was not running"


def test_give_back_removes_an_unfit_pod_and_the_next_case_gets_a_new_one():
    pool = WorkerPool(run=None)
    box = pod(answer="udp UNCONN 0 0 0.0.0.0:5683 0.0.0.0:*")
    pool._tester = pool._lent = box
    pool.give_back(box)
    assert box.removed and box.sidecar.removed and pool._tester is None
    assert pool.figures.tester_replaced and pool._lent is None


def test_iut_addresses_go_round_the_subnet_and_never_take_the_testers():
    class Net:
        subnet6 = None

        class subnet:  # noqa: N801 - a stand-in for an ipaddress network
            num_addresses = 16

    pool = WorkerPool(run=None)
    pool.net = Net()
    indices = [pool.iut_index() for _ in range(30)]
    assert min(indices) == FIRST_IUT_INDEX and max(indices) == 14 and 3 not in indices
    assert indices[:11] == list(range(4, 15)) and indices[11] == FIRST_IUT_INDEX
