"""One cross-worker contract, run against every backend.

Two greensio servers in this process share a broker (the in-memory bus,
RabbitMQ through kombu, Redis); python-socketio clients connect to each.
Whatever a test proves *not* delivered is proven with a fence: a later
event from the same sender to the same client, which arrives in order.
"""

from __future__ import annotations

import pytest

import greensio

from .helpers import Recorder, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cluster(workers):
    """Two workers, two recording clients on each: ``(a, b, [a1, a2], [b1, b2])``."""
    disconnected: list[str] = []

    def setup(sio):
        sio.on('disconnect', lambda sid, reason: disconnected.append(sid))

    (a, url_a), (b, url_b) = workers(2, setup)
    answer = lambda event, args: ('answer', *args) if event == 'question' else None
    on_a = [Recorder(url_a, 'a1', answer), Recorder(url_a, 'a2', answer)]
    on_b = [Recorder(url_b, 'b1', answer), Recorder(url_b, 'b2', answer)]
    yield a, b, on_a, on_b, disconnected
    for client in on_a + on_b:
        client.disconnect()


def test_broadcast_reaches_every_client_on_every_worker_once(cluster):
    a, b, on_a, on_b, _ = cluster
    a.emit('news', {'n': 1})
    b.emit('news', {'n': 2})
    for client in on_a + on_b:
        client.wait_for('news', 2)
    for client in on_a + on_b:
        client.fence(a.emit)
        client.fence(b.emit)
        assert sorted(args[0]['n'] for args in client.of('news')) == [1, 2]


def test_arguments_and_binary_survive_the_trip(cluster):
    a, _b, _on_a, on_b, _ = cluster
    a.emit('multi', (1, 'two', [3], {'four': 4}))
    a.emit('blob', {'raw': b'\x00\xffbinary', 'nested': [b'x', {'y': bytearray(b'yy')}]})
    a.emit('none', None)
    a.emit('list', [1, 2])
    for client in on_b:
        client.wait_for('list')
        assert client.of('multi') == [(1, 'two', [3], {'four': 4})]
        assert client.of('blob') == [({'raw': b'\x00\xffbinary', 'nested': [b'x', {'y': b'yy'}]},)]
        assert client.of('none') == [()]
        assert client.of('list') == [([1, 2],)]


def test_emit_to_one_client_on_another_worker(cluster):
    a, _b, on_a, on_b, _ = cluster
    a.emit('direct', 'for b1', to=on_b[0].sid)
    on_b[0].wait_for('direct')
    for client in on_a + on_b:
        client.fence(a.emit)
    assert [c.name for c in on_a + on_b if c.of('direct')] == ['b1']


def test_skip_sid_holds_across_workers(cluster):
    a, _b, on_a, on_b, _ = cluster
    a.emit('news', 'all but b1 and a2', skip_sid=[on_b[0].sid, on_a[1].sid])
    a.emit('news2', 'all but b2', skip_sid=on_b[1].sid)
    for client in on_a + on_b:
        client.fence(a.emit)
    assert [c.name for c in on_a + on_b if c.of('news')] == ['a1', 'b2']
    assert [c.name for c in on_a + on_b if c.of('news2')] == ['a1', 'a2', 'b1']


def test_rooms_of_a_client_on_another_worker(cluster):
    a, b, on_a, on_b, _ = cluster
    b1 = on_b[0]
    a.enter_room(b1.sid, 'club')
    a.enter_room(on_a[0].sid, 'club')
    a.emit('in club', 1, room='club')
    b1.wait_for('in club')
    on_a[0].wait_for('in club')
    assert 'club' in b.rooms(b1.sid)
    a.leave_room(b1.sid, 'club')
    a.emit('in club', 2, room='club')
    on_a[0].wait_for('in club', 2)
    for client in on_a + on_b:
        client.fence(a.emit)
    assert b1.of('in club') == [(1,)]
    assert on_b[1].of('in club') == [] and on_a[1].of('in club') == []
    assert 'club' not in b.rooms(b1.sid)


def test_emit_to_a_list_of_rooms_reaches_each_client_once(cluster):
    a, b, on_a, on_b, _ = cluster
    b.enter_room(on_b[0].sid, 'x')
    b.enter_room(on_b[0].sid, 'y')
    a.enter_room(on_a[0].sid, 'y')
    a.emit('rooms', 'hi', to=['x', 'y'])
    for client in on_a + on_b:
        client.fence(a.emit)
    assert [len(c.of('rooms')) for c in on_a + on_b] == [1, 0, 1, 0]


def test_close_room_everywhere(cluster):
    a, b, on_a, on_b, _ = cluster
    a.enter_room(on_a[0].sid, 'doomed')
    b.enter_room(on_b[0].sid, 'doomed')
    a.close_room('doomed')
    assert list(a.manager.get_participants('/', 'doomed')) == []
    wait_until(lambda: not list(b.manager.get_participants('/', 'doomed')), 10, 'room closed on b')
    b.emit('to doomed', 1, room='doomed')
    a.emit('to doomed', 2, room='doomed')
    for client in on_a + on_b:
        client.fence(a.emit)
        client.fence(b.emit)
        assert client.of('to doomed') == []


def test_disconnect_a_client_owned_by_another_worker(cluster):
    a, _b, on_a, on_b, disconnected = cluster
    a.disconnect(on_b[0].sid)
    wait_until(lambda: not on_b[0].client.connected, 10, 'b1 disconnected')
    wait_until(lambda: on_b[0].sid in disconnected, 10, "b's disconnect handler")
    for client in [*on_a, on_b[1]]:
        client.fence(a.emit)
        assert client.client.connected


def test_callback_from_a_client_on_another_worker(cluster):
    a, _b, _on_a, on_b, _ = cluster
    answers = []
    a.emit('question', 'q1', to=on_b[0].sid, callback=lambda *args: answers.append(args))
    wait_until(lambda: answers, 10, 'remote ack')
    assert answers == [('answer', 'q1')]


def test_call_to_a_client_on_another_worker(cluster):
    a, b, on_a, on_b, _ = cluster
    assert a.call('question', 'q2', to=on_b[1].sid, timeout=10) == ('answer', 'q2')
    assert b.call('question', 'q3', to=on_a[0].sid, timeout=10) == ('answer', 'q3')
    assert a.call('question', b'\x00bin', to=on_b[0].sid, timeout=10) == ('answer', b'\x00bin')
    with pytest.raises(greensio.exceptions.TimeoutError):
        a.call('question', 'nobody', to='no-such-sid', timeout=0.3)


def test_write_only_emitter(broker, cluster):
    _a, _b, on_a, on_b, _ = cluster
    emitter = broker.manager(write_only=True)
    emitter.emit('external', {'from': 'cron'})
    emitter.emit('external', ('a', b'\x01'), room=on_b[1].sid)
    for client in on_a + on_b:
        client.wait_for('external')
    on_b[1].wait_for('external', 2)
    assert on_b[1].of('external')[1] == ('a', b'\x01')
    with pytest.raises(RuntimeError):
        emitter.emit('external', 1, to=on_a[0].sid, callback=lambda: None)


def test_write_only_disconnect_and_close_room(broker, cluster):
    a, b, on_a, on_b, _ = cluster
    emitter = broker.manager(write_only=True)
    a.enter_room(on_a[1].sid, 'r')
    b.enter_room(on_b[1].sid, 'r')
    emitter.disconnect(on_a[0].sid, namespace='/')
    emitter.close_room('r', namespace='/')
    wait_until(lambda: not on_a[0].client.connected, 10, 'a1 disconnected by the emitter')
    wait_until(lambda: not list(a.manager.get_participants('/', 'r'))
               and not list(b.manager.get_participants('/', 'r')), 10, 'room r closed')
    emitter.emit('after', 1, room='r')
    emitter.emit('after', 2)
    for client in [on_a[1], *on_b]:
        client.wait_for('after')
        client.fence(a.emit)
        assert client.of('after') == [(2,)]
    assert emitter.flush(5)
