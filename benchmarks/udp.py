"""Loss accuracy on the UDP echo path (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.udp            # 2000 datagrams
    python -m benchmarks.udp --quick    # 1000 datagrams

One figure: the socat UDP echo server (``socat-udp-echo``) behind ``Faults.loss(30)``, the nftables rule
that drops 30 % of the packets each way at random in the tester pod's sidecar. The tester's agent sends N
numbered datagrams, in batches (each waits until the agent has handed the last one to the kernel, so at
most one batch is in flight), and the drop rate is measured in each direction from the capture in the
IUT's namespace:

- to the IUT: what the tester sent (every send command: the agent's ``sent`` events, and the sends that failed
  with EPERM, which is how a datagram dropped by the rule on the tester's own output hook shows at its
  socket) against what reached the IUT (capture);
- from the IUT: what the IUT sent (capture) against what the tester's agent received.

Each rate is printed with its 95 % binomial (Wilson score) interval, against the configured 30 %; the
round trip (echoes the tester got back, of all it sent) is compared with 0.7 x 0.7 = 49 %. The UDP
receive-buffer drops that each namespace's kernel counted (/proc/net/snmp) are printed too, since a drop
there would be counted as path loss. Everything created carries a run id of its own (``bench-udp-...``)
and is removed before the script exits, on Ctrl-C as well.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    IUT_INDEX,
    TESTER_INDEX,
    banner,
    clean_up,
    engine_load,
    header,
    new_run_id,
    peer_manifest,
    say,
    say_images_and_load,
    say_shared_machine,
    summary_row,
)
from fixtures.capture import Capture
from fixtures.datagrams import datagrams, flow
from fixtures.faults import Faults
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import RunningIut
from fixtures.pods import Container, start_tester
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import TimedOut, wait_until

PEER = "socat-udp-echo"
LOSS_PERCENT = 30
BATCH = 100  # datagrams handed to the agent before waiting for it to have sent them
SEND_BOUND_S = 30  # per batch
SETTLE_S = 1.0  # the capture and the tester saw nothing new for this long: everything has arrived
SETTLE_BOUND_S = 30
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n (as fractions)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def udp_counters(container: Container) -> dict[str, int]:
    """The Udp line of /proc/net/snmp in ``container``'s network namespace, by field name."""
    lines = [ln.split() for ln in container.exec(["cat", "/proc/net/snmp"]).splitlines() if ln.startswith("Udp:")]
    return {name: int(value) for name, value in zip(lines[0][1:], lines[1][1:], strict=True)} if len(lines) >= 2 else {}


@dataclass
class Rate:
    """k of n dropped."""

    dropped: int
    n: int

    @property
    def fraction(self) -> float:
        return self.dropped / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.dropped, self.n)

    def holds(self, configured: float) -> bool | None:
        low, high = self.interval
        return None if not self.n else low <= configured <= high

    def text(self) -> str:
        low, high = self.interval
        return (f"n={self.n:5d}, dropped {self.dropped:5d} = {self.fraction * 100:5.1f} %  "
                f"95 % interval [{low * 100:4.1f}, {high * 100:4.1f}] %")


@dataclass
class LossFigure:
    sent: int
    reached_iut: int
    iut_sent: int
    heard: int
    send_s: float
    rcvbuf_errors: dict[str, int]
    refused: int  # sends the agent saw fail (the to-iut rule drops on the tester's own output hook)
    refused_as: list[str]

    @property
    def to_iut(self) -> Rate:
        return Rate(self.sent - self.reached_iut, self.sent)

    @property
    def from_iut(self) -> Rate:
        return Rate(self.iut_sent - self.heard, self.iut_sent)


def figure_loss(count: int) -> LossFigure | None:
    header(f"Figure 1 - drop rate under loss {LOSS_PERCENT} %: {count} datagrams through the UDP echo, from the capture")
    manifest = peer_manifest(PEER)
    say(f"  {PEER} as UDP echo server; Faults.loss({LOSS_PERCENT}) in the tester's sidecar (nftables numgen random, each way)")
    say_images_and_load(manifest)
    run = RunContext(run_id=new_run_id("udp-loss"))
    pcap_dir = Path(tempfile.mkdtemp(prefix="aliveness-bench-pcap-"))
    tester = capture = None
    try:
        net = CaseNetwork(run, "bench-udp-loss")
        iut = RunningIut(run, net, manifest, "udp-echo", "server", None, index=IUT_INDEX)
        capture = Capture(iut.sidecar, pcap_dir / "loss.pcap", whole_payloads=True)
        pod = start_tester(run, net, TESTER_INDEX)
        tester = TcpTester(pod)
        iut.start()
        iut.wait_ready()
        conn = tester.udp_open(host=net.any_address)
        local = (net.address(TESTER_INDEX), int(tester.opened(conn).data["local"][1]))
        server = (iut.address, iut.port)
        before = {"tester": udp_counters(pod.sidecar), "IUT": udp_counters(iut.sidecar)}
        Faults(pod, iut.address, iut.sidecar).loss(LOSS_PERCENT)
        say(f"  as the datagrams go: {engine_load()}")

        def outcomes() -> list:
            """The agent's word on each send: ``sent``, or ``udp-error`` (a datagram that the rule on the tester's
            output dropped fails its sendto() with EPERM)."""
            return [e for e in list(tester.events) if e.conn == conn
                    and (e.ev == "sent" or (e.ev == "udp-error" and e.data.get("during") == "send"))]

        started = time.monotonic()
        for first in range(0, count, BATCH):
            last = min(first + BATCH, count)
            for i in range(first, last):
                tester.send_to(conn, b"seq-%06d" % i, *server)
            wait_until(lambda last=last: len(outcomes()) >= last, SEND_BOUND_S, poll_max=0.02)
        send_s = time.monotonic() - started

        quiet = {"seen": None, "since": time.monotonic()}

        def settled() -> bool:
            seen = (len(capture.segments()), len(tester.datagrams(conn)))
            if seen != quiet["seen"]:
                quiet.update(seen=seen, since=time.monotonic())
            return time.monotonic() - quiet["since"] >= SETTLE_S

        try:
            wait_until(settled, SETTLE_BOUND_S, poll_max=0.1)
        except TimedOut:
            say(f"  the capture was still growing after {SETTLE_BOUND_S} s; counting what is there")
        dgrams = datagrams(capture.segments())
        reached = {d.head for d in flow(dgrams, local, server)}
        answered = {d.head for d in flow(dgrams, server, local)}
        heard = {bytes.fromhex(e.data["hex"]) for e in tester.datagrams(conn) if "hex" in e.data}
        after = {"tester": udp_counters(pod.sidecar), "IUT": udp_counters(iut.sidecar)}
        rcvbuf = {side: after[side].get("RcvbufErrors", 0) - before[side].get("RcvbufErrors", 0) for side in after}
        stray = len(heard - answered)
        if stray:
            say(f"  note: the tester heard {stray} datagrams the capture does not show the IUT sending")
        refused = [e for e in outcomes() if e.ev == "udp-error"]
        return LossFigure(len(outcomes()), len(reached), len(answered), len(heard & answered), send_s, rcvbuf,
                          len(refused), sorted({e.data.get("name", "?") for e in refused}))
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a benchmark prints what went wrong and goes on to its summary
        say(f"  the figure failed: {type(err).__name__}: {err}")
        return None
    finally:
        if tester is not None:
            tester.stop()
        if capture is not None:
            capture.stop()
        clean_up(run.run_id)
        shutil.rmtree(pcap_dir, ignore_errors=True)


def report(figure: LossFigure | None) -> None:
    if figure is None:
        return
    configured = LOSS_PERCENT / 100
    say()
    say(f"  sent {figure.sent} datagrams in {figure.send_s:.1f} s (batches of {BATCH})")
    failed_as = ", ".join(figure.refused_as) or "-"
    say(f"  the tester's agent saw {figure.refused} sends fail ({failed_as}): the to-iut rule sits on the tester's output")
    say(f"  hook, so each datagram it drops fails its sendto(); the capture shows {figure.sent - figure.reached_iut} missing")
    for name, rate, how in (("to the IUT", figure.to_iut, "tester sent -> reached the IUT's capture"),
                            ("from the IUT", figure.from_iut, "IUT sent (capture) -> the tester's agent received")):
        holds = rate.holds(configured)
        say(f"  {name:<13} {rate.text()}  ({how})")
        say(f"  {'':<13} configured {LOSS_PERCENT} %: "
            + ("no datagrams" if holds is None else "inside the interval" if holds else "OUTSIDE the interval"))
    expected = (1 - configured) ** 2
    echoed = figure.heard / figure.sent if figure.sent else math.nan
    low, high = wilson(figure.heard, figure.sent)
    say(f"  round trip    {figure.heard} of {figure.sent} echoes came back = {echoed * 100:.1f} %  "
        f"95 % interval [{low * 100:.1f}, {high * 100:.1f}] %; expected {expected * 100:.0f} % (0.7 x 0.7)")
    say("  UDP receive-buffer drops counted by the kernels (/proc/net/snmp RcvbufErrors): "
        + ", ".join(f"{side} {n}" for side, n in figure.rcvbuf_errors.items())
        + " (anything but 0 is counted as path loss above)")


def summary(figure: LossFigure | None) -> None:
    header("Summary")
    configured = LOSS_PERCENT / 100
    for name, rate in (("1 drop rate to the IUT", figure.to_iut if figure else None),
                       ("1 drop rate from the IUT", figure.from_iut if figure else None)):
        value = "-" if rate is None or not rate.n else f"{rate.fraction * 100:.1f} %"
        summary_row(name, value, f"{LOSS_PERCENT} % in 95 % CI", None if rate is None else rate.holds(configured), 30)
    say_shared_machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.udp", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 datagrams instead of 2000")
    parser.add_argument("--count", type=int, default=None, help="datagrams to send (overrides --quick)")
    args = parser.parse_args(argv)
    count = args.count or (1000 if args.quick else 2000)
    banner("UDP echo", args.quick)
    try:
        figure = figure_loss(count)
        report(figure)
    except KeyboardInterrupt:
        say()
        say("interrupted: what the figure had created was removed (see the cleanup line above)")
        return 130
    summary(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
