"""RFC 9132 §4.5: the DOTS signal channel's session configuration, with the IUT as the DOTS server.

The tester, as a DOTS client over its DTLS association (or TLS session: conformance/dots_tls/), asks for the
configuration (GET /.well-known/dots/config), then PUTs values under a sid: acceptable ones (2.01 for a new sid,
2.04 for the same again), a heartbeat-interval above the announced maximum (4.22), and a PUT with no sid at all
(4.00). After each refusal it asks again: a refused request must have changed nothing.
"""
from __future__ import annotations

import pytest

from conformance.dots.conftest import BAD_REQUEST, CREATED, UNPROCESSABLE, DotsCase
from fixtures.coapwire import CHANGED, CONTENT, GET, PUT, code_text
from fixtures.dotswire import CONFIG_PATH, CONFIG_SETS, config_values, decode, signal_config

pytestmark = pytest.mark.protocol("dots")

CHECKED = ("heartbeat-interval", "missing-hb-allowed")


def checked(dots: DotsCase) -> tuple[str, ...]:
    """The parameters judged: over TCP missing-hb-allowed is not negotiated (RFC 9132 §4.5)."""
    return CHECKED[:1] if dots.reliable else CHECKED


def get_config(dots: DotsCase):
    """The IUT's answer to a configuration GET and its current, minimum and maximum values per set."""
    seen = dots.request(GET, CONFIG_PATH)
    if seen is None:
        return None, {}, {}, {}
    body = decode(seen.msg.payload)
    return seen, config_values(body), config_values(body, "min-value"), config_values(body, "max-value")


def answered(seen) -> str:
    return f"answered {code_text(seen.msg.code)}" if seen is not None else "not answered within 5 s"


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-4.5.1-config-ranges", "RFC9132-4.5.2-put-created-changed")
def test_the_configuration_is_announced_and_installed(dots: DotsCase, verdict):
    """A GET shows ranges and current values; an acceptable PUT under a new sid is Created, again Changed."""
    dots.start()
    seen, current, low, high = get_config(dots)
    problems = []
    if seen is None or seen.msg.code != CONTENT:
        problems.append(f"the GET was {answered(seen)}, not 2.05")
    if seen is not None and not current:
        problems.append("its body holds no signal-config with current values")
    for name in current:
        for parameter in checked(dots):
            values = (low.get(name, {}).get(parameter), current[name].get(parameter), high.get(name, {}).get(parameter))
            if None in values:
                problems.append(f"{name} {parameter}: min, current, max = {values}")
            elif not values[0] <= values[1] <= values[2]:
                problems.append(f"{name} {parameter}: current {values[1]} outside [{values[0]}, {values[2]}]")
    verdict.check("RFC9132-4.5.1-config-ranges", not problems,
                  "; ".join(problems) or f"2.05 with {', '.join(f'{n}: {v}' for n, v in current.items())} "
                                         f"(min {low}, max {high})", measured={"current": str(current)})
    if problems:
        verdict.inconclusive_rest("the configuration the IUT announced cannot be used to pick acceptable values")
    name = next(iter(current))
    values = {parameter: current[name][parameter] for parameter in checked(dots)}
    body = signal_config({n: values for n in current})
    first = dots.request(PUT, (*CONFIG_PATH, "sid=1"), body)
    again = dots.request(PUT, (*CONFIG_PATH, "sid=1"), body)
    ok = first is not None and first.msg.code == CREATED and again is not None and again.msg.code == CHANGED
    verdict.check("RFC9132-4.5.2-put-created-changed", ok,
                  f"PUT sid=1 with its own current values ({values}) twice: {answered(first)}, then {answered(again)}")


@pytest.mark.roles("server")
@pytest.mark.requirement("RFC9132-4.5.2-out-of-range-422", "RFC9132-4.5.2-missing-sid-400",
                         "RFC9132-4.5.2-refused-changes-nothing")
def test_an_unacceptable_configuration_is_refused_and_changes_nothing(dots: DotsCase, verdict):
    """A heartbeat-interval one above the announced maximum under sid 1 (4.22), then a valid body without sid (4.00);
    the values a GET returns must be the same before and after each."""
    dots.start()
    seen, before, _, high = get_config(dots)
    if seen is None or seen.msg.code != CONTENT or not high:
        verdict.inconclusive_rest(f"the configuration GET was {answered(seen)}, with no maximum to exceed "
                                  "(see RFC9132-4.5.1-config-ranges)")
    name = next(n for n in CONFIG_SETS if "heartbeat-interval" in high.get(n, {}))
    too_long = int(high[name]["heartbeat-interval"]) + 1
    refused = dots.request(PUT, (*CONFIG_PATH, "sid=1"), signal_config({name: {"heartbeat-interval": too_long}}))
    verdict.check("RFC9132-4.5.2-out-of-range-422", refused is not None and refused.msg.code == UNPROCESSABLE,
                  f"PUT sid=1 with {name} heartbeat-interval {too_long} (the announced maximum plus one): {answered(refused)}")
    _, after, _, _ = get_config(dots)
    no_sid = dots.request(PUT, CONFIG_PATH, signal_config({name: {"heartbeat-interval": before[name]["heartbeat-interval"]}}))
    verdict.check("RFC9132-4.5.2-missing-sid-400", no_sid is not None and no_sid.msg.code == BAD_REQUEST,
                  f"PUT without a sid: {answered(no_sid)}")
    _, last, _, _ = get_config(dots)
    # Each refusal (any 4.xx) is judged on what a GET showed just before it and just after it.
    steps = [(refused, before, after, "the out-of-range PUT"), (no_sid, after, last, "the PUT without a sid")]
    judged = [(what, old, new) for seen, old, new, what in steps if seen is not None and seen.msg.cls == 4]
    if not judged:
        verdict.not_applicable_for("RFC9132-4.5.2-refused-changes-nothing", "the IUT refused neither PUT")
        return
    changed = [f"after {what}, {n}: {old.get(n)} -> {new.get(n)}" for what, old, new in judged
               for n in CONFIG_SETS if new.get(n) != old.get(n)]
    verdict.check("RFC9132-4.5.2-refused-changes-nothing", not changed,
                  "; ".join(changed) or f"after {' and '.join(w for w, _, _ in judged)} the current values stayed {before}",
                  measured={"before": str(before), "after": str(after), "last": str(last)})
