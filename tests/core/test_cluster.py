"""The cluster wire kinds and bookkeeping, without a broker or a clock.

``_core.pubsub`` builds and validates ``greensio.request``, ``greensio.response``,
``greensio.heartbeat`` and the ``request`` field of an ``emit``;
``_core.cluster`` tracks membership and each request's answers.  Times are
plain numbers passed in.
"""

from __future__ import annotations

import json

import pytest

from greensio._core import cluster, pubsub
from greensio._core.cluster import ACKS, REPLIES, Gathering, Membership

HOST = 'a' * 32
OTHER = 'b' * 32


def roundtrip(message: dict) -> pubsub.Message:
    return pubsub.decode(json.dumps(message).encode(), json)


def invalid(message: dict, match: str) -> None:
    with pytest.raises(pubsub.InvalidMessage, match=match):
        roundtrip(message)


# -- the wire ------------------------------------------------------------------------------

def test_a_broadcast_that_collects_acks_is_an_emit_python_socketio_understands() -> None:
    factory = pubsub.MessageFactory(HOST)
    wire = factory.emit(event='q', args=['x'], namespace='/', room='r', callback=(f'{HOST}.g1', '/', 0),
                        request=f'{HOST}.g1', timeout=5)
    # python-socketio reads method, event, data, room, callback; it ignores "request"
    assert wire['method'] == 'emit' and wire['callback'] == [f'{HOST}.g1', '/', 0] and wire['request'] == f'{HOST}.g1'
    message = roundtrip(wire)
    assert isinstance(message, pubsub.EmitMessage) and message.request == f'{HOST}.g1' and message.timeout == 5
    assert roundtrip(factory.emit(event='q', args=[], namespace='/')).request is None
    invalid({**wire, 'callback': None}, 'without a "callback"')
    invalid({**wire, 'request': 7}, '"request"')
    for timeout in (None, 0, -1, 'soon', pubsub.MAX_ACK_TIMEOUT * 2):
        invalid({**wire, 'timeout': timeout}, '"timeout"')


def test_requests_round_trip_and_carry_binary_arguments() -> None:
    factory = pubsub.MessageFactory(HOST)
    join = roundtrip(factory.request(pubsub.SOCKETS_JOIN, request='r1', namespace='/chat', to=['a', 'b'], skip='c',
                                     room='vip'))
    assert isinstance(join, pubsub.RequestMessage)
    assert (join.op, join.namespace, join.to, join.skip, join.room, join.reply) == (
        'sockets_join', '/chat', ['a', 'b'], 'c', 'vip', False)
    emit = roundtrip(factory.request(pubsub.SERVER_EMIT, request='r2', namespace='/', event='reload',
                                     args=[{'blob': b'\x00\x01'}], reply=True))
    assert emit.event == 'reload' and emit.args == [{'blob': b'\x00\x01'}] and emit.reply
    close = roundtrip(factory.request(pubsub.DISCONNECT_SOCKETS, request='r3', namespace='/', close=True))
    assert close.close and close.to is None
    with pytest.raises(ValueError):
        factory.request('format_disk', request='r', namespace='/')


@pytest.mark.parametrize(('change', 'match'), [
    ({'op': 'format_disk'}, 'unknown request "op"'),
    ({'op': 7}, 'unknown request "op"'),
    ({'request': ['x']}, '"request"'),
    ({'request': 'x' * 200}, '"request"'),
    ({'to': {'a': 1}}, '"to"'),
    ({'skip': [None]}, '"skip"'),
    ({'reply': 'yes'}, '"reply"'),
    ({'close': 1}, '"close"'),
    ({'msg_id': None}, 'msg_id'),
    ({'namespace': 'chat'}, 'namespace'),
])
def test_a_malformed_request_is_refused(change: dict, match: str) -> None:
    wire = pubsub.MessageFactory(HOST).request(pubsub.FETCH_SOCKETS, request='r', namespace='/', reply=True)
    invalid({**wire, **change}, match)


def test_room_operations_need_a_room_and_server_emits_an_event() -> None:
    factory = pubsub.MessageFactory(HOST)
    wire = factory.request(pubsub.SOCKETS_LEAVE, request='r', namespace='/', room='x')
    invalid({**wire, 'room': None}, 'without a "room"')
    invalid({**wire, 'room': {'x': 1}}, '"room"')
    wire = factory.request(pubsub.SERVER_EMIT, request='r', namespace='/', event='e', args=[1])
    invalid({**wire, 'event': None}, 'string "event"')
    invalid({**wire, 'data': 'x'}, '"data" must be a list')


def test_responses_round_trip_one_payload_each() -> None:
    factory = pubsub.MessageFactory(OTHER)
    count = roundtrip(factory.response(origin_host_id=HOST, request='r', count=3, client=True))
    assert isinstance(count, pubsub.ResponseMessage)
    assert (count.host_id, count.sender, count.count, count.client) == (HOST, OTHER, 3, True)
    socket = {'sid': 's', 'namespace': '/', 'rooms': ['s', 'r', 7], 'handshake': {'auth': {}}, 'data': {}}
    sockets = roundtrip(factory.response(origin_host_id=HOST, request='r', sockets=[socket]))
    assert sockets.sockets == [socket] and sockets.count is None
    answer = roundtrip(factory.response(origin_host_id=HOST, request='r', handled=True, answer={'b': b'\xff'}))
    assert answer.handled and answer.answer == {'b': b'\xff'}
    batch = roundtrip(factory.response(origin_host_id=HOST, request='r', answers=[[], ['a'], [1, b'\x00']]))
    assert batch.answers == [[], ['a'], [1, b'\x00']] and batch.count is None
    nothing = roundtrip(factory.response(origin_host_id=HOST, request='r', handled=False))
    assert not nothing.handled and nothing.answer is None


@pytest.mark.parametrize(('change', 'match'), [
    ({'count': -1}, '"count"'),
    ({'count': pubsub.MAX_COUNT + 1}, '"count"'),
    ({'count': 10 ** 30}, '"count"'),
    ({'count': 1.5}, '"count"'),
    ({'count': True}, '"count"'),
    ({'count': 1, 'client': 'yes'}, '"client"'),
    ({'sockets': 'all'}, '"sockets"'),
    ({'sockets': [{'sid': 's'}]}, 'namespace'),
    ({'sockets': [{'sid': 's', 'namespace': '/', 'rooms': [{}], 'handshake': {}, 'data': {}}]}, '"rooms"'),
    ({'sockets': [{'sid': 's', 'namespace': '/', 'rooms': [], 'handshake': [], 'data': {}}]}, '"handshake"'),
    ({'sockets': [7]}, 'must be an object'),
    ({'handled': True, 'answer': [1, 2]}, 'one value'),
    ({'answers': 'x'}, '"answers" must be a list'),
    ({'answers': [1, 2]}, 'argument lists'),
    ({'sender': None}, '"sender"'),
])
def test_a_malformed_response_is_refused(change: dict, match: str) -> None:
    wire = pubsub.MessageFactory(OTHER).response(origin_host_id=HOST, request='r', handled=False)
    del wire['handled']
    invalid({**wire, **change}, match)


def test_heartbeats_announce_a_bounded_interval() -> None:
    factory = pubsub.MessageFactory(HOST)
    beat = roundtrip(factory.heartbeat(interval=2.0, hello=True))
    assert isinstance(beat, pubsub.HeartbeatMessage) and beat.interval == 2.0 and beat.hello and not beat.leaving
    assert roundtrip(factory.heartbeat(interval=1, leaving=True)).leaving
    for interval in (0, -1, 1e9, '2', None, float('inf')):
        invalid({**factory.heartbeat(interval=1.0), 'interval': interval}, '"interval"')


# -- membership ----------------------------------------------------------------------------

def test_a_worker_is_dead_after_missing_its_heartbeats() -> None:
    members = Membership(misses=3)
    assert members.heard('a', 1.0, now=0) is True
    assert members.heard('a', 1.0, now=1) is False
    assert members.heard('b', 0.5, now=1) is True
    assert members.live(now=2.4) == ['a', 'b']
    assert members.live(now=2.6) == ['a']  # b announced 0.5 s, last heard at 1
    assert members.live(now=4.1) == []
    members.heard('c', 1.0, now=5)
    members.left('c')
    assert members.live(now=5) == []


def test_forged_host_ids_cannot_grow_the_membership_past_its_bound() -> None:
    members = Membership(max_workers=3)
    for i in range(10):
        members.heard(f'w{i}', 1.0, now=0)
    assert members.live(now=0) == ['w0', 'w1', 'w2']
    assert members.heard('late', 1.0, now=10) is True  # the dead ones made room
    assert members.live(now=10) == ['late']


# -- gatherings ----------------------------------------------------------------------------

def test_acks_finish_when_every_worker_counted_and_every_client_answered() -> None:
    changes = []
    gathering = Gathering('r', ACKS, ['w1', 'w2'], deadline=5)
    gathering.on_change = lambda: changes.append(1)
    gathering.count('me', 1)
    gathering.answer('me', 'a')
    gathering.count('w1', 2)
    assert not gathering.finished and gathering.missing == 3  # 2 of w1, and w2 said nothing yet: 1
    gathering.answer('w1', 'b')
    gathering.count('w2', 0)
    assert not gathering.finished and gathering.missing == 1
    gathering.answer('w1', 'c')
    assert gathering.finished and gathering.missing == 0
    assert gathering.answers == ['a', 'b', 'c'] and len(changes) == 6
    assert not gathering.expired(4.9) and gathering.expired(5)


def test_forged_or_repeated_answers_beyond_a_count_are_dropped() -> None:
    gathering = Gathering('r', ACKS, ['w1'], deadline=5)
    assert gathering.count('w1', 1)
    assert not gathering.count('w1', 1000)  # a second count is ignored
    assert gathering.answer('w1', 'ok')
    assert not gathering.answer('w1', 'forged')
    assert gathering.answers == ['ok'] and gathering.finished


def test_a_dead_worker_is_not_waited_for_and_its_clients_are_missing() -> None:
    gathering = Gathering('r', ACKS, ['w1', 'w2', 'w3'], deadline=60)
    gathering.count('w1', 1)
    gathering.answer('w1', 'x')
    gathering.count('w2', 2)
    gathering.answer('w2', 'y')
    gathering.alive(['w1', 'w3'])  # w2 died with one answer owed
    assert not gathering.finished  # w3 has not counted yet
    gathering.alive(['w1'])  # w3 died before it counted
    assert gathering.finished and gathering.missing == 1 and gathering.silent == {'w3'}


def test_answers_without_a_sender_count_as_a_python_socketio_worker() -> None:
    gathering = Gathering('r', ACKS, [], deadline=5)
    gathering.want_one = True
    gathering.count('me', 0)
    assert not gathering.finished  # the target may be a client of a worker that sends no counts
    gathering.answer(cluster.UNKNOWN, 'from python-socketio')
    assert gathering.finished and gathering.answers == ['from python-socketio']


def test_replies_finish_with_one_answer_per_live_worker() -> None:
    gathering = Gathering('r', REPLIES, ['w1', 'w2'], deadline=5)
    gathering.reply('me', [1, 2])
    gathering.reply('w1', [3])
    assert not gathering.reply('w1', [99])  # one reply per worker
    assert not gathering.finished and gathering.missing == 1
    gathering.alive(['me', 'w1'])
    assert gathering.finished and gathering.missing == 0 and gathering.answers == [1, 2, 3]
    with pytest.raises(ValueError):
        Gathering('r', 'all', [], deadline=1)
