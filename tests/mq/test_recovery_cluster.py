"""Connection state recovery across workers: a client may come back to any worker.

Two ``recovery_worker.py`` processes on RabbitMQ and on Redis pub/sub, the
official JavaScript client connected to worker A through a TCP proxy.  The
test cuts the proxy (a reset on both sides) and keeps it refusing while
worker B and an external emitter go on emitting; then it points the proxy at
worker B, and the client's own reconnection lands there.  B asks the
cluster for the session, A hands it over, and the client must find its id,
its rooms and every event it missed, once and in order, with a stream of
broadcasts running across the whole hand-over.  Then the hostile and the
failing cases: a session past its window, a forged pid, data that JSON
cannot carry, and a holder that is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from typing import Any

import gevent
import pytest
import socketio as pysocketio
from e2e_helpers import FAST_RECONNECT, needs_node
from jsclient import JSClient
from tcp_proxy import CuttableProxy

import greensio
from greensio._core.recovery import CLUSTER_RECOVERY_TIMEOUT

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Process,
    delete_exchange,
    unique_channel,
    wait_until,
)

pytestmark = [needs_node, pytest.mark.timeout(120)]

BACKENDS = [pytest.param('kombu', AMQP_URL, marks=needs_rabbitmq, id='kombu'),
            pytest.param('redis', REDIS_URL, marks=needs_redis, id='redis')]
#: Long enough that a killed worker still counts as alive when the question times out.
HEARTBEAT = 2.0
WINDOW = 4.0


class SwitchableProxy(CuttableProxy):
    """A cuttable proxy whose upstream the test can switch, or set to None to refuse connections."""

    def _handle(self, client: socket.socket, address: object) -> None:
        if self.target is None:
            client.close()  # the network is still down: the client retries
            return
        super()._handle(client, address)


class Fleet:
    def __init__(self, backend: str, url: str) -> None:
        self.backend, self.url, self.channel = backend, url, unique_channel()
        self.workers = [Process('recovery_worker.py', '--backend', backend, '--url', url, '--channel', self.channel,
                                '--heartbeat', str(HEARTBEAT), '--window', str(WINDOW)) for _ in range(2)]
        self.ports = [int(w.value('PORT', 30)) for w in self.workers]
        self.hosts = [w.value('HOST') for w in self.workers]
        if backend == 'kombu':
            self.emitter = greensio.KombuManager(url, channel=self.channel, write_only=True)
        else:
            self.emitter = greensio.RedisManager(url, channel=self.channel, write_only=True)
        # a worker joins the cluster when its first client starts its manager
        starters = []
        for port in self.ports:
            starter = pysocketio.Client(reconnection=False)
            starter.connect(f'http://127.0.0.1:{port}', transports=['websocket'], wait_timeout=10)
            starters.append(starter)
        for worker in self.workers:
            wait_until(lambda worker=worker: len(self.ask(worker, {'cmd': 'workers'})) == 2, 15,
                       'each worker knows the other')
        for starter in starters:
            starter.disconnect()
        self.proxy = SwitchableProxy(self.ports[0])
        self.url_via_proxy = f'http://127.0.0.1:{self.proxy.port}'

    @staticmethod
    def ask(worker: Process, cmd: dict[str, Any], timeout: float = 30) -> Any:
        return json.loads(worker.ask(json.dumps(cmd), 'RESULT', timeout))

    def point_at(self, index: int | None) -> None:
        self.proxy.target = None if index is None else ('127.0.0.1', self.ports[index])

    def stderr(self) -> str:
        return '\n'.join(line for w in self.workers for line in w.stderr)

    def stop(self) -> None:
        self.proxy.close()
        self.emitter.close(timeout=2)
        for worker in self.workers:
            worker.stop()
        if self.backend == 'kombu':
            delete_exchange(self.channel)


@pytest.fixture(params=[p.values for p in BACKENDS], ids=['kombu', 'redis'])
def fleet(request):
    backend, url = request.param
    f = Fleet(backend, url)
    yield f
    f.stop()


@pytest.fixture
def js():
    with JSClient() as client:
        yield client


def values(js: JSClient, event: str) -> list[Any]:
    return [m['args'][0] for m in js.events(event=event)]


def away(fleet: Fleet, js: JSClient) -> None:
    """Cut the client's connection and keep the network down."""
    fleet.point_at(None)
    assert fleet.proxy.cut() >= 1
    wait_until(lambda: js.find('disconnect') is not None, 10, 'the client to see the drop')


def test_a_client_recovers_on_the_other_worker_with_every_missed_event_once_and_in_order(fleet, js):
    a, b = fleet.workers
    first = js.connect(fleet.url_via_proxy, transports=['websocket'], wait=True, **FAST_RECONNECT)
    sid = first['id']
    assert first['recovered'] is False
    assert js.call('join', 'room') == ['joined']
    # before the drop: from both workers and the emitter
    fleet.ask(a, {'cmd': 'rounds', 'prefix': 'a', 'sid': sid, 'start': 0, 'count': 3})
    fleet.ask(b, {'cmd': 'rounds', 'prefix': 'b', 'sid': sid, 'start': 0, 'count': 3})
    for i in range(3):
        fleet.emitter.emit('x_room', i, to='room')
        fleet.emitter.emit('x_direct', i, to=sid)
    wait_until(lambda: len(values(js, 'x_direct')) == 3 and len(values(js, 'b_direct')) == 3, 10, 'before the drop')

    # a stream of broadcasts from the emitter across the whole hand-over
    stream = Process('mq_emitter.py', '--backend', fleet.backend, '--url', fleet.url, '--channel', fleet.channel)
    stream.value('HOST', 30)
    try:
        stream.send('emit stream 300 5')
        gevent.sleep(0.2)
        away(fleet, js)
        # while it is away: from the worker that held it, the other worker and the emitter
        fleet.ask(a, {'cmd': 'rounds', 'prefix': 'a', 'sid': sid, 'start': 3, 'count': 5, 'interval': 0.01})
        fleet.ask(b, {'cmd': 'rounds', 'prefix': 'b', 'sid': sid, 'start': 3, 'count': 5, 'interval': 0.01})
        for i in range(3, 8):
            fleet.emitter.emit('x_room', i, to='room')
            fleet.emitter.emit('x_direct', i, to=sid)
            fleet.emitter.emit('x_elsewhere', i, to='other room')
        gevent.sleep(0.3)
        fleet.point_at(1)
        again = js.wait_for('connect', timeout=10)
        assert again['recovered'] is True and again['id'] == sid
        # after: live, from everyone
        fleet.ask(a, {'cmd': 'rounds', 'prefix': 'a', 'sid': sid, 'start': 8, 'count': 3})
        fleet.ask(b, {'cmd': 'rounds', 'prefix': 'b', 'sid': sid, 'start': 8, 'count': 3})
        for i in range(8, 11):
            fleet.emitter.emit('x_room', i, to='room')
            fleet.emitter.emit('x_direct', i, to=sid)
        stream.value('EMITTED', 30)
        wait_until(lambda: len(values(js, 'stream')) >= 300 and all(
            len(values(js, f'{p}_direct')) >= 11 for p in 'abx'), 15, 'every event')
        gevent.sleep(0.3)  # nothing more (a duplicate) is on its way
    finally:
        stream.stop()
    expected = list(range(11))
    for prefix in 'abx':
        assert values(js, f'{prefix}_room') == expected, prefix
        assert values(js, f'{prefix}_direct') == expected, prefix
        assert values(js, f'{prefix}_elsewhere') == []
    assert values(js, 'stream') == list(range(300))
    assert js.call('whoami') == ['room', sorted([sid, 'room'])]
    log = fleet.stderr()
    assert 'handed over to another worker' in log and 'handed over by another worker' in log
    assert 'Traceback' not in log


def test_after_the_window_a_new_session(fleet, js):
    first = js.connect(fleet.url_via_proxy, transports=['websocket'], wait=True, **FAST_RECONNECT)
    assert js.call('join', 'room') == ['joined']
    away(fleet, js)
    gevent.sleep(WINDOW + 0.5)
    fleet.point_at(1)
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is False and again['id'] != first['id']
    assert js.call('whoami') == [None, [again['id']]]


def test_a_forged_pid_gets_a_new_session_and_nobodys_state(fleet, js):
    first = js.connect(fleet.url_via_proxy, transports=['websocket'], wait=True, **FAST_RECONNECT)
    assert js.call('join', 'room') == ['joined']
    for pid, offset in (('forged-pid', None), ('x' * 64, '0'), ('forged', 'abc.12')):
        forger = pysocketio.Client(reconnection=False)
        started = time.monotonic()
        forger.connect(f'http://127.0.0.1:{fleet.ports[1]}', transports=['websocket'], wait_timeout=10,
                       auth={'pid': pid, 'offset': offset})
        try:
            # every worker answers at once that it holds no such session: no wait for the timeout
            assert time.monotonic() - started < CLUSTER_RECOVERY_TIMEOUT
            assert forger.get_sid() != first['id']
            assert list(forger.call('whoami', timeout=10)) == [None, [forger.get_sid()]]
        finally:
            forger.disconnect()
    # the real client is untouched
    assert js.call('whoami') == ['room', sorted([first['id'], 'room'])]
    assert 'Traceback' not in fleet.stderr()


def test_a_session_whose_data_json_cannot_carry_is_not_moved(fleet, js):
    first = js.connect(fleet.url_via_proxy, transports=['websocket'], wait=True, **FAST_RECONNECT)
    assert js.call('join', 'room') == ['joined']
    assert js.call('taint') == ['tainted']
    away(fleet, js)
    fleet.point_at(1)
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is False and again['id'] != first['id']
    wait_until(lambda: 'cannot move to another worker' in fleet.stderr(), 5, 'the holder to log why')


def test_a_killed_holder_means_a_new_session_within_the_timeout(fleet, js):
    first = js.connect(fleet.url_via_proxy, transports=['websocket'], wait=True, **FAST_RECONNECT)
    assert js.call('join', 'room') == ['joined']
    away(fleet, js)
    os.kill(fleet.workers[0].proc.pid, signal.SIGKILL)
    fleet.workers[0].proc.wait(5)
    # the holder still counts as alive (its heartbeat timeout is 3 x HEARTBEAT): the question times out
    fleet.point_at(1)
    started = time.monotonic()
    again = js.wait_for('connect', timeout=10)
    assert again['recovered'] is False and again['id'] != first['id']
    assert time.monotonic() - started < CLUSTER_RECOVERY_TIMEOUT + 1.5
    wait_until(lambda: 'did not answer in time' in fleet.stderr(), 5, 'the taker to log the timeout')
    with contextlib.suppress(Exception):
        fleet.workers[0].stop()
