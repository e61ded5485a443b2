"""The cluster as one server across real worker processes on RabbitMQ (and Redis pub/sub).

Three ``cluster_worker.py`` processes, python-socketio clients spread over
them.  Broadcast acks (complete, one client silent, a worker SIGKILLed in the
middle), ``fetch_sockets``, the selector operations, server-side emits, and
forged messages on the channel.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import Any

import gevent
import pytest
import socketio as pysocketio

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Process,
    declare_python_socketio_exchange,
    delete_exchange,
    unique_channel,
    wait_until,
)

BACKENDS = [pytest.param('kombu', AMQP_URL, marks=needs_rabbitmq, id='kombu'),
            pytest.param('redis', REDIS_URL, marks=needs_redis, id='redis')]
HEARTBEAT = 0.5
#: A dead worker is noticed after 3 missed heartbeats; the waiter checks twice per interval.
DEAD_AFTER = 3 * HEARTBEAT + HEARTBEAT / 2


class Client:
    """A python-socketio client that answers events with ``<data>!``; ``slow`` after 5 s, and
    ``question`` too while ``silent``."""

    def __init__(self, url: str, user: str, silent: bool = False) -> None:
        self.user = user
        self.silent = silent
        self.slow = True
        self.events: list[tuple[str, tuple]] = []
        self.client = pysocketio.Client(reconnection=False)
        self.client.on('*', self._on_any)
        self.client.connect(f'{url}?user={user}', auth={'user': user}, transports=['websocket'], wait_timeout=10)
        self.sid = self.client.get_sid()

    def _on_any(self, event: str, *args: Any) -> Any:
        self.events.append((event, args))
        if (self.slow and event == 'slow') or (self.silent and event == 'question'):
            gevent.sleep(5)
        return f'{args[0]}!' if args else None

    def join(self, room: str) -> None:
        assert self.client.call('join', room, timeout=10) == 'joined'

    def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()


class Cluster:
    def __init__(self, backend: str, url: str, workers: int = 3, python_socketio_exchange: bool = False) -> None:
        self.backend = backend
        self.url = url
        self.channel = unique_channel()
        if python_socketio_exchange and backend == 'kombu':
            declare_python_socketio_exchange(self.channel)  # as a python-socketio fleet left it
        self.workers = [Process('cluster_worker.py', '--backend', backend, '--url', url, '--channel', self.channel,
                                '--heartbeat', str(HEARTBEAT)) for _ in range(workers)]
        self.urls = [f'http://127.0.0.1:{w.value("PORT", 30)}' for w in self.workers]
        self.hosts = [w.value('HOST') for w in self.workers]
        self.clients: list[Client] = []

    def connect(self, per_worker: int = 2, room: str = 'r') -> list[Client]:
        for i, url in enumerate(self.urls):
            for j in range(per_worker):
                client = Client(url, f'u{i}{j}')
                client.join(room)
                self.clients.append(client)
        # a worker counts in the cluster once its first client started its manager
        for worker in self.workers:
            wait_until(lambda worker=worker: len(self.ask(worker, {'cmd': 'workers'})) == len(self.workers),
                       15, 'every worker knows the others')
        return self.clients

    @staticmethod
    def ask(worker: Process, cmd: dict[str, Any], timeout: float = 30) -> Any:
        return json.loads(worker.ask(json.dumps(cmd), 'RESULT', timeout))

    def stop(self) -> None:
        for client in self.clients:
            client.disconnect()
        for worker in self.workers:
            worker.stop()
        if self.backend == 'kombu':
            delete_exchange(self.channel)

    def stderr(self) -> str:
        return '\n'.join(line for w in self.workers for line in w.stderr)


@pytest.fixture
def cluster(request):
    backend, url = request.param
    c = Cluster(backend, url, python_socketio_exchange=bool(request.node.get_closest_marker('python_socketio')))
    yield c
    c.stop()


pytestmark = pytest.mark.parametrize('cluster', [p.values for p in BACKENDS], indirect=True, ids=['kombu', 'redis'])


@pytest.mark.timeout(120)
def test_three_workers_act_as_one_server(cluster):
    clients = cluster.connect()
    w0, w1, w2 = cluster.workers
    ask = cluster.ask
    # a room broadcast with acks: every answer, from every worker, well before the timeout
    result = ask(w0, {'cmd': 'broadcast', 'event': 'question', 'data': 'q', 'to': 'r', 'timeout': 10})
    assert sorted(result['answers']) == ['q!'] * 6 and result['missing'] == 0 and result['seconds'] < 5
    result = ask(w1, {'cmd': 'call', 'event': 'question', 'data': 'c', 'to': 'r', 'timeout': 10})
    assert result['answers'] == ['c!'] * 6
    # call() to one sid on another worker is one answer, as on the same worker
    result = ask(w0, {'cmd': 'call', 'event': 'question', 'data': 'one', 'to': clients[5].sid, 'timeout': 10})
    assert result['answers'] == 'one!'
    # one client that never answers in time: the others' answers and one missing, at the timeout
    clients[3].silent = True
    result = ask(w2, {'cmd': 'broadcast', 'event': 'question', 'data': 's', 'to': 'r', 'timeout': 1.5})
    assert sorted(result['answers']) == ['s!'] * 5 and result['missing'] == 1
    assert 1.4 < result['seconds'] < 3
    clients[3].silent = False

    # fetch_sockets: every client of every worker, with its rooms, handshake and shared session
    found = {s['sid']: s for s in ask(w1, {'cmd': 'fetch'})['sockets']}
    assert sorted(found) == sorted(c.sid for c in clients)
    for i, client in enumerate(clients):
        remote = found[client.sid]
        assert set(remote['rooms']) == {client.sid, 'r', f'host-{cluster.hosts[i // 2]}'}
        assert remote['handshake']['auth'] == {'user': client.user}
        assert remote['handshake']['query']['user'] == client.user
        assert remote['handshake']['address'] == '127.0.0.1'
        assert remote['data'] == {'user': client.user}

    def sids_in(room: str) -> list[str]:
        return sorted(s['sid'] for s in ask(w2, {'cmd': 'fetch', 'to': room})['sockets'])

    # selectors: room r but not worker 1's clients (a room) nor client 0 (a sid)
    ask(w0, {'cmd': 'join', 'room': 'chosen', 'to': 'r', 'skip': [f'host-{cluster.hosts[1]}', clients[0].sid]})
    expected = sorted(c.sid for c in (clients[1], clients[4], clients[5]))
    wait_until(lambda: sids_in('chosen') == expected, 10, 'sockets_join')
    ask(w1, {'cmd': 'leave', 'room': 'chosen', 'to': f'host-{cluster.hosts[2]}'})
    wait_until(lambda: sids_in('chosen') == [clients[1].sid], 10, 'sockets_leave')
    ask(w2, {'cmd': 'disconnect', 'to': ['chosen', clients[4].sid]})
    wait_until(lambda: sorted(found) != sids_in(None), 10, 'disconnect_sockets')
    wait_until(lambda: not clients[1].client.connected and not clients[4].client.connected, 10, 'clients gone')
    assert sids_in(None) == sorted(c.sid for c in (clients[0], clients[2], clients[3], clients[5]))

    # server-side emits reach each other worker once, with acks
    answers = ask(w0, {'cmd': 'server_call', 'event': 'whoami', 'data': 'hi', 'timeout': 10})
    assert sorted(a['host'] for a in answers) == sorted(cluster.hosts[1:])
    assert [ask(w, {'cmd': 'server_events'}) for w in cluster.workers] == [[], ['hi'], ['hi']]
    assert 'Traceback' not in cluster.stderr()


@pytest.mark.timeout(90)
def test_the_origin_stops_waiting_for_a_worker_killed_mid_request(cluster):
    clients = cluster.connect()
    w0, _w1, w2 = cluster.workers
    for client in clients[:4]:  # only the clients of the worker about to die are slow
        client.slow = False
    nth = results(w0)
    w0.send(json.dumps({'cmd': 'broadcast', 'event': 'slow', 'data': 'k', 'to': 'r', 'timeout': 30}))
    w0.value('REQUEST', 10)
    # every client got the event (its answer comes in 5 s); each worker's count of its
    # recipients crosses the broker just after: a worker dead before it counted has no known
    # recipients, so give the counts time to arrive
    wait_until(lambda: all(c.events for c in cluster.clients), 10, 'every client got the event')
    gevent.sleep(0.5)
    killed = time.monotonic()
    os.kill(w2.proc.pid, signal.SIGKILL)
    result = json.loads(w0.value('RESULT', 20, nth=nth))
    waited = time.monotonic() - killed
    assert waited < DEAD_AFTER + 1.5, waited  # within the heartbeat timeout, far before the 30 s
    # the four clients of the live workers answered; the two of the dead one are missing
    assert result['answers'] == ['k!'] * 4 and result['missing'] == 2


@pytest.mark.timeout(90)
def test_forged_messages_never_crash_misdirect_or_hold_the_origin(cluster):
    clients = cluster.connect(per_worker=1)
    w0, w1, w2 = cluster.workers
    ask = cluster.ask
    origin = cluster.hosts[0]
    fake = 'f' * 32

    def msg(**fields: Any) -> str:
        return json.dumps({'version': 1, 'msg_id': f'{fake}.{time.monotonic_ns()}', **fields})

    # a broadcast that waits for slow answers, so the forgeries meet a live request
    nth = results(w0)
    w0.send(json.dumps({'cmd': 'broadcast', 'event': 'slow', 'data': 'h', 'to': 'r', 'timeout': 7}))
    request = w0.value('REQUEST', 10)
    hostile = [
        # wrong types
        msg(method='greensio.request', host_id=fake, request='x', op='fetch_sockets', namespace='/', to={'a': 1}),
        msg(method='greensio.request', host_id=fake, request=['x'], op='sockets_join', room='evil'),
        msg(method='greensio.request', host_id=fake, request='y', op='rm -rf', namespace='/'),
        msg(method='greensio.response', host_id=origin, sender=fake, request=request, count='many'),
        msg(method='greensio.heartbeat', host_id=fake, interval=1e9),
        msg(method='greensio.heartbeat', host_id=fake, interval=-1),
        msg(method='emit', host_id=fake, event='evil', data=['x'], room='r', request='z'),  # request, no callback
        # huge counts: refused past the bound; within it, from a worker that says it is alive,
        # the origin still stops at its timeout (a count from a worker never heard is not waited for)
        msg(method='greensio.response', host_id=origin, sender=fake, request=request, count=10 ** 12),
        msg(method='greensio.heartbeat', host_id=fake, interval=30),
        msg(method='greensio.response', host_id=origin, sender=fake, request=request, count=1_000_000),
        # unknown request ids
        msg(method='greensio.response', host_id=origin, sender=fake, request='nobody.g1', count=1),
        msg(method='callback', host_id=origin, sid='nobody.g1', namespace='/', id=0, args=['x']),
        # a request id reused: the real request's id, with another message id, to every client
        msg(method='emit', host_id=origin, event='evil', data=['reused'], room=None, request=request,
            callback=[request, '/', 0]),
    ]
    publish(cluster, hostile)
    result = json.loads(w0.value('RESULT', 20, nth=nth))
    assert 6.5 < result['seconds'] < 7 + 1  # a forged count holds it to its timeout, never past it
    assert result['answers'] == ['h!'] * 3  # the real clients' answers (after 5 s), nothing forged
    assert result['missing'] == 1_000_000
    publish(cluster, [msg(method='greensio.heartbeat', host_id=fake, interval=30, leaving=True)])
    wait_until(lambda: len(ask(w1, {'cmd': 'workers'})) == 3, 10, 'the forged worker left')
    # nobody got a forged event, and every worker still serves the cluster
    for client in clients:
        assert not [e for e, _ in client.events if e == 'evil'], client.user
    result = ask(w1, {'cmd': 'call', 'event': 'question', 'data': 'ok', 'to': 'r', 'timeout': 10})
    assert result['answers'] == ['ok!'] * 3
    assert len(ask(w2, {'cmd': 'fetch'})['sockets']) == 3
    assert all(ask(w, {'cmd': 'stats'})['invalid'] >= 6 for w in cluster.workers)
    assert 'Traceback' not in cluster.stderr()


def results(worker: Process) -> int:
    """How many results the worker printed so far (the next one is this index)."""
    return sum(line.startswith('RESULT ') for line in worker.lines)


def publish(cluster: Cluster, bodies: list[str]) -> None:
    if cluster.backend == 'kombu':
        import kombu

        with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
            producer = kombu.Producer(conn.channel(), exchange=kombu.Exchange(cluster.channel, type='fanout'),
                                      auto_declare=False)
            for body in bodies:
                producer.publish(body, content_type='application/json', content_encoding='utf-8', routing_key='')
    else:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for body in bodies:
            client.publish(cluster.channel, body)
        client.close()


@pytest.mark.timeout(90)
@pytest.mark.python_socketio
def test_python_socketio_workers_keep_working_beside_the_cluster_kinds(cluster):
    """A python-socketio worker joins the channel: it skips heartbeats, requests and responses without
    error, delivers broadcasts that collect acks to its clients, and answers call() to its clients."""
    clients = cluster.connect(per_worker=1)
    w0 = cluster.workers[0]
    legacy = Process('mq_server.py', '--backend', cluster.backend, '--url', cluster.url, '--channel', cluster.channel,
                     '--impl', 'socketio')
    try:
        old = Client(f'http://127.0.0.1:{legacy.value("PORT", 30)}', 'old')
        old.client.call('join', 'r', timeout=10)
        # python-socketio subscribes when its first client connects: wait until it hears greensio
        wait_until(lambda: (cluster.ask(w0, {'cmd': 'call', 'event': 'question', 'data': 'p', 'to': old.sid,
                                             'timeout': 2})['answers'] == 'p!'), 30, 'python-socketio answers')
        result = cluster.ask(w0, {'cmd': 'broadcast', 'event': 'question', 'data': 'b', 'to': 'r', 'timeout': 3})
        assert result['answers'].count('b!') >= 3 and result['missing'] == 0
        wait_until(lambda: ('question', ('b',)) in old.events, 10, 'the python-socketio client got the broadcast')
        assert len(cluster.ask(w0, {'cmd': 'fetch'})['sockets']) == 3  # greensio's clients only
        assert len(cluster.ask(w0, {'cmd': 'server_call', 'event': 'whoami', 'data': 1, 'timeout': 5})) == 2
        assert len(cluster.ask(w0, {'cmd': 'workers'})) == 3
        gevent.sleep(2 * HEARTBEAT)  # heartbeats went by too
        legacy.send('state')  # still alive and reading its stdin
        old.disconnect()
    finally:
        legacy.stop()
    assert 'Traceback' not in '\n'.join(legacy.stderr), '\n'.join(legacy.stderr[-30:])
    assert clients
