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

from conformance.tls.conftest import ANSWER_BOUND, PerVersion, TlsCase, label, payload
from fixtures.testers.tls import INVALID_MODE, MODE_NAMES, PEER_NOT_ALLOWED_TO_SEND

pytestmark = pytest.mark.protocol("tls")

OFFERED = "TLSHB-offered"
ILLEGAL = "RFC6520-2-illegal-parameter"
NOT_ALLOWED_DROP = "RFC6520-2-not-allowed-drop"
UNSOLICITED = "RFC5246-7.4.1.4-unsolicited-extension"
UNEXPECTED = "RFC5246-6-unexpected-record"


def mode_text(mode: int | None) -> str:
    return "no heartbeat extension" if mode is None else f"the heartbeat extension, {MODE_NAMES.get(mode, f'mode {mode}')}"


@pytest.mark.requirement("TLSHB-offered", "RFC5246-7.4.1.4-unsolicited-extension", "RFC5246-6-unexpected-record")
@pytest.mark.roles("server", "client")
def test_the_extension_only_where_negotiated(tls: TlsCase, verdict):
    """Per version, two sessions: with peer_allowed_to_send offered, which mode the IUT's Hello carries; without
    the extension, that the IUT's Hello leaves it out too (servers), and that a HeartbeatRequest then draws an
    unexpected_message alert and nothing else."""
    tls.start()
    seen = {}
    unsolicited, unexpected = PerVersion(verdict, UNSOLICITED), PerVersion(verdict, UNEXPECTED)
    for version in tls.versions:
        offered = tls.session(version)
        if offered is None or (not offered.handshake.ok and not offered.handshake.peer_modes):
            seen[version] = ("the handshake failed" if offered else "the IUT client did not dial again"), None
        else:
            seen[version] = f"the IUT's Hello carries {mode_text(offered.handshake.peer_mode)}", offered.handshake.peer_mode
        session = tls.session(version, None)
        if session is None:
            unsolicited.inconclusive(version, "the IUT client did not dial the tester again")
            unexpected.inconclusive(version, "the IUT client did not dial the tester again")
            continue
        got = session.handshake
        if tls.client:
            unsolicited.not_applicable(version, "a client's Hello answers nothing: the rule binds the server")
        elif got.peer_modes:
            refused = "" if got.ok else f"; the tester refused it ({got.error})"
            unsolicited.check(version, False, f"the IUT's Hello carries the heartbeat extension (mode {got.peer_mode}) "
                              f"though the ClientHello had none{refused}", mode=got.peer_mode)
        elif got.ok:
            unsolicited.check(version, True, "the IUT's Hello left the heartbeat extension out, as the ClientHello did")
        if not got.ok:
            why = f"the handshake without the extension failed: {got.describe()}"
            if not tls.client and not got.peer_modes:
                unsolicited.inconclusive(version, why)
            unexpected.inconclusive(version, why)
            continue
        if not tls.client and got.peer_modes:
            unexpected.inconclusive(version, "the IUT's Hello negotiated heartbeat although the tester did not offer it"
                                             " (see RFC5246-7.4.1.4-unsolicited-extension)")
            continue
        sent = session.request(payload(24, "unnegotiated"))
        session.tls.wait_for(lambda s=session, t=sent.t: s.tls.heartbeats(after=t) or s.alerts(t), ANSWER_BOUND,
                             what="the IUT's alert")
        alerts = session.alerts(sent.t)
        answers = session.tls.heartbeats(after=sent.t)
        fatal = [a for a in alerts if a.alert == (2, 10)]
        # DTLS (RFC 6347 §4.1.2.7) may drop an invalid record silently; an alert it sends must be fatal.
        silent_ok = tls.datagram and not alerts
        if answers:
            message = f"the IUT answered a heartbeat it never negotiated: {answers[0][0].describe()}"
        elif fatal:
            message = "the IUT answered the un-negotiated heartbeat record with a fatal unexpected_message alert"
        elif tls.datagram and alerts and all(a.alert[0] == 2 for a in alerts):
            fatal, message = alerts, f"the IUT refused the un-negotiated heartbeat record with a {alerts[0].describe()}"
        elif alerts:
            message = f"the IUT sent {alerts[0].describe()}, not unexpected_message"
        elif silent_ok:
            message = (f"the IUT discarded the un-negotiated heartbeat record silently ({ANSWER_BOUND:g} s), as "
                       "RFC 6347 §4.1.2.7 lets DTLS do")
        else:
            message = f"no alert within {ANSWER_BOUND:g} s ({session.ended_text()})"
        unexpected.check(version, (bool(fatal) or silent_ok) and not answers, message,
                         alerts=[a.describe() for a in alerts], answered=bool(answers))
    verdict.observe(OFFERED, "; ".join(f"{label(v)}: {text}" for v, (text, _) in seen.items()),
                    measured={"modes": {v: mode for v, (_, mode) in seen.items()}, "claims_heartbeat": tls.claims("heartbeat")})
    unsolicited.record()
    unexpected.record(f"an alert within {ANSWER_BOUND:g} s")


@pytest.mark.requirement("RFC6520-2-illegal-parameter", "RFC6520-2-not-allowed-drop")
@pytest.mark.roles("server", "client")
def test_the_heartbeat_modes(tls: TlsCase, verdict):
    """Per version: a Hello whose heartbeat extension says mode 3 (the tester's ServerHello, for a client IUT that
    offered one) must draw illegal_parameter; and an IUT whose Hello said peer_not_allowed_to_send, sent a Request
    anyway, must drop it (an unexpected_message alert may come)."""
    tls.start(needs_heartbeat=True)
    illegal, drop = PerVersion(verdict, ILLEGAL), PerVersion(verdict, NOT_ALLOWED_DROP)
    for version in tls.versions:
        session = tls.session(version, INVALID_MODE)
        if session is None:
            illegal.inconclusive(version, "the IUT client did not dial the tester again")
        else:
            got = session.handshake
            seen_on_wire = None if got.alert or got.ok else session.clear_alert()
            alert = got.alert or seen_on_wire
            if tls.client and not got.peer_modes:
                illegal.not_applicable(version, "the IUT's ClientHello offered no heartbeat extension, so the tester's"
                                                " ServerHello may not carry one")
            else:
                if got.ok:
                    message = "the IUT completed the handshake, as if mode 3 were a mode"
                elif alert:
                    message = f"the IUT answered with an {alert} alert" + (
                        f" (in the capture; the tester's socket saw only the close: {got.error})" if seen_on_wire else "")
                else:
                    message = f"the handshake ended without an alert from the IUT ({got.error})"
                illegal.check(version, alert == "illegal_parameter", message, alert=alert, completed=got.ok)
        for _, allowed in tls.each_version(drop, only=version):
            if allowed.handshake.peer_mode != PEER_NOT_ALLOWED_TO_SEND:
                drop.not_applicable(version, f"the IUT's Hello carried {mode_text(allowed.handshake.peer_mode)}:"
                                             " Requests to it are allowed")
                continue
            sent = allowed.request(payload(24, "not-allowed"))
            got_back = allowed.quiet_for(ANSWER_BOUND, sent.t)
            answered = [r for r in got_back if r.heartbeat is not None]
            alerts = [r.describe() for r in got_back if r.alert is not None]
            how = f" and sent {alerts[0]} (a MAY)" if alerts else ", silently"
            drop.check(
                version, not answered,
                (f"the IUT said peer_not_allowed_to_send and still answered a Request: {answered[0].describe()}"
                 if answered else f"the IUT dropped the Request it had not allowed{how}"),
                alerts=alerts)
    illegal.record()
    drop.record(f"no Response within {ANSWER_BOUND:g} s")
