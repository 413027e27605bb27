"""RFC 6520 §2: the heartbeat Hello extension and its modes; and what TLS itself demands of a server whose
peer did not negotiate heartbeat (RFC 5246 §6 and §7.4.1.4, RFC 8446 §4.2 and §5).

Every case runs once per TLS version the IUT speaks. The no-heartbeat cases run on every TLS server,
heartbeat or not (OpenSSL 3 has none, and must pass them); the mode cases need the heartbeat feature.
"""
from __future__ import annotations

import pytest

from conformance.tls.conftest import ANSWER_BOUND, VERSIONS, TlsCase, payload
from fixtures.testers.tls import INVALID_MODE, MODE_NAMES, PEER_NOT_ALLOWED_TO_SEND

pytestmark = pytest.mark.protocol("tls")

OFFERED = "TLSHB-offered"
ILLEGAL = "RFC6520-2-illegal-parameter"
NOT_ALLOWED_DROP = "RFC6520-2-not-allowed-drop"
UNSOLICITED = "RFC5246-7.4.1.4-unsolicited-extension"
UNEXPECTED = "RFC5246-6-unexpected-record"


@pytest.mark.requirement("TLSHB-offered")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_offered(tls: TlsCase, verdict, version):
    """With peer_allowed_to_send offered, which mode (if any) the IUT's Hello answers with."""
    tls.start(version)
    session = tls.open_session(version)
    mode = session.handshake.peer_mode
    verdict.observe(
        OFFERED,
        f"TLS {version}: the IUT's Hello carries " + (f"the heartbeat extension, {MODE_NAMES.get(mode, f'mode {mode}')}"
                                                      if mode is not None else "no heartbeat extension"),
        measured={"version": version, "mode": mode, "claims_heartbeat": tls.claims("heartbeat")})


@pytest.mark.requirement("RFC6520-2-illegal-parameter")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_mode_is_an_illegal_parameter(tls: TlsCase, verdict, version):
    """A ClientHello whose heartbeat extension says mode 3."""
    tls.start(version, needs_heartbeat=True)
    session = tls.session(version, INVALID_MODE)
    got = session.handshake
    if got.ok:
        message = "the IUT completed the handshake, as if mode 3 were a mode"
    elif got.alert:
        message = f"the IUT answered with an {got.alert} alert"
    else:
        message = f"the handshake ended without an alert from the IUT ({got.error})"
    verdict.check(ILLEGAL, got.alert == "illegal_parameter", message, measured={"alert": got.alert, "completed": got.ok})


@pytest.mark.requirement("RFC6520-2-not-allowed-drop")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_a_peer_not_allowed_to_send_drops_requests(tls: TlsCase, verdict, version):
    """An IUT whose Hello said peer_not_allowed_to_send, sent a Request anyway: no Response (an alert may come)."""
    tls.start(version, needs_heartbeat=True)
    session = tls.open_session(version)
    if session.handshake.peer_mode != PEER_NOT_ALLOWED_TO_SEND:
        said = MODE_NAMES.get(session.handshake.peer_mode, "nothing")
        verdict.not_applicable_for(NOT_ALLOWED_DROP, f"the IUT's Hello said {said}: Requests to it are allowed")
        return
    data = payload(24, "not-allowed")
    sent = session.request(data)
    got = session.quiet_for(ANSWER_BOUND, sent.t)
    answered = [r for r in got if r.heartbeat is not None]
    alerts = [r.describe() for r in got if r.alert is not None]
    verdict.check(
        NOT_ALLOWED_DROP, not answered,
        (f"the IUT said peer_not_allowed_to_send and still answered a Request: {answered[0].describe()}" if answered
         else "the IUT dropped the Request it had not allowed" + (f" and sent {alerts[0]} (a MAY)" if alerts else ", silently")),
        measured={"alerts": alerts}, tolerance=f"no Response within {ANSWER_BOUND:g} s")


@pytest.mark.requirement("RFC5246-7.4.1.4-unsolicited-extension")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_no_heartbeat_extension_unless_offered(tls: TlsCase, verdict, version):
    """A ClientHello without the heartbeat extension: the IUT's Hello must not carry it."""
    tls.start(version)
    session = tls.session(version, None)
    got = session.handshake
    if got.peer_modes:
        verdict.check(UNSOLICITED, False, f"the IUT's Hello carries the heartbeat extension (mode {got.peer_mode}) "
                      "though the ClientHello had none" + ("" if got.ok else f"; the tester refused it ({got.error})"),
                      measured={"mode": got.peer_mode})
    elif not got.ok:
        verdict.inconclusive(UNSOLICITED, f"the handshake failed before the IUT's extensions could be read: {got.describe()}")
    else:
        verdict.check(UNSOLICITED, True,
                      f"TLS {version}: the IUT's Hello left the heartbeat extension out, as the ClientHello did")


@pytest.mark.requirement("RFC5246-6-unexpected-record")
@pytest.mark.roles("server")
@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_record_without_the_extension_is_unexpected(tls: TlsCase, verdict, version):
    """No heartbeat negotiated, then a HeartbeatRequest: an unexpected_message alert, nothing else."""
    tls.start(version)
    session = tls.open_session(version, None)
    if session.handshake.peer_modes:
        verdict.inconclusive(UNEXPECTED, "the IUT's Hello negotiated heartbeat although the tester did not offer it"
                                         " (see RFC5246-7.4.1.4-unsolicited-extension)")
        return
    sent = session.request(payload(24, "unnegotiated"))
    session.tls.wait_for(lambda: session.tls.heartbeats(after=sent.t) or session.alerts(sent.t), ANSWER_BOUND,
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
    verdict.check(UNEXPECTED, bool(fatal) and not answers, message,
                  measured={"alerts": [a.describe() for a in alerts], "answered": bool(answers)},
                  tolerance=f"an alert within {ANSWER_BOUND:g} s")

