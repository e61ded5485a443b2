"""RoomRegistry: who is connected where, rooms, pending disconnects, ack ids.
No sockets, no sleeps."""

from __future__ import annotations

import itertools

import pytest

from greensio._core.rooms import RoomRegistry


@pytest.fixture
def reg() -> RoomRegistry:
    counter = itertools.count(1)
    return RoomRegistry(lambda: f's{next(counter)}')


def assert_empty(reg: RoomRegistry) -> None:
    """Nothing left behind: no empty dicts or sets keyed by gone clients."""
    assert reg.rooms == {}
    assert reg.sid_rooms == {}
    assert reg.eio_to_sid == {}
    assert reg.pending_connect == {}
    assert reg.pending_disconnect == {}
    assert reg.callbacks == {}
    assert reg._ack_ids == {}


def test_connect_joins_the_namespace_and_its_own_room(reg: RoomRegistry) -> None:
    sid = reg.connect('e1', '/')
    assert sid == 's1'
    assert reg.rooms == {'/': {None: {'s1': 'e1'}, 's1': {'s1': 'e1'}}}
    assert reg.is_connected('s1', '/')
    assert reg.sid_from_eio_sid('e1', '/') == 's1'
    assert reg.eio_sid_from_sid('s1', '/') == 'e1'
    assert reg.get_rooms('s1', '/') == ['s1']


def test_one_sid_per_connection_and_namespace(reg: RoomRegistry) -> None:
    assert reg.connect('e1', '/') == 's1'
    assert reg.connect('e1', '/') is None
    assert reg.connect('e1', '/chat') == 's2'  # another namespace: a new sid
    assert reg.connect('e2', '/') == 's3'


def test_pre_connected_clients_are_in_their_rooms_but_not_connected(reg: RoomRegistry) -> None:
    a = reg.pre_connect('e1', '/')
    assert a == 's1' and reg.pre_connect('e1', '/') is None
    assert reg.is_pre_connected(a, '/') and not reg.is_connected(a, '/')
    assert reg.sid_from_eio_sid('e1', '/') == a and reg.get_rooms(a, '/') == [a]
    reg.confirm_connect(a, '/')
    assert reg.is_connected(a, '/') and not reg.is_pre_connected(a, '/')
    assert reg.pending_connect == {}
    b = reg.pre_connect('e2', '/')  # refused while pre-connected
    reg.disconnect(b, '/')
    assert not reg.is_pre_connected(b, '/')
    reg.disconnect(a, '/')
    assert_empty(reg)


def test_lookups_of_unknown_clients(reg: RoomRegistry) -> None:
    assert not reg.is_connected('nope', '/')
    assert reg.sid_from_eio_sid('nope', '/') is None
    assert reg.eio_sid_from_sid('nope', '/') is None
    assert reg.get_rooms('nope', '/') == []
    assert list(reg.get_participants('/', None)) == []
    with pytest.raises(ValueError):
        reg.enter_room('nope', '/', 'room')


def test_participants_of_a_room_and_of_a_union(reg: RoomRegistry) -> None:
    a, b, c = (reg.connect(f'e{i}', '/') for i in range(3))
    reg.enter_room(a, '/', 'red')
    reg.enter_room(b, '/', 'red')
    reg.enter_room(b, '/', 'blue')
    reg.enter_room(c, '/', 'blue')
    assert sorted(reg.get_participants('/', 'red')) == [(a, 'e0'), (b, 'e1')]
    union = list(reg.get_participants('/', ['red', 'blue']))
    assert sorted(union) == [(a, 'e0'), (b, 'e1'), (c, 'e2')]  # b once, not twice
    assert sorted(reg.get_participants('/', ('blue', c, 'missing'))) == [(b, 'e1'), (c, 'e2')]
    assert sorted(reg.get_participants('/', None)) == [(a, 'e0'), (b, 'e1'), (c, 'e2')]
    assert list(reg.get_participants('/', a)) == [(a, 'e0')]
    assert list(reg.get_participants('/', 'missing')) == []
    assert list(reg.get_participants('/other', None)) == []


def test_pending_disconnect_is_skipped_but_still_readable(reg: RoomRegistry) -> None:
    a, b = reg.connect('e1', '/'), reg.connect('e2', '/')
    reg.enter_room(a, '/', 'room')
    reg.enter_room(b, '/', 'room')
    assert reg.pre_disconnect(a, '/') == 'e1'
    assert not reg.is_connected(a, '/')
    assert list(reg.get_participants('/', 'room')) == [(b, 'e2')]
    assert list(reg.get_participants('/', ['room', a])) == [(b, 'e2')]
    # a disconnect handler may still look at the client's rooms
    assert sorted(reg.get_rooms(a, '/'), key=str) == sorted([a, 'room'], key=str)
    reg.disconnect(a, '/')
    assert reg.pending_disconnect == {}
    assert list(reg.get_participants('/', None)) == [(b, 'e2')]


def test_iterating_participants_while_they_leave(reg: RoomRegistry) -> None:
    sids = [reg.connect(f'e{i}', '/') for i in range(5)]
    seen = []
    for sid, _ in reg.get_participants('/', None):
        seen.append(sid)
        reg.disconnect(sid, '/')
    assert sorted(seen) == sorted(sids)
    assert_empty(reg)


def test_leave_and_close_room_clean_up(reg: RoomRegistry) -> None:
    a, b = reg.connect('e1', '/'), reg.connect('e2', '/')
    reg.enter_room(a, '/', 'room')
    reg.enter_room(b, '/', 'room')
    reg.enter_room(a, '/', ('tuple', 1))
    reg.leave_room(a, '/', ('tuple', 1))
    assert ('tuple', 1) not in reg.rooms['/']
    reg.leave_room(a, '/', 'never-joined')  # silently ignored
    reg.leave_room('ghost', '/', 'room')
    reg.leave_room(a, '/nowhere', 'room')
    reg.close_room('room', '/')
    assert 'room' not in reg.rooms['/']
    assert reg.get_rooms(a, '/') == [a] and reg.get_rooms(b, '/') == [b]
    reg.close_room('room', '/')  # twice is fine
    reg.disconnect(a, '/')
    reg.disconnect(b, '/')
    assert_empty(reg)


def test_leaving_every_room_by_hand_leaves_nothing(reg: RoomRegistry) -> None:
    a = reg.connect('e1', '/chat')
    reg.enter_room(a, '/chat', 'x')
    for room in (None, a, 'x'):
        reg.leave_room(a, '/chat', room)
    assert reg.rooms == {} and reg.sid_rooms == {}


def test_disconnect_cleans_everything(reg: RoomRegistry) -> None:
    a = reg.connect('e1', '/')
    b = reg.connect('e1', '/chat')
    reg.enter_room(a, '/', 'room')
    reg.add_callback(a, print)
    reg.add_callback(b, print)
    reg.pre_disconnect(a, '/')
    reg.disconnect(a, '/')
    reg.disconnect(b, '/chat')
    assert_empty(reg)
    reg.disconnect(a, '/')  # twice is harmless
    assert_empty(reg)


def test_ack_ids_are_per_sid_counters_from_one(reg: RoomRegistry) -> None:
    a, b = reg.connect('e1', '/'), reg.connect('e2', '/')
    f, g, h = (lambda: 1), (lambda: 2), (lambda: 3)
    assert reg.add_callback(a, f) == 1
    assert reg.add_callback(a, g) == 2
    assert reg.add_callback(b, h) == 1
    assert reg.pop_callback(a, 2) is g
    assert reg.pop_callback(a, 2) is None  # an ack is delivered once
    assert reg.pop_callback(a, 99) is None
    assert reg.pop_callback('ghost', 1) is None
    assert reg.pop_callback(a, 1) is f
    assert reg.add_callback(a, f) == 3  # ids are not reused while connected
    reg.disconnect(a, '/')
    assert reg.pop_callback(a, 3) is None
    assert a not in reg.callbacks


def test_same_room_name_in_two_namespaces_is_two_rooms(reg: RoomRegistry) -> None:
    a = reg.connect('e1', '/')
    b = reg.connect('e2', '/chat')
    reg.enter_room(a, '/', 'room')
    reg.enter_room(b, '/chat', 'room')
    assert list(reg.get_participants('/', 'room')) == [(a, 'e1')]
    reg.close_room('room', '/chat')
    assert list(reg.get_participants('/', 'room')) == [(a, 'e1')]


def test_no_client_enters_another_clients_own_room(reg: RoomRegistry) -> None:
    a, b = reg.connect('e1', '/'), reg.connect('e2', '/')
    assert reg.is_sid_room('/', a) and not reg.is_sid_room('/', 'lobby') and not reg.is_sid_room('/chat', a)
    with pytest.raises(ValueError, match='cannot enter a sid room'):
        reg.enter_room(b, '/', a)  # b would receive a's private messages
    assert [sid for sid, _ in reg.get_participants('/', a)] == [a]
    reg.enter_room(a, '/', a)  # its own room: nothing changes
    c = reg.connect('e3', '/chat')
    reg.enter_room(c, '/chat', a)  # a has no room in /chat: an ordinary name there
    reg.disconnect(a, '/')
    reg.enter_room(b, '/', a)  # a is gone: the name is free again
