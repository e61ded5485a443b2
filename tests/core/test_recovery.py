"""Connection state recovery in the core: the server's log and saved sessions, the client's pid and offset."""

from __future__ import annotations

import pytest

from greensio._core import packet as pk
from greensio._core.client_events import EventArrived, NamespaceConnected
from greensio._core.client_session import ClientSession
from greensio._core.recovery import IN_FLIGHT_MARGIN, RecoveryLog

HEARTBEAT = 45.0
MARGIN = HEARTBEAT + IN_FLIGHT_MARGIN


def log(window: float = 120.0, **kwargs) -> RecoveryLog:
    return RecoveryLog(window, HEARTBEAT, **kwargs)


def save(rec: RecoveryLog, now: float, pid: str = 'p1', sid: str = 's1', rooms=('s1', 'room'), ns: str = '/',
         data=None) -> None:
    rec.save(pid=pid, sid=sid, namespace=ns, rooms=rooms, data=data if data is not None else {}, now=now)


def test_offsets_count_up_and_ride_as_the_last_argument():
    rec = log()
    assert rec.last_offset == '0'
    assert rec.record('/', None, None, ['news', 1], now=0) == ['news', 1, '1']
    assert rec.record('/', 'room', 's2', ['news', 2], now=0) == ['news', 2, '2']
    assert rec.last_offset == '2'


def test_a_client_gets_what_it_missed_in_order_and_nothing_else():
    rec = log()
    rec.record('/', None, None, ['seen'], now=100)
    save(rec, now=101, data={'user': 'ann'})
    rec.record('/', None, None, ['everyone'], now=102)
    rec.record('/', 'room', None, ['in room'], now=103)
    rec.record('/', 'other', None, ['other room'], now=104)
    rec.record('/', 's1', None, ['direct'], now=105)
    rec.record('/', 'room', 's1', ['skipped me'], now=106)
    rec.record('/', 'room', ['x', 'room'], ['skipped my room'], now=107)
    rec.record('/chat', None, None, ['other namespace'], now=108)
    rec.record('/', ['other', 'room'], None, ['one of my rooms'], now=109)
    restored = rec.restore('/', {'pid': 'p1', 'offset': '1'}, now=110)
    assert restored is not None
    assert restored.sid == 's1' and restored.data == {'user': 'ann'} and restored.rooms == {'s1', 'room'}
    assert rec.missed(restored) == [['everyone', '2'], ['in room', '3'], ['direct', '5'], ['one of my rooms', '9']]


def test_a_pid_recovers_once():
    rec = log()
    save(rec, now=0)
    assert rec.restore('/', {'pid': 'p1'}, now=1) is not None
    assert rec.restore('/', {'pid': 'p1'}, now=1) is None
    assert len(rec) == 0


def test_a_client_that_received_nothing_still_recovers():
    rec = log()
    save(rec, now=0)
    rec.record('/', None, None, ['after'], now=1)
    restored = rec.restore('/', {'pid': 'p1'}, now=2)
    assert restored is not None and rec.missed(restored) == [['after', '1']]


def test_events_near_the_drop_are_replayed_when_the_client_has_no_offset():
    rec = log()
    rec.record('/', None, None, ['long before'], now=0)
    rec.record('/', None, None, ['maybe lost in flight'], now=1000 - MARGIN + 1)
    save(rec, now=1000)
    restored = rec.restore('/', {'pid': 'p1'}, now=1001)
    assert restored is not None and rec.missed(restored) == [['maybe lost in flight', '2']]


def test_an_offset_means_nothing_before_it_is_replayed():
    rec = log()
    rec.record('/', None, None, ['a'], now=999)
    rec.record('/', None, None, ['b'], now=999)
    save(rec, now=1000)
    restored = rec.restore('/', {'pid': 'p1', 'offset': '1'}, now=1001)
    assert restored is not None and rec.missed(restored) == [['b', '2']]


def test_an_old_offset_still_recovers_when_the_log_was_trimmed_long_before_the_drop():
    rec = log(window=10)
    rec.record('/', None, None, ['received'], now=0)
    rec.record('/', 'elsewhere', None, ['not for it'], now=1)
    rec.record('/', 'elsewhere', None, ['not for it either'], now=500)  # trims both
    save(rec, now=1000)
    rec.record('/', None, None, ['after'], now=1001)
    restored = rec.restore('/', {'pid': 'p1', 'offset': '1'}, now=1002)
    assert restored is not None and rec.missed(restored) == [['after', '4']]


def test_a_session_that_needed_a_trimmed_event_is_not_recovered():
    rec = log(max_entries=3)
    save(rec, now=0)
    for i in range(4):
        rec.record('/', None, None, ['e', i], now=1)
    assert rec.restore('/', {'pid': 'p1'}, now=2) is None


def test_sessions_expire_after_the_window():
    rec = log(window=10)
    save(rec, now=0)
    assert rec.restore('/', {'pid': 'p1'}, now=10) is None
    assert len(rec) == 0


def test_saved_sessions_are_bounded_oldest_first():
    rec = log(max_sessions=2)
    for i in range(3):
        save(rec, now=i, pid=f'p{i}')
    assert len(rec) == 2
    assert rec.restore('/', {'pid': 'p0'}, now=3) is None
    assert rec.restore('/', {'pid': 'p2'}, now=3) is not None


def test_the_log_is_bounded_by_time_and_count():
    rec = log(window=10, max_entries=5)
    for i in range(20):
        rec.record('/', None, None, ['e'], now=i)
    assert len(rec._entries) == 5
    rec.record('/', None, None, ['e'], now=1000)
    assert len(rec._entries) == 1


@pytest.mark.parametrize('auth', [
    None, 'p1', ['p1'], {}, {'pid': 1}, {'pid': None}, {'pid': 'x' * 65}, {'pid': 'unknown'},
    {'pid': 'p1', 'offset': 7}, {'pid': 'p1', 'offset': 'abc'}, {'pid': 'p1', 'offset': '-1'},
    {'pid': 'p1', 'offset': '99'}, {'pid': 'p1', 'offset': '1' * 65}, {'pid': 'p1', 'offset': '١'},
])
def test_hostile_or_unknown_recovery_fields_give_a_new_session(auth):
    rec = log()
    rec.record('/', None, None, ['e'], now=0)
    save(rec, now=0)
    assert rec.restore('/', auth, now=1) is None


def test_a_pid_of_another_namespace_recovers_nothing():
    rec = log()
    save(rec, now=0, ns='/chat')
    assert rec.restore('/', {'pid': 'p1'}, now=1) is None


def test_saving_a_pid_again_replaces_the_earlier_session():
    rec = log()
    save(rec, now=0, sid='old')
    save(rec, now=1, sid='new')
    assert len(rec) == 1
    restored = rec.restore('/', {'pid': 'p1'}, now=2)
    assert restored is not None and restored.sid == 'new'


def test_the_connect_handler_sees_auth_without_the_recovery_fields():
    rec = log()
    assert rec.handler_auth({'pid': 'p', 'offset': '3', 'token': 't'}) == {'token': 't'}
    assert rec.handler_auth({'pid': 'p'}) is None
    assert rec.handler_auth({'token': 't'}) == {'token': 't'}
    assert rec.handler_auth(['text']) == ['text']


def test_the_window_must_be_positive():
    with pytest.raises(ValueError):
        RecoveryLog(0, HEARTBEAT)


# -- the client's side ----------------------------------------------------------------


def connect_answer(session: ClientSession, answer: dict) -> list:
    return session.receive(pk.Packet(pk.CONNECT, answer).encode())


def test_a_client_keeps_pid_and_offset_and_sends_them_when_it_reconnects():
    session = ClientSession()
    assert session.open('e1', ['/'], {'token': 't'})[0].data == {'token': 't'}
    session.receive(pk.Packet(pk.EVENT, ['early', 1, '4']).encode())  # before CONNECT: held
    events = connect_answer(session, {'sid': 's1', 'pid': 'p1'})
    assert events == [NamespaceConnected(namespace='/', sid='s1', recovered=False),
                      EventArrived(namespace='/', event='early', args=[1], ack_id=None)]
    assert session.receive(pk.Packet(pk.EVENT, ['news', 'text', '7']).encode()) == [
        EventArrived(namespace='/', event='news', args=['text'], ack_id=None)]
    # an event that wants an ack carries no offset
    assert session.receive(pk.Packet(pk.EVENT, ['ask', 'x'], id=3).encode())[0].args == ['x']
    session.connection_lost()
    assert session.open('e2', ['/'], {'token': 't'})[0].data == {'token': 't', 'pid': 'p1', 'offset': '7'}
    assert connect_answer(session, {'sid': 's1', 'pid': 'p1'})[0].recovered is True


def test_a_new_pid_means_a_new_session_and_the_old_offset_is_dropped():
    session = ClientSession()
    session.open('e1', ['/'], None)
    connect_answer(session, {'sid': 's1', 'pid': 'p1'})
    session.receive(pk.Packet(pk.EVENT, ['news', '7']).encode())
    session.connection_lost()
    session.open('e2', ['/'], None)
    assert connect_answer(session, {'sid': 's2', 'pid': 'p2'})[0].recovered is False
    session.connection_lost()
    assert session.open('e3', ['/'], None)[0].data == {'pid': 'p2'}


def test_leaving_on_purpose_or_being_sent_away_forgets_the_session():
    session = ClientSession()
    session.open('e1', ['/'], None)
    connect_answer(session, {'sid': 's1', 'pid': 'p1'})
    session.disconnect()
    session.connection_lost()
    assert session.open('e2', ['/'], None)[0].data == {}
    connect_answer(session, {'sid': 's2', 'pid': 'p2'})
    session.receive(pk.Packet(pk.DISCONNECT).encode())
    assert session.open('e3', ['/'], None)[0].data == {}


def test_without_recovery_on_the_server_event_arguments_are_untouched():
    session = ClientSession()
    session.open('e1', ['/'], None)
    connect_answer(session, {'sid': 's1'})
    assert session.receive(pk.Packet(pk.EVENT, ['news', 'last string']).encode())[0].args == ['last string']


# -- several workers: a session handed over to another worker -------------------------------------

def test_a_cluster_log_tags_its_offsets_and_takes_a_foreign_offset_for_none():
    rec = log(tag='aaaa.')
    assert rec.record('/', None, None, ['e'], now=0) == ['e', 'aaaa.1']
    assert rec.last_offset == 'aaaa.1'
    rec.begin('p1')
    rec.record('/', None, None, ['after connect'], now=1)
    save(rec, now=2)
    # an offset of another worker's log says nothing here: the floor does
    restored = rec.restore('/', {'pid': 'p1', 'offset': 'bbbb.999'}, now=3)
    assert restored is not None and rec.missed(restored) == [['after connect', 'aaaa.2']]
    with pytest.raises(ValueError, match='tag'):
        log(tag='no dot')


def test_nothing_logged_before_a_client_connected_is_replayed_to_it():
    rec = log()
    rec.record('/', None, None, ['before it came'], now=0)
    rec.begin('p1')
    rec.record('/', None, None, ['after'], now=1)
    save(rec, now=2)
    restored = rec.restore('/', {'pid': 'p1'}, now=3)
    assert restored is not None and rec.missed(restored) == [['after', '2']]


def test_the_holder_hands_over_once_with_message_ids_and_what_the_client_had():
    a = log(tag='a.')
    a.begin('p1')
    a.record('/', 'room', None, ['got it'], now=100, msg_id='x.1')
    a.record('/', 'other', None, ['not mine'], now=100, msg_id='x.2')
    save(a, now=101, data={'user': 'ann'})
    a.record('/', 'room', None, ['missed', b'\x01'], now=102, msg_id='x.3')
    a.record('/', 's1', None, ['direct, local'], now=103)
    handover = a.hand_over('/', 'p1', 'a.1', now=104)
    assert handover is not None
    assert handover.sid == 's1' and handover.rooms == ['room', 's1'] and handover.data == {'user': 'ann'}
    assert handover.missed == [(['missed', b'\x01'], 'x.3'), (['direct, local'], None)]
    assert handover.seen == ['x.1']
    assert a.hand_over('/', 'p1', 'a.1', now=104) is None  # once
    assert a.hand_over('/', 'forged', None, now=104) is None


def test_the_taker_replays_the_holders_events_then_its_own_unnamed_ones_under_its_offsets():
    a = log(tag='a.')
    a.begin('p1')
    a.record('/', 'room', None, ['seen'], now=100, msg_id='x.1')
    save(a, now=101)
    a.record('/', 'room', None, ['missed on a'], now=102, msg_id='x.2')
    handover = a.hand_over('/', 'p1', 'a.1', now=103)
    b = log(tag='b.')
    b.record('/', 'room', None, ['seen'], now=100, msg_id='x.1')  # the client had it from A
    b.record('/', 'room', None, ['missed on a'], now=102, msg_id='x.2')  # in A's list
    b.record('/', 'room', None, ['not at a yet'], now=102.5, msg_id='x.3')  # reached B first
    b.record('/', 'other', None, ['not for it'], now=102.5, msg_id='x.4')
    b.record('/', 'room', None, ['local only'], now=102.6)  # no queue message: never for a client of A
    restored = b.adopt(pid='p1', namespace='/', handover=handover, asked=103)
    b.begin('p1')  # the shell registers the client, then replays
    b.record('/', 'room', None, ['live'], now=103.5, msg_id='x.5')  # after registration: reaches it live
    assert b.replay(restored, now=104) == [['missed on a', 'b.7'], ['not at a yet', 'b.8']]
    # the replay is in B's log for that client alone, under B's offsets
    save(b, now=105, rooms=('s1', 'room'))
    again = b.restore('/', {'pid': 'p1', 'offset': 'b.7'}, now=106)
    assert again is not None and b.missed(again) == [['not at a yet', 'b.8']]


def test_an_event_logged_twice_is_replayed_once():
    rec = log(tag='b.')
    rec.record('/', 'room', None, ['e'], now=0, msg_id='x.1')
    rec.record('/', 's1', None, ['e'], now=0, msg_id='x.1')  # replayed to a client taken over
    save(rec, now=1)
    restored = rec.restore('/', {'pid': 'p1', 'offset': 'b.0'}, now=2)
    assert restored is not None and rec.missed(restored) == [['e', 'b.1']]


# -- the wire: recover_session and its answer -------------------------------------------------------

def _roundtrip(message: dict) -> object:
    import json

    from greensio._core import pubsub

    return pubsub.decode(pubsub.encode(message, json), json)


def test_recover_session_crosses_the_wire_with_binary_events():
    from greensio._core import pubsub

    factory = pubsub.MessageFactory('hostA')
    request = _roundtrip(factory.request(pubsub.RECOVER_SESSION, request='hostA.r1', namespace='/chat',
                                         reply=True, pid='p1', offset='t.4'))
    assert (request.op, request.pid, request.offset, request.namespace) == ('recover_session', 'p1', 't.4', '/chat')
    session = {'sid': 's1', 'rooms': ['s1', 'room', 7], 'data': {'user': 'ann'},
               'missed': [[['file', b'\x00\xff', {'n': 1}], 'h.1'], [['plain'], None]], 'seen': ['h.0']}
    answer = _roundtrip(factory.response(origin_host_id='hostB', request='hostB.g1', session=session))
    assert answer.session == {**session, 'missed': [(['file', b'\x00\xff', {'n': 1}], 'h.1'), (['plain'], None)]}
    nothing = _roundtrip(factory.response(origin_host_id='hostB', request='hostB.g1', session=None))
    assert nothing.session is None and not nothing.handled


@pytest.mark.parametrize('fields', [
    {'pid': None}, {'pid': ''}, {'pid': 'p' * 65}, {'pid': 7}, {'pid': 'p', 'offset': 7},
    {'pid': 'p', 'offset': '1' * 65},
])
def test_a_malformed_recover_session_is_dropped(fields):
    from greensio._core import pubsub

    message = pubsub.MessageFactory('h').request(pubsub.RECOVER_SESSION, request='h.r1', namespace='/', reply=True)
    message.update(fields)
    with pytest.raises(pubsub.InvalidMessage):
        _roundtrip(message)


@pytest.mark.parametrize('session', [
    [], {'sid': 's1'}, {'sid': 's1', 'rooms': ['other'], 'data': {}, 'missed': [], 'seen': []},
    {'sid': 's1', 'rooms': ['s1', ['nested']], 'data': {}, 'missed': [], 'seen': []},
    {'sid': 's1', 'rooms': ['s1'], 'data': 'x', 'missed': [], 'seen': []},
    {'sid': 's1', 'rooms': ['s1'], 'data': {}, 'missed': [[[], None]], 'seen': []},
    {'sid': 's1', 'rooms': ['s1'], 'data': {}, 'missed': [[[1], None]], 'seen': []},
    {'sid': 's1', 'rooms': ['s1'], 'data': {}, 'missed': [[['e'], 5]], 'seen': []},
    {'sid': 's1', 'rooms': ['s1'], 'data': {}, 'missed': [], 'seen': [None]},
    {'sid': 's1', 'rooms': ['s1'] * 10_001, 'data': {}, 'missed': [], 'seen': []},
])
def test_a_malformed_session_answer_is_dropped(session):
    from greensio._core import pubsub

    message = pubsub.MessageFactory('h').response(origin_host_id='o', request='o.g1', session=None)
    message['session'] = session
    with pytest.raises(pubsub.InvalidMessage):
        _roundtrip(message)


def test_a_replayed_message_that_arrives_later_is_not_sent_to_that_client_again():
    a = log(tag='a.')
    a.begin('p1')
    save(a, now=100)
    a.record('/', 'room', None, ['reached a first'], now=101, msg_id='x.1')
    handover = a.hand_over('/', 'p1', None, now=102)
    b = log(tag='b.')
    restored = b.adopt(pid='p1', namespace='/', handover=handover, asked=102)
    b.begin('p1')
    assert b.replay(restored, now=102) == [['reached a first', 'b.1']]
    assert b.expecting
    # x.1 reaches B now: s1 had it, another client did not
    assert b.already_replayed('x.1', now=102.5) == {'s1'}
    assert b.already_replayed('x.1', now=102.5) is None  # once
    assert not b.expecting
    # an expectation lapses after the hand-over margin
    a.begin('p2')
    save(a, now=103, pid='p2', sid='s2', rooms=('s2', 'room'))
    a.record('/', 'room', None, ['never reaches b'], now=104, msg_id='x.2')
    later = b.adopt(pid='p2', namespace='/', handover=a.hand_over('/', 'p2', None, now=105), asked=105)
    b.replay(later, now=105)
    assert b.already_replayed('x.2', now=200) is None and not b.expecting
