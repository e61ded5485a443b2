"""Engine.IO v4 packets and payloads, on the wire: golden strings from the protocol spec."""

from __future__ import annotations

import json

import pytest

from greensio._core import eio, eio_codec
from greensio._core.eio_codec import (
    CLOSE,
    MESSAGE,
    NOOP,
    OPEN,
    PING,
    PING_PACKET,
    PONG,
    PONG_PROBE,
    UPGRADE,
    OutPacket,
    decode_packet,
    decode_payload,
    encode_payload,
    handshake,
    jsonp_unwrap,
    jsonp_wrap,
    parse_open,
)
from greensio._core.errors import RemoteProtocolError
from greensio._core.websocket import OP_BINARY, OP_TEXT, FrameParser


def test_packet_type_ids_are_the_specs() -> None:
    assert (OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP) == (0, 1, 2, 3, 4, 5, 6)


def test_the_names_the_shells_import_from_eio_still_work() -> None:
    assert eio.decode_payload is decode_payload and eio.handshake is handshake
    assert (eio.OPEN, eio.NOOP, eio.OK_BODY) == (0, 6, b'ok')


def test_spec_example_payload_text() -> None:
    # 4hello \x1e 2 \x1e 4world
    assert decode_payload('4hello\x1e2\x1e4world') == [(MESSAGE, 'hello'), (PING, ''), (MESSAGE, 'world')]
    assert encode_payload([OutPacket(MESSAGE, 'hello'), PING_PACKET, OutPacket(MESSAGE, 'world')]) == \
        '4hello\x1e2\x1e4world'


def test_spec_example_payload_binary() -> None:
    assert decode_payload('4hello\x1ebAQIDBA==') == [(MESSAGE, 'hello'), (MESSAGE, b'\x01\x02\x03\x04')]
    assert encode_payload([OutPacket(MESSAGE, 'hello'), OutPacket(MESSAGE, b'\x01\x02\x03\x04')]) == \
        '4hello\x1ebAQIDBA=='


def test_websocket_forms() -> None:
    assert OutPacket(MESSAGE, 'hello').message() == '4hello'
    assert OutPacket(MESSAGE, b'\x01\x02').message() == b'\x01\x02'  # binary as is, no type byte
    assert PONG_PROBE.message() == '3probe'
    assert decode_packet('2probe') == (PING, 'probe')
    assert decode_packet('5') == (UPGRADE, '')


def test_utf8_text_survives() -> None:
    assert decode_payload('4€\x1e4é') == [(MESSAGE, '€'), (MESSAGE, 'é')]
    assert OutPacket(MESSAGE, '€').frame() == b'\x81\x04' + '4€'.encode()


def test_encodings_are_cached_once_per_packet() -> None:
    packet = OutPacket(MESSAGE, 'x' * 10)
    assert packet.text() is packet.text()
    assert packet.frame() is packet.frame()
    binary = OutPacket(MESSAGE, b'\x00\xff')
    assert binary.text() == 'bAP8=' and binary.text() is binary.text()


@pytest.mark.parametrize('mask', [False, True])
def test_frames_parse_back(mask: bool) -> None:
    for packet, opcode, data in ((OutPacket(MESSAGE, 'hi'), OP_TEXT, '4hi'),
                                 (OutPacket(MESSAGE, b'\x01'), OP_BINARY, b'\x01')):
        parser = FrameParser(1000, expect_masked=mask)
        parser.feed(packet.frame(mask=mask))
        msg = parser.next_message()
        assert msg is not None and msg.opcode == opcode and msg.data == data


@pytest.mark.parametrize('body', ['abc', '', '4a\x1e', '\x1e4a', 'b!!!', '7x', '4a\x1e9'])
def test_malformed_payloads_are_the_peers_fault(body: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body)
    with pytest.raises(ValueError):  # python-socketio callers catch ValueError
        decode_payload(body)


def test_no_cap_on_the_number_of_packets() -> None:
    assert len(decode_payload('\x1e'.join(['4x'] * 1000))) == 1000


def test_jsonp_forms() -> None:
    assert jsonp_wrap('4a"\\', 3) == '___eio[3]("4a\\"\\\\");'
    assert jsonp_unwrap('d=4hello%1E4x') == '4hello\x1e4x'
    assert decode_payload('d=4hello%1E2') == [(MESSAGE, 'hello'), (PING, '')]
    with pytest.raises(RemoteProtocolError):
        jsonp_unwrap('x=1')


def test_open_packet_golden() -> None:
    data = handshake('lv_VI97HAXpY6yYWAAAC', ['websocket'], 25, 0, 20, 1000000)
    assert json.loads(data) == {'sid': 'lv_VI97HAXpY6yYWAAAC', 'upgrades': ['websocket'], 'pingInterval': 25000,
                                'pingTimeout': 20000, 'maxPayload': 1000000}
    # sub-second intervals are not truncated to 0; the grace period is advertised
    assert json.loads(handshake('s', [], 0.3, 0.05, 0.2, 10))['pingInterval'] == 350


def test_parse_open_reads_the_spec_example() -> None:
    info = parse_open('{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
                      '"pingTimeout":20000,"maxPayload":1000000}')
    assert (info.sid, info.upgrades, info.ping_interval, info.ping_timeout, info.max_payload) == \
        ('lv_VI97HAXpY6yYWAAAC', ('websocket',), 25.0, 20.0, 1000000)
    assert parse_open('{"sid":"a","pingInterval":1,"pingTimeout":1}').max_payload == eio_codec.DEFAULT_MAX_PAYLOAD


@pytest.mark.parametrize('data', [
    'nope', '[]', '{"upgrades":[],"pingInterval":1,"pingTimeout":1}', '{"sid":"","pingInterval":1,"pingTimeout":1}',
    '{"sid":"a","pingInterval":0,"pingTimeout":1}', '{"sid":"a","pingInterval":"1","pingTimeout":1}',
    '{"sid":"a","pingInterval":true,"pingTimeout":1}', '{"sid":"a","pingInterval":1}',
    '{"sid":"a","upgrades":"websocket","pingInterval":1,"pingTimeout":1}',
    '{"sid":"a","pingInterval":1,"pingTimeout":1,"maxPayload":-1}',
    '{"sid":"a","pingInterval":1e12,"pingTimeout":1}',
])
def test_parse_open_refuses_an_unusable_open_packet(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_open(data)
    with pytest.raises(RemoteProtocolError):
        parse_open(b'{}')
