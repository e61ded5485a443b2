"""The Socket.IO v5 codec: golden strings from the protocol spec, round trips,
and every named limit on what a peer may send.  No sockets, no sleeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from greensio._core import packet as pk
from greensio._core import safejson
from greensio._core.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from greensio._core.packet import Packet

PH0 = {'_placeholder': True, 'num': 0}


def decode(text: str, *attachments: bytes) -> Packet:
    pkt = Packet(encoded_packet=text)
    done = None
    for i, blob in enumerate(attachments):
        done = pkt.add_attachment(blob)
        assert done is (i == len(attachments) - 1)
    if attachments:
        assert done is True
    return pkt


def refused(text: str, match: str | None = None) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        Packet(encoded_packet=text)
    return info.value


# -- golden strings from the Socket.IO v5 spec ------------------------------------

GOLDEN: list[tuple[str, int, str, Any, int | None]] = [
    # (wire text, type, namespace, data, ack id)
    ('0', pk.CONNECT, '/', None, None),
    ('0/admin,{"token":"123"}', pk.CONNECT, '/admin', {'token': '123'}, None),
    ('0{"sid":"oSO0OpakMV_3jnilAAAA"}', pk.CONNECT, '/', {'sid': 'oSO0OpakMV_3jnilAAAA'}, None),
    ('1/admin,', pk.DISCONNECT, '/admin', None, None),
    ('2["hello",1]', pk.EVENT, '/', ['hello', 1], None),
    ('2/admin,456["project:delete",123]', pk.EVENT, '/admin', ['project:delete', 123], 456),
    ('3/admin,456[]', pk.ACK, '/admin', [], 456),
    ('4{"message":"Not authorized"}', pk.CONNECT_ERROR, '/', {'message': 'Not authorized'}, None),
    ('4/admin,{"message":"Not authorized"}', pk.CONNECT_ERROR, '/admin', {'message': 'Not authorized'}, None),
]


@pytest.mark.parametrize(('text', 'ptype', 'namespace', 'data', 'ack_id'), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_decode(text: str, ptype: int, namespace: str, data: Any, ack_id: int | None) -> None:
    pkt = decode(text)
    assert (pkt.packet_type, pkt.namespace, pkt.data, pkt.id) == (ptype, namespace, data, ack_id)
    assert pkt.attachment_count == 0


@pytest.mark.parametrize(('text', 'ptype', 'namespace', 'data', 'ack_id'), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_encode(text: str, ptype: int, namespace: str, data: Any, ack_id: int | None) -> None:
    assert Packet(ptype, data, namespace, ack_id).encode() == text


def test_golden_binary_event() -> None:
    blob = b'\x01\x02\x03'
    text = '51-["hello",{"_placeholder":true,"num":0}]'
    pkt = decode(text, blob)
    assert (pkt.packet_type, pkt.namespace, pkt.id) == (pk.BINARY_EVENT, '/', None)
    assert pkt.data == ['hello', blob]
    assert Packet(pk.EVENT, ['hello', blob]).encode() == [text, blob]


def test_golden_binary_ack() -> None:
    blob = b'\x00\xff'
    text = '61-/admin,456[{"_placeholder":true,"num":0}]'
    pkt = decode(text, blob)
    assert (pkt.packet_type, pkt.namespace, pkt.id, pkt.data) == (pk.BINARY_ACK, '/admin', 456, [blob])
    assert Packet(pk.ACK, [blob], '/admin', 456).encode() == [text, blob]


def test_binary_attachment_count_needs_no_padding() -> None:
    blobs = [bytes([i]) for i in range(pk.MAX_ATTACHMENTS)]
    encoded = Packet(pk.EVENT, ['many', *blobs]).encode()
    assert encoded[0].startswith(f'5{pk.MAX_ATTACHMENTS}-["many",')
    assert decode(encoded[0], *encoded[1:]).data == ['many', *blobs]


def test_bytes_inside_a_nested_tuple_become_attachments() -> None:
    # python-socketio misses these and fails in json.dumps
    encoded = Packet(pk.EVENT, ['ev', {'pair': (b'\x01', 2)}, (3, [b'\x02'])]).encode()
    assert encoded[0] == '52-["ev",{"pair":[{"_placeholder":true,"num":0},2]},[3,[{"_placeholder":true,"num":1}]]]'
    assert encoded[1:] == [b'\x01', b'\x02']
    assert decode(encoded[0], *encoded[1:]).data == ['ev', {'pair': [b'\x01', 2]}, [3, [b'\x02']]]


@pytest.mark.parametrize(('data', 'binary'), [
    (None, False), ('text', False), (b'', True), (bytearray(), True),
    (['ev', {'a': [1, {'b': 'x'}]}, (2, [3])], False),
    (['ev', {'a': [1, {'b': 'x'}]}, (2, [3, {'c': b'\x00'}])], True),
    ({'deep': [[[[(bytearray(b'y'),)]]]]}, True),
])
def test_binary_found_at_any_depth(data: Any, binary: bool) -> None:
    assert Packet.data_is_binary(data) is binary


# -- round trips ---------------------------------------------------------------------

ROUND_TRIP_DATA: list[Any] = [
    ['ev'],
    ['ev', None, True, False, 0, -1, 1.5, 'ünïcødé ✓', '', [], {}],
    ['ev', {'nested': {'deep': [1, [2, [3]]]}}],
    ['ev', 'a\\', '"quoted"', '\u2028\x1e\x00'],
    ['ev', 2**53 - 1, -(2**53)],
    ['bin', b'', bytearray(b'ba'), {'x': [b'\x00' * 1000, {'y': b'z'}]}],
]


@pytest.mark.parametrize('data', ROUND_TRIP_DATA)
@pytest.mark.parametrize('namespace', ['/', '/chat', '/a/b'])
@pytest.mark.parametrize('ack_id', [None, 0, 7, 10**15])
def test_event_round_trip(data: Any, namespace: str, ack_id: int | None) -> None:
    encoded = Packet(pk.EVENT, data, namespace, ack_id).encode()
    if isinstance(encoded, list):
        pkt = decode(encoded[0], *encoded[1:])
        assert pkt.packet_type == pk.BINARY_EVENT
    else:
        pkt = decode(encoded)
        assert pkt.packet_type == pk.EVENT
    expected = json.loads(json.dumps(data, default=lambda b: '<bin>'))  # shape only
    assert json.loads(json.dumps(pkt.data, default=lambda b: '<bin>')) == expected
    assert Packet.reconstruct_binary(pkt.data, []) == pkt.data
    assert _bytes_equal(pkt.data, data)
    assert (pkt.namespace, pkt.id) == (namespace, ack_id)


def _bytes_equal(got: Any, want: Any) -> bool:
    if isinstance(want, (bytes, bytearray)):
        return type(got) is bytes and got == bytes(want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_bytes_equal, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_bytes_equal(got[k], want[k]) for k in want)
    return got == want and type(got) is type(want)


@pytest.mark.parametrize('data', [[], [1, 'two'], [{'x': None}], [b'raw', 'text']])
def test_ack_round_trip(data: Any) -> None:
    encoded = Packet(pk.ACK, data, '/', 3).encode()
    pkt = decode(*encoded) if isinstance(encoded, list) else decode(encoded)
    assert pkt.packet_type in (pk.ACK, pk.BINARY_ACK)
    assert (pkt.id, pkt.data) == (3, data)


def test_namespace_query_string_is_not_part_of_the_namespace() -> None:
    assert decode('0/admin?token=abc,{"x":1}').namespace == '/admin'


def test_binary_is_refused_where_the_protocol_has_no_binary_form() -> None:
    with pytest.raises(LocalProtocolError):
        Packet(pk.CONNECT, {'k': b'bytes'})
    assert issubclass(LocalProtocolError, ValueError) and issubclass(RemoteProtocolError, ValueError)


def test_encoding_refuses_nan_so_it_never_reaches_a_peer() -> None:
    with pytest.raises(ValueError):
        Packet(pk.EVENT, ['ev', float('nan')]).encode()
    with pytest.raises(ValueError):
        Packet(pk.EVENT, ['ev', {'x': float('inf')}]).encode()


# -- limits: packet type, attachments ---------------------------------------------------


@pytest.mark.parametrize('text', ['', '7', '9["x"]', 'x', ' 2["x"]', '-1', '\x00'])
def test_unknown_packet_type(text: str) -> None:
    refused(text, 'unknown packet type')


def test_binary_message_is_not_a_packet_header() -> None:
    with pytest.raises(RemoteProtocolError):
        Packet(encoded_packet=b'2["x"]')


def test_max_attachments_is_the_limit() -> None:
    placeholders = ','.join(json.dumps({'_placeholder': True, 'num': i}) for i in range(pk.MAX_ATTACHMENTS))
    pkt = Packet(encoded_packet=f'5{pk.MAX_ATTACHMENTS}-["x",{placeholders}]')
    assert pkt.attachment_count == pk.MAX_ATTACHMENTS
    refused(f'5{pk.MAX_ATTACHMENTS + 1}-["x",{placeholders}]', 'attachments')
    refused('5999-["x"]', 'attachment')


@pytest.mark.parametrize('text', ['50-["x"]', '60-3[]', '500-["x"]'])
def test_zero_attachments_refused(text: str) -> None:
    refused(text, 'attachments')


@pytest.mark.parametrize(
    'text',
    ['5["x",{"_placeholder":true,"num":0}]', '5-["x"]', '5a-["x"]', '51["x"]', '6-1[]', '51234-["x"]', '5'],
)
def test_binary_header_without_a_valid_count(text: str) -> None:
    refused(text)


def test_attachment_beyond_the_declared_count() -> None:
    pkt = Packet(encoded_packet='51-["x",{"_placeholder":true,"num":0}]')
    assert pkt.add_attachment(b'a') is True
    with pytest.raises(RemoteProtocolError, match='Unexpected binary attachment'):
        pkt.add_attachment(b'b')


def test_attachments_complete_in_order_of_their_num() -> None:
    pkt = Packet(encoded_packet='52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]')
    assert pkt.add_attachment(b'first') is False
    assert pkt.add_attachment(bytearray(b'second')) is True
    assert pkt.data == ['x', b'second', b'first']


# -- limits: placeholders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    'placeholder',
    [
        {'_placeholder': True, 'num': 0, 'extra': 1},  # extra key
        {'_placeholder': True},  # no num
        {'_placeholder': True, 'num': 1},  # out of range (1 declared)
        {'_placeholder': True, 'num': -1},
        {'_placeholder': True, 'num': 0.0},  # not an int
        {'_placeholder': True, 'num': '0'},
        {'_placeholder': True, 'num': True},  # bool is not an int here
        {'_placeholder': True, 'num': None},
        {'_placeholder': 1, 'num': 0},  # _placeholder not exactly true
        {'_placeholder': 'true', 'num': 0},
        {'_placeholder': False, 'num': 0},
        {'_placeholder': None, 'num': 0},
    ],
    ids=repr,
)
@pytest.mark.parametrize('where', ['top', 'nested-list', 'nested-dict'])
def test_bad_placeholder(placeholder: dict, where: str) -> None:
    item: Any = placeholder
    if where == 'nested-list':
        item = [1, [2, item]]
    elif where == 'nested-dict':
        item = {'a': {'b': item}}
    refused('51-' + json.dumps(['x', item]), 'placeholder')


def test_placeholder_num_bound_follows_the_declared_count() -> None:
    ok = Packet(encoded_packet='53-["x",{"_placeholder":true,"num":2}]')
    assert ok.attachment_count == 3
    refused('52-["x",{"_placeholder":true,"num":2}]', 'placeholder')


def test_placeholders_in_a_text_event_are_plain_data() -> None:
    # not a binary packet: nothing will be substituted, so nothing to validate
    assert decode('2["x",{"_placeholder":true,"num":99}]').data == ['x', {'_placeholder': True, 'num': 99}]


# -- limits: ack id, namespace ---------------------------------------------------------------------


def test_max_ack_id_digits() -> None:
    longest = '9' * pk.MAX_ACK_ID_DIGITS
    assert decode(f'2{longest}["x"]').id == int(longest)
    assert decode(f'3/ns,{longest}[]').id == int(longest)
    refused('2' + '1' * (pk.MAX_ACK_ID_DIGITS + 1) + '["x"]', 'ack id')
    refused('2' + '1' * 100 + '["x"]', 'ack id')
    refused('3' + '1' * 5000 + '[]', 'ack id')


def test_ack_needs_an_id_and_a_list() -> None:
    refused('3[]', 'ACK')
    refused('31{"a":1}', 'ACK')
    refused('31"x"', 'ACK')
    refused('31', 'ACK')


def test_max_namespace_length() -> None:
    longest = '/' + 'n' * (pk.MAX_NAMESPACE_LENGTH - 1)
    assert decode(f'0{longest},').namespace == longest
    assert decode(f'2{longest},["x"]').namespace == longest
    refused(f'0{longest}n,', 'namespace too long')
    refused('2/' + 'a' * 100_000 + ',["x"]', 'namespace too long')
    refused('0/' + 'a' * 100_000, 'namespace too long')  # no comma at all


# -- limits: payload shape per type -----------------------------------------------------------------


@pytest.mark.parametrize(
    'text',
    [
        '0[]', '0"token"', '0null1',  # CONNECT: object or nothing
        '1[]', '1"bye"',  # DISCONNECT: object or nothing
        '2', '2[]', '2{}', '2"x"', '2[1]', '2[null]', '2[["x"]]', '2null', '2true',  # EVENT
        '51-{"_placeholder":true,"num":0}', '51-[{"_placeholder":true,"num":0}]',  # BINARY_EVENT
        '4', '4[]', '41',  # CONNECT_ERROR: object or string
    ],
)
def test_payload_shape(text: str) -> None:
    refused(text)


@pytest.mark.parametrize('event', sorted(pk.RESERVED_EVENTS))
def test_reserved_event_names_refused(event: str) -> None:
    refused(json.dumps(event).join(['2[', ']']), 'reserved event')
    refused('2/admin,12' + json.dumps([event, 1]), 'reserved event')
    refused('51-' + json.dumps([event, PH0]), 'reserved event')
    assert decode(json.dumps(event.upper()).join(['2[', ']'])).data == [event.upper()]


def test_spec_reserved_names_are_covered() -> None:
    assert {'connect', 'disconnect', 'connect_error'} <= pk.RESERVED_EVENTS
    # 'message' is an ordinary event in python-socketio
    assert 'message' not in pk.RESERVED_EVENTS


# -- limits: JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'payload',
    ['NaN', 'Infinity', '-Infinity', '{"a":[NaN]}', '1e999', '-1e999', '[1E400]'],
)
def test_non_finite_numbers_refused(payload: str) -> None:
    refused(f'2["ev",{payload}]', 'JSON')
    refused(f'3/x,1[{payload}]', 'JSON')


@pytest.mark.parametrize(
    'text', ['2["x",', '2["x"]]', "2['x']", '2["x",]', '2["x" 1]', '0{"a":1', '2["\\x"]', '2["x"]garbage']
)
def test_invalid_json(text: str) -> None:
    refused(text, 'JSON')


def test_huge_integers() -> None:
    limit = safejson.MAX_INT_DIGITS
    assert decode(f'2["x",{"9" * limit}]').data[1] == int('9' * limit)
    assert decode(f'2["x",-{"9" * limit}]').data[1] == -int('9' * limit)
    refused(f'2["x",{"9" * (limit + 1)}]', 'JSON')
    refused(f'2["x",-{"9" * (limit + 1)}]', 'JSON')
    refused(f'2["x",{"1" * 50_000}]', 'JSON')


def test_deep_nesting() -> None:
    depth = safejson.MAX_DEPTH
    inner = '[' * (depth - 1) + ']' * (depth - 1)  # the event list itself is one level
    assert decode(f'2["x",{inner}]').packet_type == pk.EVENT
    refused(f'2["x",[{inner}]]', 'JSON')
    refused('2["x",' + '{"a":' * 10_000 + '1' + '}' * 10_000 + ']', 'JSON')
    refused('2["x",' + '[' * 200_000 + ']' * 200_000 + ']', 'JSON')


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps(['x', '[' * 1000, '{' * 1000, 'a\\"[[['])
    assert decode('2' + text).data[1] == '[' * 1000


def test_errors_are_remote_protocol_errors() -> None:
    err = refused('2["x",NaN]')
    assert isinstance(err, ProtocolError) and isinstance(err, ValueError)
