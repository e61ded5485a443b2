"""The client's sans-IO core: session state, packets on the wire, the backoff schedule.

No sockets, no clock: strings in, events and packets out.
"""

import itertools

import pytest

from greensio._core import packet as pk
from greensio._core.client_events import (
    AckArrived,
    EventArrived,
    NamespaceConnected,
    NamespaceDisconnected,
    NamespaceRefused,
    PacketDropped,
)
from greensio._core.client_session import MAX_EARLY_EVENTS, ClientSession
from greensio._core.errors import LocalProtocolError, RemoteProtocolError
from greensio._core.reconnect import backoff_delay, backoff_schedule
from greensio.msgpack_packet import MsgPackPacket


def wire(packets):
    """Engine.IO messages for packets, flattened (binary attachments follow their text)."""
    out = []
    for p in packets:
        encoded = p.encode()
        out.extend(encoded if isinstance(encoded, list) else [encoded])
    return out


def connected(namespaces=('/',), auth=None):
    s = ClientSession()
    s.open('EIO1', list(namespaces), auth)
    for ns in namespaces:
        prefix = '' if ns == '/' else ns + ','
        assert s.receive('0' + prefix + '{"sid":"s-' + ns + '"}')[0] == NamespaceConnected(namespace=ns, sid='s-' + ns)
    return s


# -- connecting ------------------------------------------------------------------


def test_open_sends_connect_with_auth_or_empty_object():
    s = ClientSession()
    assert wire(s.open('EIO1', ['/', '/chat'], {'token': 'x'})) == ['0{"token":"x"}', '0/chat,{"token":"x"}']
    assert wire(s.open('EIO2', ['/'], None)) == ['0{}']
    assert s.eio_sid == 'EIO2'


def test_connect_gives_the_namespace_sid_and_falls_back_to_the_eio_sid():
    s = ClientSession()
    s.open('EIO1', ['/', '/a'], None)
    assert s.receive('0{"sid":"abc"}') == [NamespaceConnected(namespace='/', sid='abc')]
    assert s.receive('0/a,') == [NamespaceConnected(namespace='/a', sid='EIO1')]
    assert s.namespaces == {'/': 'abc', '/a': 'EIO1'}


@pytest.mark.parametrize('payload, args', [
    ('{"message":"nope","data":{"code":1}}', ({'message': 'nope', 'data': {'code': 1}},)),
    ('"Unable to connect"', ('Unable to connect',)),  # python-socketio sends a bare string
])
def test_connect_error_is_reported_with_its_data(payload, args):
    s = ClientSession()
    s.open('EIO1', ['/x'], None)
    assert s.receive('4/x,' + payload) == [NamespaceRefused(namespace='/x', args=args)]
    assert s.failed == ['/x'] and s.namespaces == {}


def test_unrequested_and_duplicate_connects_are_dropped():
    s = connected()
    assert isinstance(s.receive('0/other,{"sid":"z"}')[0], PacketDropped)
    assert isinstance(s.receive('0{"sid":"again"}')[0], PacketDropped)
    assert s.namespaces == {'/': 's-/'}


def test_events_before_connect_are_held_until_it_arrives():
    s = ClientSession()
    s.open('EIO1', ['/chat'], None)
    assert s.receive('2/chat,["welcome",{"m":1}]') == []
    events = s.receive('0/chat,{"sid":"c1"}')
    assert events == [NamespaceConnected(namespace='/chat', sid='c1'),
                      EventArrived(namespace='/chat', event='welcome', args=[{'m': 1}], ack_id=None)]


def test_early_events_are_bounded():
    s = ClientSession()
    s.open('EIO1', ['/'], None)
    for i in range(MAX_EARLY_EVENTS):
        assert s.receive(f'2["e",{i}]') == []
    assert isinstance(s.receive('2["e",-1]')[0], PacketDropped)
    assert len(s.receive('0{"sid":"a"}')) == MAX_EARLY_EVENTS + 1


def test_disconnect_while_connecting_is_a_refusal():
    s = ClientSession()
    s.open('EIO1', ['/'], None)
    assert s.receive('1') == [NamespaceRefused(namespace='/', args=())]


# -- events and acks --------------------------------------------------------------


def test_emit_shapes_payloads_like_python_socketio():
    s = connected(['/', '/chat'])
    assert wire([s.emit('/', 'a')]) == ['2["a"]']
    assert wire([s.emit('/', 'a', [1, 2])]) == ['2["a",[1,2]]']
    assert wire([s.emit('/', 'a', (1, 'x'))]) == ['2["a",1,"x"]']
    assert wire([s.emit('/chat', 'a', {'k': 1})]) == ['2/chat,["a",{"k":1}]']


def test_ack_ids_count_from_one_per_namespace():
    s = connected(['/', '/chat'])
    assert wire([s.emit('/', 'a', callback='cb1'), s.emit('/', 'b', callback='cb2'),
                 s.emit('/chat', 'c', callback='cb3')]) == ['21["a"]', '22["b"]', '2/chat,1["c"]']
    assert s.receive('32[7]') == [AckArrived(namespace='/', ack_id=2, args=[7], callback='cb2')]
    assert s.receive('3/chat,1[]') == [AckArrived(namespace='/chat', ack_id=1, args=[], callback='cb3')]
    assert isinstance(s.receive('32[7]')[0], PacketDropped)  # each ack once
    assert s.callbacks == {'/': {1: 'cb1'}, '/chat': {}}


def test_binary_emit_and_binary_event_and_ack():
    s = connected()
    assert wire([s.emit('/', 'up', (b'\x00\x01', {'b': bytearray(b'x')}))]) == [
        '52-["up",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]', b'\x00\x01', bytearray(b'x')]
    assert s.receive('51-["down",{"_placeholder":true,"num":0}]') == []
    assert s.receive(b'\xff') == [EventArrived(namespace='/', event='down', args=[b'\xff'], ack_id=None)]
    s.emit('/', 'q', callback='cb')
    assert s.receive('61-1[{"_placeholder":true,"num":0}]') == []
    assert s.receive(b'ok') == [AckArrived(namespace='/', ack_id=1, args=[b'ok'], callback='cb')]


def test_event_with_ack_id_and_the_ack_packet():
    s = connected(['/chat'])
    assert s.receive('2/chat,12["q",1]') == [EventArrived(namespace='/chat', event='q', args=[1], ack_id=12)]
    assert wire([s.ack('/chat', 12, None)]) == ['3/chat,12[]']
    assert wire([s.ack('/chat', 12, (1, 2))]) == ['3/chat,12[1,2]']
    assert wire([s.ack('/chat', 12, b'\x01')]) == ['61-/chat,12[{"_placeholder":true,"num":0}]', b'\x01']


def test_emit_refuses_unconnected_namespaces_and_reserved_names():
    s = connected()
    with pytest.raises(LocalProtocolError, match='/nope is not a connected namespace'):
        s.emit('/nope', 'a')
    for name in ('connect', 'disconnect', 'connect_error'):
        with pytest.raises(LocalProtocolError, match='reserved'):
            s.emit('/', name)


def test_events_for_unknown_namespaces_are_dropped():
    s = connected()
    assert s.receive('2/elsewhere,["x"]') == [PacketDropped(namespace='/elsewhere', reason='EVENT while the namespace is absent')]


# -- disconnecting ------------------------------------------------------------------


def test_server_disconnect_forgets_the_namespace_and_its_acks():
    s = connected(['/', '/chat'])
    s.emit('/chat', 'a', callback='cb')
    assert s.receive('1/chat,') == [NamespaceDisconnected(namespace='/chat')]
    assert s.namespaces == {'/': 's-/'} and '/chat' not in s.callbacks
    assert isinstance(s.receive('3/chat,1[]')[0], PacketDropped)


def test_client_disconnect_packets_and_connection_lost():
    s = connected(['/', '/chat'])
    s.emit('/', 'a', callback='cb')
    assert wire(s.disconnect()) == ['1', '1/chat,']
    assert s.connection_lost() == ['/', '/chat']
    assert s.namespaces == {} and s.callbacks == {} and s.states == {}
    # a new connection restarts the ack ids
    s.open('EIO2', ['/'], None)
    s.receive('0{"sid":"n"}')
    assert wire([s.emit('/', 'a', callback='cb')]) == ['21["a"]']


def test_connection_lost_drops_a_half_received_binary_packet():
    s = connected()
    s.receive('51-["down",{"_placeholder":true,"num":0}]')
    s.connection_lost()
    s.open('EIO2', ['/'], None)
    assert s.receive('0{"sid":"n"}') == [NamespaceConnected(namespace='/', sid='n')]


# -- bad input from the server ------------------------------------------------------


@pytest.mark.parametrize('message', [
    b'\x00',  # attachment without a binary packet
    '9',  # unknown packet type
    '2["connect"]',  # reserved event name
    '2{"not":"a list"}',
    '51-["x",{"_placeholder":true,"num":5}]',  # placeholder out of range
    '511-["x"]',  # more attachments than allowed
])
def test_protocol_violations_raise_remote_errors(message):
    s = connected()
    with pytest.raises(RemoteProtocolError):
        s.receive(message)


def test_text_while_attachments_are_pending_is_a_violation():
    s = connected()
    s.receive('51-["x",{"_placeholder":true,"num":0}]')
    with pytest.raises(RemoteProtocolError, match='pending'):
        s.receive('2["y"]')


def test_msgpack_sessions_use_one_binary_message_per_packet():
    s = ClientSession(MsgPackPacket)
    [connect] = s.open('EIO1', ['/'], {'a': 1})
    assert isinstance(connect.encode(), bytes)
    ok = MsgPackPacket(pk.CONNECT, data={'sid': 'm1'}, namespace='/').encode()
    assert s.receive(ok) == [NamespaceConnected(namespace='/', sid='m1')]
    event = MsgPackPacket(pk.EVENT, data=['bin', b'\x00'], namespace='/', id=3).encode()
    assert s.receive(event) == [EventArrived(namespace='/', event='bin', args=[b'\x00'], ack_id=3)]


# -- reconnection schedule ------------------------------------------------------------


def fixed(value):
    return lambda: value


def test_backoff_doubles_up_to_the_cap_without_jitter():
    delays = list(itertools.islice(backoff_schedule(1, 5, 0.5, random=fixed(0.5)), 6))
    assert delays == [1, 2, 4, 5, 5, 5]


def test_randomization_factor_is_a_fraction_of_the_delay():
    # random() = 0 is the low end (1 - f), random() -> 1 the high end (1 + f)
    assert backoff_delay(2, 1, 5, 0.5, random=fixed(0.0)) == pytest.approx(2.0)
    assert backoff_delay(2, 1, 5, 0.5, random=fixed(0.999999)) == pytest.approx(6.0, rel=1e-5)
    assert backoff_delay(10, 1, 5, 0.5, random=fixed(0.0)) == pytest.approx(2.5)
    assert backoff_delay(0, 0.1, 5, 0.5, random=fixed(0.0)) == pytest.approx(0.05)
    assert backoff_delay(0, 1, 5, 0, random=fixed(0.0)) == 1


def test_backoff_is_bounded_for_huge_attempt_numbers_and_never_negative():
    assert backoff_delay(10**6, 0.1, 3, 0.5, random=fixed(0.5)) == 3
    assert backoff_delay(0, 1, 5, 7, random=fixed(0.0)) == 0.0  # factor > 1 is clamped to 1


def test_schedule_length_follows_reconnection_attempts():
    assert len(list(backoff_schedule(1, 5, 0.5, attempts=3, random=fixed(0.5)))) == 3
    endless = backoff_schedule(1, 5, 0.5, attempts=0, random=fixed(0.5))
    assert len(list(itertools.islice(endless, 1000))) == 1000


def test_schedule_draws_one_random_number_per_attempt():
    draws = iter([0.0, 0.25, 0.5, 0.75])
    assert list(backoff_schedule(1, 100, 0.5, attempts=4, random=lambda: next(draws))) == [0.5, 1.5, 4, 10]
