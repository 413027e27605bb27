"""SSH keepalive figures (a benchmark: it prints, it asserts nothing).

Run from the repository root::

    python -m benchmarks.ssh             # both figures, 6 keepalive sessions
    python -m benchmarks.ssh --quick     # 3 sessions
    python -m benchmarks.ssh --only 2    # the keepalive-interval figure alone

1. Wall time of ``pytest conformance/ssh --iut dropbear -n 8`` against its longest single case (from the
   run's report.json).
2. How exactly the capture times an SSH server's keepalives against the max-wait it was given: Dropbear
   with ``-K 1``, the tester logged in and then muted at the SSH layer (its kernel still acknowledges), so
   every TCP segment the server sends from then on is a keepalive; the gaps between them (the first from the
   tester's last packet) against 1 s.

Everything created carries a run id of its own (``bench-ssh-...``) and is removed before the script exits,
on Ctrl-C as well.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    IUT_INDEX,
    TESTER_INDEX,
    banner,
    clean_up,
    figure_parallel_wall_time,
    header,
    new_run_id,
    parse_args,
    peer_manifest,
    say,
    say_images_and_load,
    say_shared_machine,
    spread,
    summarise_suite,
)
from fixtures.capture import Capture
from fixtures.credentials import Credentials
from fixtures.network import CaseNetwork, RunContext
from fixtures.peers import RunningIut
from fixtures.pods import start_tester
from fixtures.sshwire import ssh_packets
from fixtures.testers.relay import StreamRelay
from fixtures.testers.ssh import SshTester
from fixtures.testers.tcp import TcpTester
from fixtures.waiting import TimedOut, wait_until

PEER = "dropbear"
MAX_WAIT = 1
KEEPALIVES = 4  # watched per session (Dropbear gives up after a few more)


def figure_keepalives(sessions: int) -> list[float]:
    """Capture-timed gaps between a muted session's keepalives, minus max-wait (seconds)."""
    header(f"Figure 2 - keepalives timed by the capture: {sessions} sessions, {PEER} -K {MAX_WAIT}")
    manifest = peer_manifest(PEER)
    say_images_and_load(manifest)
    run = RunContext(run_id=new_run_id("ssh"))
    scratch = Path(tempfile.mkdtemp(prefix="aliveness-bench-ssh-"))
    errors: list[float] = []
    try:
        net = CaseNetwork(run, "bench-ssh")
        credentials = Credentials.create(scratch / "credentials")
        iut = RunningIut(run, net, manifest, "ssh", "server", {"max-wait": MAX_WAIT, "max-attempts": 3},
                         tester_address=net.address(TESTER_INDEX), index=IUT_INDEX, credentials=credentials)
        capture = Capture(iut.sidecar, scratch / "capture.pcap", whole_payloads=True)
        agent = TcpTester(start_tester(run, net, TESTER_INDEX))
        iut.start()
        iut.wait_ready()
        for n in range(sessions):
            conn = agent.connect(iut.address, iut.port)
            relay = StreamRelay(agent, conn)
            ssh = SshTester(relay.socket, timeout=15)
            error = ssh.connect("aliveness", credentials.ssh_user_key)
            if error:
                say(f"  session {n + 1}: no login ({error}), skipped")
                continue
            relay.mute()
            muted = time.time()

            def keepalives(muted=muted):
                return [p.t for p in ssh_packets(capture.segments()).packets
                        if p.src == iut.address and p.t > muted][:KEEPALIVES]

            try:
                wait_until(lambda: len(keepalives()) >= KEEPALIVES, KEEPALIVES * MAX_WAIT + 5, what="the keepalives")
            except TimedOut:
                pass
            mine = [p.t for p in ssh_packets(capture.segments()).packets if p.src == net.address(TESTER_INDEX)
                    and p.t <= muted]
            times = ([mine[-1]] if mine else []) + keepalives()
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            errors += [g - MAX_WAIT for g in gaps]
            say(f"  session {n + 1}: gaps " + ", ".join(f"{g:.4f}" for g in gaps) + " s")
            ssh.close()
            relay.close()
            agent.close(conn)
        capture.stop()
        agent.stop()
    finally:
        clean_up(run.run_id)
    say()
    if errors:
        say(f"  interval error vs {MAX_WAIT} s: {spread(errors, 1000, 'ms', 1)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args("python -m benchmarks.ssh", __doc__.splitlines()[0], (1, 2),
                      "3 keepalive sessions instead of 6", "xdist workers for figure 1", argv)
    banner("SSH", args.quick)
    suite = None
    errors: list[float] = []
    try:
        if not args.only or 1 in args.only:
            suite = figure_parallel_wall_time("conformance/ssh", PEER, "ssh", args.workers, args.keep_reports)
        if not args.only or 2 in args.only:
            errors = figure_keepalives(3 if args.quick else 6)
    except KeyboardInterrupt:
        say()
        say("interrupted: what the figures had created was removed")
        return 130
    header("Summary")
    if not args.only or 1 in args.only:
        summarise_suite(suite, args.workers, 34)
    if errors:
        worst = max(abs(e) for e in errors)
        say(f"  2 keepalive interval error          worst {worst * 1000:.1f} ms over {len(errors)} intervals "
            f"(the keepalive case allows 10 % + 1 s)")
    say_shared_machine()
    return 0


if __name__ == "__main__":
    sys.exit(main())
