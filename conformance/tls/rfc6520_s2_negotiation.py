"""RFC 6520 §2: the heartbeat Hello extension and its modes; and what TLS itself demands of an endpoint whose
peer did not negotiate heartbeat (RFC 5246 §6 and §7.4.1.4, RFC 8446 §4.2 and §5).

Every case runs once per TLS version the IUT speaks (a session per version, one verdict per requirement
giving each version's finding). The no-heartbeat cases run on every TLS endpoint, heartbeat or not
(OpenSSL 3 has none, and must pass them); the mode cases need the heartbeat feature. For a client IUT the
tester is the server: its ServerHello carries the mode a case needs, if the IUT's ClientHello offered the
extension.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, PerVersion, TlsCase, payload
from fixtures.testers.tls import INVALID_MODE, MODE_NAMES, PEER_NOT_ALLOWED_TO_SEND

pytestmark = pytest.mark.protocol("tls")

OFFERED = "TLSHB-offered"
ILLEGAL = "RFC6520-2-illegal-parameter"
NOT_ALLOWED_DROP = "RFC6520-2-not-allowed-drop"
UNSOLICITED = "RFC5246-7.4.1.4-unsolicited-extension"
UNEXPECTED = "RFC5246-6-unexpected-record"


def mode_text(mode: int | None) -> str:
    return "no heartbeat extension" if mode is None else f"the heartbeat extension, {MODE_NAMES.get(mode, f'mode {mode}')}"


@pytest.mark.requirement("TLSHB-offered")
@pytest.mark.roles("server", "client")
def test_heartbeat_offered(tls: TlsCase, verdict):
    """With peer_allowed_to_send offered (or, for a client IUT, before any answer), which mode the IUT's Hello carries."""
    tls.start()
    seen = {}
    for version in tls.versions:
        session = tls.session(version)
        if session is None or (not session.handshake.ok and not session.handshake.peer_modes):
            seen[version] = ("the handshake failed" if session else "the IUT client did not dial again"), None
            continue
        seen[version] = f"the IUT's Hello carries {mode_text(session.handshake.peer_mode)}", session.handshake.peer_mode
    verdict.observe(OFFERED, "; ".join(f"TLS {v}: {text}" for v, (text, _) in seen.items()),
                    measured={"modes": {v: mode for v, (_, mode) in seen.items()}, "claims_heartbeat": tls.claims("heartbeat")})


@pytest.mark.requirement("RFC6520-2-illegal-parameter")
@pytest.mark.roles("server", "client")
def test_unknown_mode_is_an_illegal_parameter(tls: TlsCase, verdict):
    """A Hello whose heartbeat extension says mode 3 (the tester's ServerHello, for a client IUT that offered one)."""
    tls.start(needs_heartbeat=True)
    judge = PerVersion(verdict, ILLEGAL)
    for version in tls.versions:
        session = tls.session(version, INVALID_MODE)
        if session is None:
            judge.inconclusive(version, "the IUT client did not dial the tester again")
            continue
        got = session.handshake
        seen_on_wire = None if got.alert or got.ok else session.clear_alert()
        if tls.client and not got.peer_modes:
            judge.not_applicable(version, "the IUT's ClientHello offered no heartbeat extension, so the tester's"
                                          " ServerHello may not carry one")
            continue
        alert = got.alert or seen_on_wire
        if got.ok:
            message = "the IUT completed the handshake, as if mode 3 were a mode"
        elif alert:
            message = f"the IUT answered with an {alert} alert" + (
                f" (in the capture; the tester's socket saw only the close: {got.error})" if seen_on_wire else "")
        else:
            message = f"the handshake ended without an alert from the IUT ({got.error})"
        judge.check(version, alert == "illegal_parameter", message, alert=alert, completed=got.ok)
    judge.record()


@pytest.mark.requirement("RFC6520-2-not-allowed-drop")
@pytest.mark.roles("server", "client")
def test_a_peer_not_allowed_to_send_drops_requests(tls: TlsCase, verdict):
    """An IUT whose Hello said peer_not_allowed_to_send, sent a Request anyway: no Response (an alert may come)."""
    tls.start(needs_heartbeat=True)
    judge = PerVersion(verdict, NOT_ALLOWED_DROP)
    for version, session in tls.each_version(judge):
        if session.handshake.peer_mode != PEER_NOT_ALLOWED_TO_SEND:
            judge.not_applicable(version, f"the IUT's Hello carried {mode_text(session.handshake.peer_mode)}:"
                                          " Requests to it are allowed")
            continue
        sent = session.request(payload(24, "not-allowed"))
        got = session.quiet_for(ANSWER_BOUND, sent.t)
        answered = [r for r in got if r.heartbeat is not None]
        alerts = [r.describe() for r in got if r.alert is not None]
        how = f" and sent {alerts[0]} (a MAY)" if alerts else ", silently"
        judge.check(
            version, not answered,
            (f"the IUT said peer_not_allowed_to_send and still answered a Request: {answered[0].describe()}" if answered
             else f"the IUT dropped the Request it had not allowed{how}"),
            alerts=alerts)
    judge.record(f"no Response within {ANSWER_BOUND:g} s")


@pytest.mark.requirement("RFC5246-7.4.1.4-unsolicited-extension")
@pytest.mark.roles("server")
def test_no_heartbeat_extension_unless_offered(tls: TlsCase, verdict):
    """A ClientHello without the heartbeat extension: the IUT's Hello must not carry it."""
    tls.start()
    judge = PerVersion(verdict, UNSOLICITED)
    for version in tls.versions:
        got = tls.session(version, None).handshake
        if got.peer_modes:
            refused = "" if got.ok else f"; the tester refused it ({got.error})"
            judge.check(version, False, f"the IUT's Hello carries the heartbeat extension (mode {got.peer_mode}) though"
                        f" the ClientHello had none{refused}", mode=got.peer_mode)
        elif not got.ok:
            judge.inconclusive(version, f"the handshake failed before the IUT's Hello could be read: {got.describe()}")
        else:
            judge.check(version, True, "the IUT's Hello left the heartbeat extension out, as the ClientHello did")
    judge.record()


@pytest.mark.requirement("RFC5246-6-unexpected-record")
@pytest.mark.roles("server", "client")
def test_heartbeat_record_without_the_extension_is_unexpected(tls: TlsCase, verdict):
    """No heartbeat negotiated, then a HeartbeatRequest: an unexpected_message alert, nothing else."""
    tls.start()
    judge = PerVersion(verdict, UNEXPECTED)
    for version, session in tls.each_version(judge, mode=None):
        if not tls.client and session.handshake.peer_modes:
            judge.inconclusive(version, "the IUT's Hello negotiated heartbeat although the tester did not offer it"
                                        " (see RFC5246-7.4.1.4-unsolicited-extension)")
            continue
        sent = session.request(payload(24, "unnegotiated"))
        session.tls.wait_for(lambda s=session, t=sent.t: s.tls.heartbeats(after=t) or s.alerts(t), ANSWER_BOUND,
                             what="the IUT's alert")
        alerts = session.alerts(sent.t)
        answers = session.tls.heartbeats(after=sent.t)
        fatal = [a for a in alerts if a.alert == (2, 10)]
        if answers:
            message = f"the IUT answered a heartbeat it never negotiated: {answers[0][0].describe()}"
        elif fatal:
            message = "the IUT answered the un-negotiated heartbeat record with a fatal unexpected_message alert"
        elif alerts:
            message = f"the IUT sent {alerts[0].describe()}, not unexpected_message"
        else:
            message = f"no alert within {ANSWER_BOUND:g} s ({session.ended_text()})"
        judge.check(version, bool(fatal) and not answers, message, alerts=[a.describe() for a in alerts],
                    answered=bool(answers))
    judge.record(f"an alert within {ANSWER_BOUND:g} s")
