"""The cluster as one server, in one process: three greensio workers share a broker.

Run against the in-memory bus, RabbitMQ and Redis pub/sub (the ``broker``
fixture); python-socketio clients connect to every worker.  Broadcast acks,
``call()`` to a room and to a remote sid, ``fetch_sockets``, the room and
disconnect operations on selectors, server-side emits, and membership.
"""

from __future__ import annotations

import time

import gevent
import pytest

import greensio
from greensio.cluster import BroadcastTimeoutError, RemoteSocket

from .helpers import Recorder, wait_until

pytestmark = pytest.mark.timeout(60)

HEARTBEAT = 0.3


def answer(event, args):
    if event == 'question':
        return f'{args[0]}!'
    if event == 'silent':
        gevent.sleep(4)  # answers, but long after any timeout of these tests
        return 'late'
    return None


@pytest.fixture
def cluster(broker, serve):
    """Three workers with two clients each in room 'r' and one more on the first outside it."""
    disconnected: list[str] = []
    servers, urls = [], []
    for i in range(3):
        manager = broker.manager()
        manager.heartbeat_interval = HEARTBEAT
        sio = greensio.Server(client_manager=manager)
        sio.shared_session_keys = ('user',)

        @sio.on('connect')
        def connect(sid, environ, auth, sio=sio, i=i):
            sio.save_session(sid, {'user': (auth or {}).get('user'), 'secret': 'not shared'})
            sio.enter_room(sid, f'worker{i}')

        sio.on('disconnect', lambda sid, reason: disconnected.append(sid))

        @sio.on('join')
        def join(sid, room, sio=sio):
            sio.enter_room(sid, room)
            return 'joined'

        @sio.on_server('whoami')
        def whoami(data, sio=sio):
            return {'host': sio.manager.host_id, 'data': data}

        servers.append(sio)
        urls.append(serve(sio))
    clients = []
    for i, url in enumerate(urls):
        for j in range(2):
            client = Recorder(url, f'w{i}c{j}', answer)
            assert client.client.call('join', 'r', timeout=10) == 'joined'
            clients.append(client)
    outsider = Recorder(urls[0], 'outsider', answer)
    for sio in servers:
        wait_until(lambda sio=sio: len(sio.manager.workers()) == 3, 10, 'every worker knows the others')
    yield servers, clients, outsider, disconnected
    for client in [*clients, outsider]:
        client.disconnect()


def test_room_broadcast_collects_every_ack_from_every_worker(cluster):
    servers, _clients, outsider, _ = cluster
    got = []
    servers[1].emit('question', 'q', to='r', callback=lambda answers, missing: got.append((answers, missing)),
                    timeout=10)
    wait_until(lambda: got, 10, 'the broadcast callback')
    answers, missing = got[0]
    assert sorted(answers) == ['q!'] * 6 and missing == 0
    assert not outsider.of('question')
    # the blocking form: a list, one answer per client of the room, from all three workers
    started = time.monotonic()
    assert servers[2].call('question', 'c', to='r', timeout=10) == ['c!'] * 6
    assert time.monotonic() - started < 5  # done when the last ack came, not at the timeout
    # everyone (no room), and a list of rooms each client counted once
    assert len(servers[0].call('question', 'all', to=['r', 'worker0'], timeout=10)) == 7


def test_a_client_that_never_answers_is_counted_missing_at_the_timeout(cluster):
    servers, clients, _outsider, _ = cluster
    servers[0].sockets_join('quiet', to=clients[3].sid)  # a client of the second worker
    wait_until(lambda: clients[3].sid in [s.sid for s in servers[0].fetch_sockets('quiet')], 10, 'joined quiet')
    got = []
    started = time.monotonic()
    servers[0].emit('question', 'x', to='r', callback=lambda a, m: got.append((a, m)), timeout=1.5)
    servers[0].emit('silent', None, to='quiet', callback=lambda a, m: got.append((a, m)), timeout=1.5)
    wait_until(lambda: len(got) == 2, 10, 'both callbacks')
    assert sorted(got[0][0]) == ['x!'] * 6 and got[0][1] == 0
    assert got[1] == ([], 1)
    assert 1.3 < time.monotonic() - started < 4
    with pytest.raises(BroadcastTimeoutError) as caught:
        servers[2].call('silent', None, to=['quiet', 'worker2'], timeout=1)
    assert caught.value.missing == 3 and caught.value.answers == []
    assert isinstance(caught.value, greensio.exceptions.TimeoutError)


def test_broadcast_acks_need_a_timeout(cluster):
    servers, _clients, _outsider, _ = cluster
    with pytest.raises(ValueError, match='give a timeout'):
        servers[0].emit('question', 'x', callback=lambda *a: None)
    with pytest.raises(ValueError, match='give a timeout'):
        servers[0].emit('question', 'x', to=['r'], callback=lambda *a: None)
    with pytest.raises(ValueError, match='give a callback'):
        servers[0].emit('question', 'x', to='r', timeout=1)


def test_call_to_one_sid_on_another_worker_is_one_answer(cluster):
    servers, clients, _outsider, _ = cluster
    assert servers[0].call('question', 'remote', to=clients[5].sid, timeout=10) == 'remote!'
    assert servers[0].call('question', 'local', to=clients[0].sid, timeout=10) == 'local!'
    with pytest.raises(greensio.exceptions.TimeoutError):
        servers[0].call('silent', None, to=clients[4].sid, timeout=0.5)
    # a sid nobody has: no answer, the timeout
    with pytest.raises(greensio.exceptions.TimeoutError):
        servers[0].call('question', 'nobody', to='no-such-sid', timeout=0.5)


def test_fetch_sockets_sees_every_client_with_rooms_and_handshake(cluster):
    servers, clients, outsider, _ = cluster
    found = servers[0].fetch_sockets()
    assert sorted(s.sid for s in found) == sorted(c.sid for c in [*clients, outsider])
    assert all(isinstance(s, RemoteSocket) for s in found)
    by_sid = {s.sid: s for s in found}
    for i, client in enumerate(clients):
        remote = by_sid[client.sid]
        assert set(remote.rooms) == {client.sid, 'r', f'worker{i // 2}'}
        assert remote.namespace == '/'
        assert remote.handshake['address'] == '127.0.0.1'
        assert remote.handshake['headers']['host'].startswith('127.0.0.1:')
        assert remote.handshake['query']['EIO'] == '4'
        assert remote.handshake['issued'] > 0 and remote.handshake['time'].endswith('Z')
        assert remote.data == {'user': None}  # only the shared key
    assert sorted(s.sid for s in servers[1].fetch_sockets('worker2')) == sorted(c.sid for c in clients[4:])
    assert [s.sid for s in servers[1].fetch_sockets('r', skip=['worker0', 'worker1', clients[5].sid])] == \
        [clients[4].sid]


def test_remote_socket_methods_act_on_the_live_client(cluster):
    servers, clients, _outsider, disconnected = cluster
    remote = next(s for s in servers[0].fetch_sockets('worker1'))
    owner = next(c for c in clients if c.sid == remote.sid)
    assert remote.call('question', 'via remote', timeout=10) == 'via remote!'
    remote.emit('hello', 'there')
    owner.wait_for('hello')
    remote.enter_room('vip')
    wait_until(lambda: [s.sid for s in servers[2].fetch_sockets('vip')] == [remote.sid], 10, 'vip joined')
    remote.leave_room('vip')
    wait_until(lambda: servers[2].fetch_sockets('vip') == [], 10, 'vip left')
    remote.disconnect()
    wait_until(lambda: remote.sid in disconnected, 10, 'remote disconnect')


def test_room_operations_on_selectors_act_on_the_right_clients_only(cluster):
    servers, clients, outsider, disconnected = cluster
    everyone = [*clients, outsider]

    def in_room(room):
        return sorted(s.sid for s in servers[2].fetch_sockets(room))

    # every client of room r except those of worker1 and one more, by sid
    servers[0].sockets_join('chosen', to='r', skip=['worker1', clients[0].sid])
    expected = sorted(c.sid for c in [clients[1], clients[4], clients[5]])
    wait_until(lambda: in_room('chosen') == expected, 10, 'sockets_join')
    servers[1].sockets_leave('chosen', to='worker2')
    wait_until(lambda: in_room('chosen') == [clients[1].sid], 10, 'sockets_leave')
    # skip_sid of an ordinary emit takes rooms too
    servers[2].emit('news', 'not for r', skip_sid='r')
    for client in everyone:
        client.fence(servers[2].emit)
    assert [c.name for c in everyone if c.of('news')] == ['outsider']
    # disconnect the clients of worker0 and worker2 that are in r, except one
    servers[1].disconnect_sockets(to=['worker0', 'worker2'], skip=clients[4].sid)
    gone = {clients[0].sid, clients[1].sid, clients[5].sid, outsider.sid}
    wait_until(lambda: gone <= set(disconnected), 10, 'disconnect_sockets')
    remaining = sorted(s.sid for s in servers[0].fetch_sockets())
    assert remaining == sorted(c.sid for c in clients[2:5])
    assert set(disconnected) == gone


def test_disconnect_sockets_close_ends_the_whole_connection(cluster):
    servers, clients, _outsider, disconnected = cluster
    servers[0].disconnect_sockets(to=clients[2].sid, close=True)
    wait_until(lambda: clients[2].sid in disconnected, 10, 'closed')
    wait_until(lambda: not clients[2].client.connected, 10, 'client sees the close')


def test_server_side_emit_reaches_each_other_worker_once_with_acks(cluster):
    servers, _clients, _outsider, _ = cluster
    answers = servers[0].server_side_call('whoami', {'n': 1}, timeout=10)
    hosts = sorted(a['host'] for a in answers)
    assert hosts == sorted(s.manager.host_id for s in servers[1:])
    assert all(a['data'] == {'n': 1} for a in answers)
    got = []
    servers[2].server_side_emit('whoami', 'cb', callback=lambda a, m: got.append((a, m)), timeout=10)
    wait_until(lambda: got, 10, 'server-side callback')
    assert sorted(a['host'] for a in got[0][0]) == sorted(s.manager.host_id for s in servers[:2])
    assert got[0][1] == 0
    # an event without handlers: every worker still answers (nothing), nobody waits for it
    started = time.monotonic()
    assert servers[1].server_side_call('nobody-listens', None, timeout=10) == []
    assert time.monotonic() - started < 5
    with pytest.raises(ValueError, match='give a timeout'):
        servers[0].server_side_emit('whoami', None, callback=lambda a, m: None)


def test_workers_lists_the_live_ones_and_a_closed_one_leaves(cluster):
    servers, _clients, _outsider, _ = cluster
    ids = sorted(s.manager.host_id for s in servers)
    for sio in servers:
        assert sio.manager.workers()[0] == sio.manager.host_id
        assert sorted(sio.manager.workers()) == ids
    servers[2].manager.close(timeout=2)
    # it said it was leaving: gone well before the heartbeat timeout (3 x 0.3 s)
    for sio in servers[:2]:
        wait_until(lambda sio=sio: sorted(sio.manager.workers()) == sorted(s.manager.host_id for s in servers[:2]),
                   0.6, 'the closed worker left')


def test_the_in_memory_manager_does_the_same_locally(serve):
    sio = greensio.Server()
    sio.on('connect', lambda sid, environ, auth: sio.enter_room(sid, 'r'))
    url = serve(sio)
    clients = [Recorder(url, f'c{i}', answer) for i in range(3)]
    try:
        assert sio.manager.workers() == ['local']
        assert sio.call('question', 'm', to='r', timeout=5) == ['m!'] * 3
        assert sio.call('question', 'one', to=clients[0].sid, timeout=5) == 'one!'
        got = []
        sio.emit('question', 'e', callback=lambda a, m: got.append((a, m)), timeout=5)
        wait_until(lambda: got, 5, 'callback')
        assert got == [(['e!'] * 3, 0)]
        assert sorted(s.sid for s in sio.fetch_sockets('r')) == sorted(c.sid for c in clients)
        sio.sockets_join('x', skip=clients[0].sid)
        assert sorted(s.sid for s in sio.fetch_sockets('x')) == sorted(c.sid for c in clients[1:])
        sio.sockets_leave('x', to=clients[1].sid)
        assert [s.sid for s in sio.fetch_sockets('x')] == [clients[2].sid]
        assert sio.server_side_call('anything', timeout=1) == []
        sio.disconnect_sockets(to='x')
        wait_until(lambda: not clients[2].client.connected, 5, 'disconnected')
        assert len(sio.fetch_sockets()) == 2
    finally:
        for client in clients:
            client.disconnect()


def test_class_based_namespaces_have_the_cluster_methods(serve):
    sio = greensio.Server()

    class Chat(greensio.Namespace):
        def on_connect(self, sid, environ):
            self.enter_room(sid, 'lobby')

    chat = Chat('/chat')
    sio.register_namespace(chat)
    url = serve(sio)
    clients = [Recorder(url, f'c{i}', answer, namespace='/chat') for i in range(2)]
    try:
        assert sorted(s.sid for s in chat.fetch_sockets('lobby')) == sorted(c.sid for c in clients)
        assert {s.namespace for s in chat.fetch_sockets()} == {'/chat'}
        chat.sockets_join('vip', to=clients[0].sid)
        assert [s.sid for s in chat.fetch_sockets('vip')] == [clients[0].sid]
        got = []
        chat.emit('question', 'n', to='lobby', callback=lambda a, m: got.append((a, m)), timeout=5)
        wait_until(lambda: got, 5, 'namespace broadcast acks')
        assert got == [(['n!', 'n!'], 0)]
        chat.sockets_leave('vip')
        assert chat.fetch_sockets('vip') == []
        chat.disconnect_sockets(skip=clients[0].sid)
        wait_until(lambda: not clients[1].client.connected, 5, 'disconnected')
        assert sio.fetch_sockets(namespace='/chat')[0].sid == clients[0].sid
    finally:
        for client in clients:
            client.disconnect()


def test_the_ack_callbacks_of_clients_that_never_answer_are_forgotten(cluster):
    servers, clients, _outsider, _ = cluster
    quiet = [clients[0], clients[2]]  # one on the origin, one on another worker
    for client in quiet:
        servers[0].sockets_join('quiet', to=client.sid)
    wait_until(lambda: len(servers[1].fetch_sockets('quiet')) == 2, 10, 'joined quiet')
    with pytest.raises(BroadcastTimeoutError):
        servers[0].call('silent', None, to='quiet', timeout=0.3)

    def owed() -> int:
        return sum(len(sio.manager.callbacks.get(c.sid, {})) for sio in servers[:2] for c in quiet)

    wait_until(lambda: owed() == 0, 5, 'the silent clients\' callbacks dropped')
