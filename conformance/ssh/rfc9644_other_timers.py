"""What else can end an SSH session besides the RFC 9644 keepalive, reported so users see which knob
closes what (info, never graded):

- idle timeouts that are not keepalives (Dropbear's -I, OpenSSH's ChannelTimeout and
  UnusedConnectionTimeout), run with the manifest's ``idle-timeout-command``: the tester logs in (as a
  client it opens a session channel with a shell, as an interactive login does) and then stays idle but
  alive: it answers everything, sends nothing of its own;
- TCP keep-alive underneath (sshd's and ssh's TCPKeepAlive, on by default): with the SSH keepalive set and
  the namespace's TCP keep-alive tuned to act sooner, a frozen peer (its kernel still answers TCP probes)
  and a blackholed one (nothing answers): which layer ends the session, and when.
"""
from __future__ import annotations

import time

import pytest

from conformance.ssh.conftest import SshCase, last_packet_from_tester, settled, with_sysctls
from fixtures import faults as process_faults
from fixtures.testers.ssh import CHANNEL_CLOSE, CHANNEL_EOF

pytestmark = pytest.mark.protocol("ssh")

IDLE = 3  # the idle-timeout knob, seconds
IDLE_WATCH = 6 * IDLE  # watched this long after the tester's last packet: room for a channel, then the session
# The SSH keepalive at 4 s x 2; TCP keep-alive in the IUT's namespace gives up an unanswered peer after
# 1 s idle + 1 probe 1 s later (2 s; 3 s if the first probe went out before the fault), well before the SSH
# layer's first keepalive, whose unacknowledged data would hold TCP keep-alive back.
LAYER_KNOBS = {"max-wait": 4, "max-attempts": 2}
TCP_INTERVAL = 1.0
TCP_SYSCTLS = {"net.ipv4.tcp_keepalive_time": "1", "net.ipv4.tcp_keepalive_intvl": f"{TCP_INTERVAL:g}",
               "net.ipv4.tcp_keepalive_probes": "1"}
LAYER_WATCH = 3 * LAYER_KNOBS["max-wait"] * (LAYER_KNOBS["max-attempts"] + 1)
FAULTS = {
    "frozen": "the tester's process is frozen (its kernel still answers TCP keep-alive probes)",
    "blackholed": "every segment between the IUT and the tester is dropped",
}


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("SSHKA-idle-timeout")
def test_idle_timeouts_are_reported(ssh: SshCase, verdict):
    """The IUT's idle timeouts at idle-timeout = 3 s, the tester idle but answering: what closes, when."""
    ssh.start(knobs={"idle-timeout": IDLE}, command="idle-timeout-command")
    session = ssh.session()
    if ssh.world.role == "server":
        session.ssh.open_session()
    began = time.time()
    if not settled(ssh):
        verdict.inconclusive_rest("the connection never went quiet after the login, so the idle clock has no start")
    quiet = time.time()
    last = last_packet_from_tester(session, quiet) or began
    ending = ssh.wait_ending(session, max(last + IDLE_WATCH - time.time(), 0), after=began)
    channel = [m for m in session.ssh.received(began, (CHANNEL_EOF, CHANNEL_CLOSE))
               if ending is None or m.t <= ending.t]
    parts = []
    if channel:
        parts.append(f"the IUT closed the session channel {channel[0].t - last:.2f} s after the tester's last packet "
                     f"({', '.join(m.describe() for m in channel)})")
    elif ssh.world.role == "server":
        parts.append("the session channel stayed open")
    if ending is not None:
        parts.append(f"it ended the session {ending.t - last:.2f} s after the tester's last packet ({ending.describe()})")
    else:
        parts.append(f"the session stayed up for the {IDLE_WATCH} s watched")
    sent = [p for p in session.packets() if p.src == ssh.world.iut_address and p.t > quiet
            and not (channel and p.t >= channel[0].t - 0.05) and (ending is None or p.t < ending.t)]
    if sent:
        parts.append(f"it sent {len(sent)} packet(s) of its own before that, the first {sent[0].t - last:.2f} s in")
    command = " ".join(ssh.world.iut.command or [])
    verdict.observe("SSHKA-idle-timeout", f"idle-timeout {IDLE} s: " + "; ".join(parts),
                    measured={"channel_closed_after_s": round(channel[0].t - last, 3) if channel else None,
                              "session_ended_after_s": round(ending.t - last, 3) if ending else None,
                              "how": ending.describe() if ending else None, "command": command},
                    tolerance=f"watched for {IDLE_WATCH} s after the tester's last packet")


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("SSHKA-layers")
@pytest.mark.parametrize("how", FAULTS, ids=FAULTS)
def test_which_layer_notices_a_dead_peer(ssh: SshCase, verdict, how):
    """SSH keepalive at max-wait 4 s x 2, TCP keep-alive after 1 s idle and 1 probe: who ends the session?"""
    world = ssh.world
    world.require(keepalive=True)
    world.manifest = with_sysctls(world.manifest, world.role, TCP_SYSCTLS)
    ssh.start(knobs=LAYER_KNOBS)
    session = ssh.session()
    if not settled(ssh):
        verdict.inconclusive_rest("the connection never went quiet after the login, so the idle clock has no start")
    ssh.watch_socket(session)
    before = time.time()
    if how == "frozen":
        world.cleanups.insert(0, lambda: process_faults.thaw(world.tester_pod))
        process_faults.freeze(world.tester_pod)
    else:
        world.faults.blackhole("both")
    world.mark(time.time(), f"tester {how}")
    last = last_packet_from_tester(session, before) or before
    ending = ssh.wait_ending(session, max(last + LAYER_WATCH - time.time(), 0) + 1, after=before)
    stop = ending.t if ending else time.time()
    timeline = world.capture.timeline()
    # Counted from the fault on: what went out before it was answered as usual.
    probes = [e.t for e in timeline.probes(world.iut_address) if before < e.t <= stop]
    answered = len([e for e in timeline.events if e.kind == "probe-ack" and e.src == world.tester_address
                    and before < e.t <= stop])
    ssh_sent = [p.t for p in session.packets() if p.src == world.iut_address and before < p.t <= stop]
    # Linux ends a connection whose keep-alive probes went unanswered with an RST one interval after the last
    # probe; the socket may also vanish before the capture shows it. Anything else is the application's.
    by_tcp = ending is not None and probes and answered < len(probes) and (
        ending.how.startswith("its socket vanished")
        or ("RST" in ending.how and 0 < ending.t - probes[-1] <= 1.5 * TCP_INTERVAL))
    if ending is None:
        layer = f"neither layer ended the session within {LAYER_WATCH} s"
    elif by_tcp:
        layer = (f"the TCP layer: {ending.describe()} {ending.t - last:.2f} s after the tester's last packet, "
                 f"{ending.t - probes[-1]:.2f} s after its last unanswered keep-alive probe (the kernel gave up)")
    else:
        layer = f"the SSH layer: {ending.describe()} {ending.t - last:.2f} s after the tester's last packet"
    tcp = (f"{len(probes)} TCP keep-alive probe(s) from the IUT, {answered} answered" if probes else
           "no TCP keep-alive probe from the IUT (it did not switch TCP keep-alive on, or SSH traffic kept the "
           "connection busy)")
    text = f"tester {how}: ended by {layer}; {tcp}; {len(ssh_sent)} SSH packet(s) from the IUT before the end"
    verdict.observe("SSHKA-layers", text,
                    measured={"ended_after_s": round(ending.t - last, 3) if ending else None,
                              "ended_by": None if ending is None else ("tcp" if by_tcp else "ssh"),
                              "tcp_probes": len(probes), "tcp_probes_answered": answered,
                              "ssh_packets": len(ssh_sent), "how": how},
                    tolerance=f"SSH keepalive max-wait {LAYER_KNOBS['max-wait']} s x {LAYER_KNOBS['max-attempts']}; "
                              "TCP keep-alive idle 1 s, 1 probe, 1 s apart")
