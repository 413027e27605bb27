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


def pool_on_subnet(addresses: int) -> WorkerPool:
    """A pool whose network is an IPv4 subnet of ``addresses`` addresses (no engine behind it)."""
    net = type("Net", (), {"subnet6": None, "subnet": type("Subnet", (), {"num_addresses": addresses})})
    pool = WorkerPool(run=None)
    pool.net = net
    return pool


def pod(answer: str = "", status: str = "running") -> FakeContainer:
    return FakeContainer(status, sidecar=FakeContainer(answer=answer))


def test_a_clean_pod_is_kept_after_its_rules_and_conntrack_went():
    box = pod()
    assert WorkerPool._unfit(box) is None
    (reset,) = box.sidecar.commands
    assert "nft delete table inet aliveness" in reset and "conntrack -F" in reset and "ss -K" in reset


def test_a_disturbed_pod_is_not_lent_again():
    box = pod()
    box.disturbed = "crashed"
    assert WorkerPool._unfit(box) == "a case crashed it"
    assert box.sidecar.commands == []  # not even reset


def test_a_pod_with_a_socket_left_is_not_lent_again():
    box = pod(answer="tcp LISTEN 0 5 0.0.0.0:7000 0.0.0.0:*\n")
    assert "sockets were left open" in WorkerPool._unfit(box)


def test_a_thawed_pod_is_judged_by_what_is_left_in_it():
    box = pod()
    box.disturbed = "froze"
    assert WorkerPool._unfit(box) is None
    still = pod(status="paused")
    still.disturbed = "froze"
    assert WorkerPool._unfit(still) == "it was not running (a case froze it)"


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
    pool = pool_on_subnet(16)
    indices = [pool.iut_index() for _ in range(30)]
    assert min(indices) == FIRST_IUT_INDEX and max(indices) == 14 and 3 not in indices
    assert indices[:11] == list(range(4, 15)) and indices[11] == FIRST_IUT_INDEX


def _iut_pool():
    pool = pool_on_subnet(256)
    made = []

    def start(index):
        made.append(index)
        return FakeContainer()

    return pool, made, start


def test_the_iut_sidecar_is_lent_again_for_the_same_iut_and_sysctls():
    pool, made, start = _iut_pool()
    key = ("socat", (("net.ipv4.tcp_keepalive_time", "2"),))
    first, index = pool.lend_iut_sidecar(key, start)
    pool.give_back_iut_sidecar(first)
    (reset,) = first.commands
    assert "kill -9" in reset and "ss -K" in reset
    again, same_index = pool.lend_iut_sidecar(key, start)
    assert again is first and same_index == index and made == [index]


def test_another_iut_or_other_sysctls_get_a_new_sidecar_and_the_kept_one_goes():
    pool, made, start = _iut_pool()
    first, index = pool.lend_iut_sidecar(("socat", ()), start)
    pool.give_back_iut_sidecar(first)
    other, other_index = pool.lend_iut_sidecar(("socat", (("net.ipv4.tcp_keepalive_time", "2"),)), start)
    assert other is not first and first.removed and other_index != index
    assert pool.figures.iut_replaced == ["the next case wanted another IUT or other sysctls"]


def test_a_sidecar_left_with_a_socket_or_a_process_is_not_kept():
    pool, made, start = _iut_pool()
    first, _ = pool.lend_iut_sidecar(("socat", ()), start)
    first.answer = "TIME-WAIT 0 0 10.213.7.4:7000 10.213.7.3:41000"
    pool.give_back_iut_sidecar(first)
    assert first.removed
    second, _ = pool.lend_iut_sidecar(("socat", ()), start)
    assert second is not first and len(made) == 2
