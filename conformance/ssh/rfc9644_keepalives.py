"""SSH keepalives by the RFC 9644 knobs: an IUT with ``max-wait`` and ``max-attempts`` set tests a quiet peer
and drops a dead one. A server IUT (OpenSSH's ClientAliveInterval and ClientAliveCountMax, Dropbear's -K)
is tested with the tester as its client; a client IUT (OpenSSH's ServerAliveInterval and
ServerAliveCountMax) with the tester as its server. Below, "client" is the tester in the first case and
"server" in the second.

The tester logs in and waits until the connection is idle (every octet acknowledged both ways). Then the
client dies in one of three ways: silent (nothing at all leaves the tester, its kernel still
acknowledges), frozen (the tester's process is stopped by the cgroup freezer; its kernel still
acknowledges) or blackholed (every segment between the two is dropped). The idle clock starts at the
tester's last packet in the capture; the IUT's packets after it are its keepalives (their content is
encrypted, their times and sizes are not); the drop is its FIN, RST or DISCONNECT, or on a blackholed path
its socket leaving ESTABLISHED in its own namespace. A live client (idle, answering every keepalive) must
be kept. A client IUT that claims reconnect must come back once the path to a server it gave up on
returns.
"""
from __future__ import annotations

import time

import pytest

from conformance.ssh.conftest import SshCase, last_packet_from_tester, settled
from fixtures import faults as process_faults
from fixtures.testers.ssh import GLOBAL_REQUEST
from fixtures.waiting import wait_until

pytestmark = pytest.mark.protocol("ssh")

KNOBS = {"max-wait": 2, "max-attempts": 2}
# Each keepalive within 10 % + 1 s of max-wait: the knob counts whole seconds, and so does OpenSSH's clock (its
# ssh client sends the first keepalive between max-wait - 1 and max-wait seconds after the last packet).
PROBE_FRACTION, PROBE_FIXED = 0.10, 1.0
DROP_FRACTION, DROP_FIXED = 0.10, 1.0  # the drop within 10 % + 1 s of its bounds
WATCH_FACTOR = 3  # the drop is watched for up to this many times its upper bound
BURST = 0.1  # packets from the IUT less than this many seconds apart are one keepalive
TRAFFIC_EVERY = 0.5  # the tester's SSH_MSG_IGNORE period in the traffic case, as a fraction of max-wait
RECOVER_WATCH = 30.0  # seconds after the path returns that a client claiming reconnect has to log in again
RETURN_AFTER = 1.0  # seconds the path stays dead after the client dropped the session
DEAD_PEERS = {
    "silent": "nothing leaves the tester any more (its kernel still acknowledges)",
    "frozen": "the tester's process is frozen (cgroup freezer; its kernel still acknowledges)",
    "blackholed": "every segment between the IUT and the tester is dropped",
}


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("RFC9644-keepalives-max-wait", "RFC9644-keepalives-max-attempts")
@pytest.mark.parametrize("how", DEAD_PEERS, ids=DEAD_PEERS)
def test_a_dead_peer_is_probed_then_dropped(ssh: SshCase, verdict, how):
    """Keepalives every max-wait seconds of silence from the peer; the session dropped after about max-wait x max-attempts."""
    wait, attempts = KNOBS["max-wait"], KNOBS["max-attempts"]
    ssh.start(knobs=KNOBS)
    session = ssh.session()
    if not settled(ssh):
        verdict.inconclusive_rest("the connection never went quiet after the login, so the idle clock has no start")
    pod = ssh.world.tester_pod
    before = time.time()
    if how == "silent":
        session.relay.mute()
    elif how == "frozen":
        ssh.world.cleanups.insert(0, lambda: process_faults.thaw(pod))
        process_faults.freeze(pod)
    else:
        ssh.watch_socket(session)
        ssh.world.faults.blackhole("both")
    ssh.world.mark(time.time(), f"tester {how}")
    last = last_packet_from_tester(session, before)
    if last is None:
        verdict.inconclusive_rest("the capture shows no packet from the tester, so the idle clock has no start")
    low, high = wait * attempts, wait * (attempts + 1)
    slack_high = high * DROP_FRACTION + DROP_FIXED
    # Watched for three times the upper bound, so a late drop is measured, not only failed.
    ending = ssh.wait_ending(session, max(last + WATCH_FACTOR * high - time.time(), 0) + 1, after=before)
    # The connection was quiet when the tester died: what the IUT sends from then on is its keepalives. One
    # keepalive may be a burst of packets (asyncssh puts an SSH_MSG_IGNORE before each): a burst counts once.
    # A packet right before the IUT's FIN or RST is its farewell (an SSH_MSG_DISCONNECT), not a keepalive.
    farewell = ending.t - BURST if ending is not None and ending.how.startswith("the IUT's TCP") else None
    sent = [p.t for p in session.packets() if p.src == ssh.world.iut_address and p.t > before
            and (ending is None or p.t <= ending.t) and (farewell is None or p.t < farewell)]
    probes = [t for i, t in enumerate(sent) if i == 0 or t - sent[i - 1] > BURST]
    gaps = [round(b - a, 3) for a, b in zip([last, *probes], probes, strict=False)]
    slack_probe = wait * PROBE_FRACTION + PROBE_FIXED
    probe_tolerance = f"each keepalive max-wait = {wait} s (+/- {slack_probe:.1f} s: 10 % + 1 s) after the packet before"
    if how == "blackholed":
        verdict.not_applicable_for("RFC9644-keepalives-max-wait",
                                   "on a blackholed path the first keepalive is never acknowledged, and TCP holds the "
                                   "next ones behind it: their times are TCP's, not the keepalive's (see silent, frozen)")
    elif not probes:
        verdict.check("RFC9644-keepalives-max-wait", False,
                      f"no keepalive in {(ending.t if ending else time.time()) - last:.1f} s of silence from the tester",
                      measured={"probes": 0}, tolerance=probe_tolerance)
    else:
        off = [g for g in gaps if abs(g - wait) > slack_probe]
        verdict.check("RFC9644-keepalives-max-wait", not off,
                      f"{len(probes)} keepalive(s), {', '.join(f'{g:.2f}' for g in gaps)} s after the packet before "
                      f"(max-wait {wait} s)", measured={"probes": len(probes), "gaps_s": gaps}, tolerance=probe_tolerance)
    drop_tolerance = (f"no sooner than max-wait x max-attempts = {low} s and no later than max-wait x (max-attempts + 1) = "
                      f"{high} s after the tester's last packet, each +/- 10 % + 1 s, and (silent, frozen) after at "
                      f"least max-attempts = {attempts} keepalives")
    after_s = round(ending.t - last, 3) if ending else None
    text = (f"dropped {after_s:.2f} s after the tester's last packet ({ending.describe()}), after {len(probes)} keepalive(s)"
            if ending else
            f"not dropped within {WATCH_FACTOR * high:g} s of the tester's last packet ({len(probes)} keepalive(s))")
    said = ssh.dead_peer_log() if ending is not None else None
    if said is not None:
        text += f"; its log: {said!r}" if said else "; its log shows no line for it"
    if not ssh.honours("max-attempts"):
        verdict.not_applicable_for("RFC9644-keepalives-max-attempts",
                                   f"{ssh.world.manifest.name}'s keepalive command takes no {{max-attempts}}: its own count "
                                   f"applies ({text})")
        return
    in_time = ending is not None and low - (low * DROP_FRACTION + DROP_FIXED) <= after_s <= high + slack_high
    # On a blackholed path TCP holds keepalives back, so only the silent and frozen cases count them.
    too_few = how != "blackholed" and ending is not None and len(probes) < attempts
    ok = in_time and not too_few
    if ending is not None and not in_time:
        text += (": too early, before max-attempts keepalives could go unanswered" if after_s < low else
                 f": later than max-wait x (max-attempts + 1) = {high} s")
    elif too_few:
        text += f": it gave up after {len(probes)} unanswered keepalive(s), max-attempts is {attempts}"
    verdict.check("RFC9644-keepalives-max-attempts", ok, text,
                  measured={"dropped_after_s": after_s, "keepalives": len(probes), "how": how, "log": said},
                  tolerance=drop_tolerance)


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("SSHKA-live-peer")
def test_a_live_peer_is_kept(ssh: SshCase, verdict):
    """The peer idle but answering (asyncssh refuses each keepalive request, which is an answer): the session stays."""
    wait, attempts = KNOBS["max-wait"], KNOBS["max-attempts"]
    ssh.start(knobs=KNOBS)
    session = ssh.session()
    began = time.time()
    watch = wait * (attempts + 2)
    ending = ssh.wait_ending(session, watch, after=began)
    asked = session.ssh.received(began, (GLOBAL_REQUEST,))
    names = sorted({m.name for m in asked})
    if ending is not None:
        verdict.check("SSHKA-live-peer", False, f"the IUT dropped an answering peer after {ending.t - began:.1f} s "
                                                f"({ending.describe()}), after {len(asked)} keepalive(s)")
    elif not asked:
        verdict.inconclusive("SSHKA-live-peer", f"no keepalive came in {watch} s, so nothing was answered")
    else:
        verdict.check("SSHKA-live-peer", session.ssh.alive,
                      f"{len(asked)} keepalive(s) ({', '.join(names)}), each answered; the session stayed up for {watch} s",
                      measured={"keepalives": len(asked), "names": names},
                      tolerance=f"kept for max-wait x (max-attempts + 2) = {watch} s")


@pytest.mark.roles("client")
@pytest.mark.requirement("SSHKA-reconnect", "SSHKA-reconnect-claimed")
def test_a_client_comes_back_after_the_server_returns(ssh: SshCase, verdict):
    """The path to the tester's server is blackholed until the client's keepalive drops the session, then
    restored: how long until the client is logged in again? Graded where the manifest claims reconnect."""
    wait, attempts = KNOBS["max-wait"], KNOBS["max-attempts"]
    ssh.start(knobs=KNOBS)
    session = ssh.session()
    if not settled(ssh):
        verdict.inconclusive_rest("the connection never went quiet after the login, so the idle clock has no start")
    ssh.watch_socket(session)
    before = time.time()
    blackhole = ssh.world.faults.blackhole("both")
    ssh.world.mark(before, "path to the server blackholed")
    ending = ssh.wait_ending(session, WATCH_FACTOR * wait * (attempts + 1), after=before)
    if ending is None:
        verdict.inconclusive_rest(f"the client never gave up the dead session in {WATCH_FACTOR * wait * (attempts + 1)} s, "
                                  "so there was nothing to come back from")
    # The path stays dead a moment longer, so the client's first redials fail as they would against a gone server.
    wait_until(lambda: time.time() > ending.t + RETURN_AFTER, RETURN_AFTER + 1, poll_max=0.1,
               what="the path's return time")
    lifted = time.time()
    blackhole.lift()
    ssh.world.mark(lifted, "path restored")
    again = ssh.session(wait=RECOVER_WATCH, missing="reconnect")
    back = time.time()
    # SYNs, retransmissions included: a redial into the blackhole is retried by TCP, not by the client.
    dials = [e.t for e in ssh.world.capture.timeline().events
             if e.kind == "syn" and e.src == ssh.world.iut_address and e.t > before]
    if again is not None and again.ok:
        text = (f"dropped the dead session {ending.t - before:.1f} s into the blackhole ({ending.describe()}), "
                f"sent {len(dials)} SYN(s) since, and was logged in again {back - lifted:.2f} s after the path returned")
    elif again is not None:
        text = f"dialled again after the path returned, but the login failed: {again.error}"
    else:
        text = f"dropped the dead session, then did not log in again within {RECOVER_WATCH:g} s of the path's return"
    measured = {"recovered_after_s": round(back - lifted, 3) if again is not None and again.ok else None,
                "syns": len(dials)}
    verdict.observe("SSHKA-reconnect", text, measured=measured)
    if not ssh.claims("reconnect"):
        verdict.not_applicable(f"{ssh.world.manifest.name} does not claim reconnect")
    verdict.check("SSHKA-reconnect-claimed", again is not None and again.ok, text, measured=measured,
                  tolerance=f"logged in again within {RECOVER_WATCH:g} s of the path's return")


@pytest.mark.roles("server", "client")
@pytest.mark.requirement("SSHKA-traffic-keeps", "SSHKA-traffic-defers")
def test_traffic_from_the_peer_counts_as_life(ssh: SshCase, verdict):
    """The peer answers no keepalive but sends SSH_MSG_IGNORE every max-wait / 2 s: it is alive, and kept."""
    wait, attempts = KNOBS["max-wait"], KNOBS["max-attempts"]
    ssh.start(knobs=KNOBS)
    session = ssh.session()
    tester = session.ssh
    tester.stop_answering()
    began = time.time()
    watch = wait * (attempts + 2)
    due, sent = began, 0
    ending = None
    while time.time() - began < watch:
        tester.send_ignore()
        sent += 1
        due += wait * TRAFFIC_EVERY
        ending = ssh.wait_ending(session, max(due - time.time(), 0), after=began)
        if ending is not None:
            break
    asked = tester.received(began, (GLOBAL_REQUEST,))
    held = (f"{len(asked)} keepalive(s) came while the tester's packets flowed" if asked else
            "no keepalive came while the tester's packets flowed")
    verdict.observe("SSHKA-traffic-defers", held + f" ({sent} SSH_MSG_IGNORE, one every {wait * TRAFFIC_EVERY:g} s; "
                                                   "keepalives left unanswered)",
                    measured={"keepalives": len(asked), "ignores": sent})
    if ending is not None:
        verdict.check("SSHKA-traffic-keeps", False,
                      f"the IUT dropped a peer that sent a packet every {wait * TRAFFIC_EVERY:g} s, "
                      f"{ending.t - began:.1f} s in ({ending.describe()}), after {len(asked)} unanswered keepalive(s)",
                      measured={"dropped_after_s": round(ending.t - began, 3), "keepalives": len(asked)})
    else:
        verdict.check("SSHKA-traffic-keeps", tester.alive,
                      f"kept for {watch} s while the tester sent a packet every {wait * TRAFFIC_EVERY:g} s and answered "
                      f"no keepalive; {held}", measured={"keepalives": len(asked), "ignores": sent},
                      tolerance=f"kept for max-wait x (max-attempts + 2) = {watch} s")
