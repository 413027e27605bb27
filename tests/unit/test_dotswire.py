"""fixtures/dotswire.py: DOTS bodies with RFC 9132's integer keys, decoded back to the YANG names."""
from __future__ import annotations

from decimal import Decimal

import cbor2

from fixtures import dotswire
from fixtures.dotswire import HEARTBEAT, SIGNAL_CONFIG, config_values, decode, encode


def test_a_heartbeat_is_key_49_holding_key_51():
    """RFC 9132 §4.7 and Table 5: {"ietf-dots-signal-channel:heartbeat": {"peer-hb-status": true}}."""
    assert cbor2.loads(dotswire.heartbeat(True)) == {49: {51: True}}
    assert decode(dotswire.heartbeat(False)).get(HEARTBEAT, "peer-hb-status") is False


def test_decimals_travel_as_decimal_fractions_with_exponent_minus_two():
    data = encode({SIGNAL_CONFIG: {"idle-config": {"ack-timeout": {"current-value-decimal": "2.00"}}}})
    # map{30: map{44: map{39: map{43: tag 4 [-2, 200]}}}}, octet by octet
    assert data == bytes.fromhex("a1 181e a1 182c a1 1827 a1 182b c4 82 21 18c8".replace(" ", ""))
    assert decode(encode({SIGNAL_CONFIG: {"idle-config": {"ack-timeout": {"current-value-decimal": 1.5}}}})).get(
        SIGNAL_CONFIG, "idle-config", "ack-timeout", "current-value-decimal") == Decimal("1.50")


def test_a_server_s_ranges_and_current_values_round_trip():
    """The acceptable and current values of a GET answer (the numbers of the RFC's example figure)."""
    sets = {"mitigating-config": {"heartbeat-interval": 30, "missing-hb-allowed": 15, "ack-timeout": "2.00"},
            "idle-config": {"heartbeat-interval": 0}}
    ranges = {"mitigating-config": {"heartbeat-interval": (15, 240), "missing-hb-allowed": (3, 20),
                                    "ack-timeout": ("1.00", "30.00")}}
    body = decode(dotswire.signal_config(sets, ranges))
    assert not body.unknown and not body.problems
    assert config_values(body) == {"mitigating-config": {"heartbeat-interval": 30, "missing-hb-allowed": 15,
                                                         "ack-timeout": Decimal("2.00")},
                                   "idle-config": {"heartbeat-interval": 0}}
    assert config_values(body, "min-value") == {"mitigating-config": {"heartbeat-interval": 15, "missing-hb-allowed": 3,
                                                                      "ack-timeout": Decimal("1.00")}}
    assert config_values(body, "max-value")["mitigating-config"]["heartbeat-interval"] == 240


def test_unknown_keys_garbage_and_wrong_shapes_are_reported_never_raised():
    body = decode(cbor2.dumps({49: {51: True, 999: "x"}, "text-key": 1}))
    assert body.unknown == [999] and body.problems == ["a key that is not an integer: 'text-key'"]
    assert decode(b"\xff\x00garbage").value is None and decode(b"\xff\x00garbage").error.startswith("not CBOR")
    assert decode(cbor2.dumps([1, 2])).error == "CBOR, but a list, not a map"
    assert decode(b"").error == "no body"
    bad = decode(cbor2.dumps({30: {44: {39: {43: "2.00"}}}}))
    assert bad.problems and "decimal fraction" in bad.problems[0]


def test_paths_and_their_parameters():
    options = dotswire.uri_path(*dotswire.MITIGATE_PATH, "cuid=dz6pHjaADkaFTbjr0JGBpw", "mid=123") + [(12, b"\x01\x0f")]
    path = dotswire.path_of(options)
    assert path == (".well-known", "dots", "mitigate", "cuid=dz6pHjaADkaFTbjr0JGBpw", "mid=123")
    assert dotswire.path_parameters(path) == {"cuid": "dz6pHjaADkaFTbjr0JGBpw", "mid": "123"}
    assert dotswire.path_parameters(dotswire.HEARTBEAT_PATH) == {}


def test_every_table_5_key_is_distinct():
    assert len(set(dotswire.KEYS.values())) == len(dotswire.KEYS) == 51
    assert sorted(dotswire.KEYS.values()) == list(range(1, 52))
