"""RFC 4254 §4 and §5.4: global and channel requests are answered when a reply is wanted, not otherwise,
in order, and an unknown one is refused without ending the connection. This is what every keepalive
that uses a request (OpenSSH's keepalive@openssh.com, Dropbear's, RFC 9644's "purposely nonexistent"
request name) relies on.

The tester logs in (its user key), then sends requests whose names nobody defines; each reply is timed by
the tester's log (``ssh.txt``), and the capture shows the packets (``packets.txt``).
"""
from __future__ import annotations

import pytest

from conformance.ssh.conftest import QUIET_WATCH, REPLY_BOUND, SshCase
from fixtures.testers.ssh import CHANNEL_FAILURE, CHANNEL_SUCCESS, REQUEST_FAILURE, REQUEST_SUCCESS, tcpip_forward

pytestmark = pytest.mark.protocol("ssh")

UNKNOWN = "nonexistent-{n}@aliveness.test"
KEEPALIVE = "keepalive@openssh.com"


def unknown(n: int) -> str:
    return UNKNOWN.format(n=n)


@pytest.mark.requirement("RFC4254-4-reply", "RFC4254-4-unknown-failure", "RFC4254-4-no-reply-unwanted",
                         "RFC4254-4-reply-order")
@pytest.mark.roles("server", "client")
def test_global_requests_are_answered_as_asked(ssh: SshCase, verdict):
    """An unknown global request with want-reply gets REQUEST_FAILURE and the session goes on; one without
    want-reply gets nothing; three at once are answered in order. For a client IUT the tester is the server
    and sends the requests (OpenSSH's server sends keepalive@openssh.com to its clients too)."""
    ssh.start()
    session = ssh.session()
    tester = session.ssh
    # OpenSSH's own keepalive name first (an IUT may know it, and answer either way), then names nobody defines.
    keepalive = tester.global_request(KEEPALIVE, bound=REPLY_BOUND)
    first = tester.global_request(unknown(1), bound=REPLY_BOUND) if tester.alive else keepalive
    answered = [r for r in (keepalive, first) if r.outcome in ("success", "failure")]
    verdict.check("RFC4254-4-reply", len(answered) == 2,
                  f"{KEEPALIVE} with want-reply: {keepalive.outcome}"
                  + (f" after {keepalive.ms:.1f} ms" if keepalive.ms is not None else f" within {REPLY_BOUND:g} s")
                  + f"; an unknown request: {first.outcome}" + (f" after {first.ms:.1f} ms" if first.ms is not None else ""),
                  measured={"keepalive": keepalive.outcome, "unknown": first.outcome, "reply_ms": first.ms},
                  tolerance=f"a reply within {REPLY_BOUND:g} s")
    again = tester.global_request(unknown(2), bound=REPLY_BOUND)
    alive = again.outcome in ("success", "failure")
    if first.outcome == "failure" and alive:
        verdict.check("RFC4254-4-unknown-failure", True, "REQUEST_FAILURE, and the next request was answered too")
    elif first.outcome == "success":
        verdict.check("RFC4254-4-unknown-failure", False, "an unknown request was answered with REQUEST_SUCCESS")
    else:
        verdict.check("RFC4254-4-unknown-failure", False,
                      f"after an unknown request: {first.outcome}; the next request: {again.outcome}"
                      + (f" ({tester.closed[1]})" if tester.closed else ""))
    if not tester.alive:
        verdict.inconclusive_rest("the session ended, so the other rules could not be tried")
    # Without want-reply first, and a reply watched for on its own, so that one can only be the answer to it.
    silent = tester.global_request(unknown(3), want_reply=False)
    unwanted = tester.wait_received(silent.sent, (REQUEST_SUCCESS, REQUEST_FAILURE), QUIET_WATCH)
    if unwanted:
        late_ms = (unwanted[0].t - silent.sent) * 1000
        verdict.check("RFC4254-4-no-reply-unwanted", False,
                      f"a request without want-reply was answered with {unwanted[0].describe()} after {late_ms:.1f} ms")
    else:
        watched = tester.global_request(unknown(4), bound=REPLY_BOUND)
        if watched.outcome not in ("success", "failure"):
            verdict.inconclusive("RFC4254-4-no-reply-unwanted", "the request with want-reply that followed was not "
                                                                f"answered either ({watched.outcome}): see RFC4254-4-reply")
        else:
            verdict.check("RFC4254-4-no-reply-unwanted", True, f"no reply in {QUIET_WATCH:g} s to a request without "
                                                               "want-reply; the one with want-reply that followed was answered")
    if not tester.alive:  # an extra reply makes the tester's asyncssh end the session ("unexpected response")
        verdict.inconclusive_rest(f"the session ended ({tester.closed[1]}), so the order of replies could not be tried")
    # Three requests before any reply: only tcpip-forward can be told apart from the unknown ones.
    mark = tester.received()[-1].t if tester.received() else silent.sent
    kinds = tester.global_requests([(unknown(5), b""), ("tcpip-forward", tcpip_forward()), (unknown(6), b"")],
                                   bound=REPLY_BOUND)
    got = [m.kind for m in tester.received(mark, (REQUEST_SUCCESS, REQUEST_FAILURE))][-3:]
    names = {REQUEST_SUCCESS: "SUCCESS", REQUEST_FAILURE: "FAILURE"}
    shown = ", ".join(names[k] for k in got)
    if len(got) < 3:
        verdict.inconclusive("RFC4254-4-reply-order", f"only {len(got)} of 3 replies came ({shown or 'none'}), so their "
                                                      "order cannot be told (see RFC4254-4-reply)")
    elif got[1] == REQUEST_FAILURE and got == [REQUEST_FAILURE] * 3:
        verdict.not_applicable_for("RFC4254-4-reply-order", "the IUT refused tcpip-forward as well, so the three replies"
                                                             " look alike and their order cannot be told")
    else:
        verdict.check("RFC4254-4-reply-order", got == [REQUEST_FAILURE, REQUEST_SUCCESS, REQUEST_FAILURE],
                      f"unknown, tcpip-forward, unknown were answered {shown}",
                      measured={"replies": [names[k] for k in got], "asked": kinds})


@pytest.mark.requirement("RFC4254-5.4-unknown-failure", "RFC4254-5.4-no-reply-unwanted")
@pytest.mark.roles("server")
def test_channel_requests_are_answered_as_asked(ssh: SshCase, verdict):
    """On a session channel: an unknown request with want-reply gets CHANNEL_FAILURE; one without gets nothing."""
    ssh.start()
    session = ssh.session()
    tester = session.ssh
    chan = tester.open_session()
    if chan is None:
        verdict.inconclusive_rest(f"the IUT opened no session channel ({tester.session_error})")
    reply = tester.channel_request(chan, unknown(1), bound=REPLY_BOUND)
    verdict.check("RFC4254-5.4-unknown-failure", reply.outcome == "failure",
                  f"an unknown channel request with want-reply on a session channel running {tester.session_kind}: "
                  f"{reply.outcome}" + (f" after {reply.ms:.1f} ms" if reply.ms is not None else ""),
                  measured={"outcome": reply.outcome, "reply_ms": reply.ms}, tolerance=f"a reply within {REPLY_BOUND:g} s")
    silent = tester.channel_request(chan, unknown(2), want_reply=False)
    unwanted = tester.wait_received(silent.sent, (CHANNEL_SUCCESS, CHANNEL_FAILURE), QUIET_WATCH)
    if unwanted:
        late_ms = (unwanted[0].t - silent.sent) * 1000
        verdict.check("RFC4254-5.4-no-reply-unwanted", False,
                      f"a channel request without want-reply was answered with {unwanted[0].describe()} after {late_ms:.1f} ms")
        return
    watched = tester.channel_request(chan, unknown(3), bound=REPLY_BOUND)
    if watched.outcome not in ("success", "failure"):
        verdict.inconclusive("RFC4254-5.4-no-reply-unwanted",
                             f"the request with want-reply that followed was not answered either ({watched.outcome})")
        return
    verdict.check("RFC4254-5.4-no-reply-unwanted", True, f"no reply in {QUIET_WATCH:g} s to a channel request without "
                                                         "want-reply; the one with want-reply that followed was answered")
