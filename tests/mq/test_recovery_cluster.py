"""Connection state recovery across workers: a client may come back to any worker.

Two ``recovery_worker.py`` processes on RabbitMQ, Redis pub/sub and Redis
Streams, the
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

import asyncio
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
from e2e_helpers import FAST_RECONNECT
from jsclient import JSClient, skip_reason
from tcp_proxy import CuttableProxy
from test_async_pubsub import Bus, CapturingSocket, MemoryManager, aio, received, until

import greensio
from greensio._core.recovery import CLUSTER_RECOVERY_TIMEOUT

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Process,
    delete_exchange,
    delete_stream,
    unique_channel,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

BACKENDS = [pytest.param(('kombu', AMQP_URL), marks=needs_rabbitmq, id='kombu'),
            pytest.param(('redis', REDIS_URL), marks=needs_redis, id='redis'),
            pytest.param(('redis-streams', REDIS_URL), marks=needs_redis, id='redis-streams')]
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
            self.emitter = greensio.RedisManager(url, channel=self.channel, write_only=True,
                                                 streams=backend == 'redis-streams')
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
        elif self.backend == 'redis-streams':
            delete_stream(self.channel)


@pytest.fixture(params=BACKENDS)
def fleet(request):
    backend, url = request.param
    f = Fleet(backend, url)
    yield f
    f.stop()


@pytest.fixture
def js():
    if skip_reason() is not None:
        pytest.skip(skip_reason())
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


# -- the asyncio twin, in one process on an in-memory bus -------------------------------------


class FastHeartbeats(MemoryManager):
    heartbeat_interval = 0.1


async def connect(sio: greensio.AsyncServer, eio_sid: str, auth: Any = None) -> tuple[dict, CapturingSocket]:
    sock = CapturingSocket(eio_sid)
    sio.eio.sockets[eio_sid] = sock
    await sio._handle_eio_connect(eio_sid, {})
    await sio._handle_eio_message(eio_sid, '0' + (json.dumps(auth) if auth is not None else ''))
    answer = sock.queue.get_nowait().data
    assert answer.startswith('0{'), answer
    return json.loads(answer[1:]), sock


@aio
async def test_the_asyncio_twin_hands_a_session_over_with_binary_events() -> None:
    bus = Bus()
    a, b = (greensio.AsyncServer(async_mode='asgi', client_manager=FastHeartbeats(bus),
                                 connection_state_recovery={'max_disconnection_duration': 30}) for _ in range(2))
    first, sock = await connect(a, 'eio-a')
    sid, pid = first['sid'], first['pid']
    await a.enter_room(sid, 'room')
    await a.save_session(sid, {'user': 'ann'})
    await connect(b, 'eio-starter')  # B's manager joins the cluster with its first client
    for sio in (a, b):
        await until(lambda sio=sio: len(sio.manager.workers()) == 2, 5)
    await a.emit('before', 0, to='room')
    offset = json.loads(received(sock)[-1][1:])[-1]
    await a._handle_eio_disconnect('eio-a', 'transport close')
    await b.emit('while', 1, to='room')
    await b.emit('bytes', b'\x00\x01', to=sid)
    await a.emit('while', 2, to='room')
    await until(lambda: a._recovery.last_offset.endswith('.4'), 5)  # A logged what B emitted

    again, sock_b = await connect(b, 'eio-b', {'pid': pid, 'offset': offset})
    assert again == {'sid': sid, 'pid': pid}
    packets = received(sock_b)
    events, offsets = [], []
    for i, packet in enumerate(packets):
        if isinstance(packet, str) and packet.startswith('2'):
            payload = json.loads(packet[1:])
        elif isinstance(packet, str) and packet.startswith('51-'):
            payload = json.loads(packet[3:])
            assert payload[1] == {'_placeholder': True, 'num': 0}
            payload[1] = packets[i + 1]  # the attachment follows its packet
        else:
            continue
        events.append(payload[:2])
        offsets.append(payload[-1])
    # each sender's events once and in its order (the two senders' are not ordered between them)
    assert [e for e in events if e != ['while', 2]] == [['while', 1], ['bytes', b'\x00\x01']]
    assert events.count(['while', 2]) == 1 and len(events) == 3
    # the offsets are B's from now on, growing
    assert all(o.startswith(b._recovery.tag) for o in offsets)
    assert [int(o.rsplit('.', 1)[1]) for o in offsets] == sorted(int(o.rsplit('.', 1)[1]) for o in offsets)
    # the session came along
    assert await b.get_session(sid) == {'user': 'ann'}
    assert sorted(b.rooms(sid)) == sorted([sid, 'room'])
    assert b.recovered(sid)
    # a pid recovers once, cluster-wide: the holder gave it away
    assert not a._recovery.holds(pid) and len(a._recovery) == 0
    for sio in (a, b):
        await sio.manager.close(timeout=1)
    await asyncio.sleep(0)


class HoldingBus(Bus):
    """A bus on which the emits for one subscriber can be held back, as when a worker lags behind."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []
        self.hold: asyncio.Queue | None = None

    def deliver(self, raw: Any) -> None:
        for queue in self.subscribers:
            if queue is self.hold and '"method":"emit"' in raw:
                self.held.append(raw)
            else:
                queue.put_nowait(raw)

    def release(self) -> None:
        for raw in self.held:
            self.hold.put_nowait(raw)
        self.held.clear()
        self.hold = None


@aio
async def test_an_event_the_holder_had_before_the_taker_reaches_the_client_once() -> None:
    bus = HoldingBus()
    a, b = (greensio.AsyncServer(async_mode='asgi', client_manager=FastHeartbeats(bus),
                                 connection_state_recovery={'max_disconnection_duration': 30}) for _ in range(2))
    emitter = FastHeartbeats(bus, write_only=True)
    first, _ = await connect(a, 'eio-a')
    sid, pid = first['sid'], first['pid']
    await a.enter_room(sid, 'room')
    await connect(b, 'eio-starter')
    for sio in (a, b):
        await until(lambda sio=sio: len(sio.manager.workers()) == 2, 5)
    await a._handle_eio_disconnect('eio-a', 'transport close')
    bus.hold = bus.subscribers[1]  # B lags: the emitter's events reach A only
    for i in range(3):
        await emitter.emit('late', i, room='room')
    await until(lambda: a._recovery.last_offset.endswith('.3'), 5)
    again, sock_b = await connect(b, 'eio-b', {'pid': pid})
    assert again['sid'] == sid
    bus.release()  # now they reach B, where the client already got them in its replay
    await b.emit('after', 0, to='room')
    await until(lambda: b._recovery.last_offset.endswith('.7'), 5)  # 3 replayed + 3 late + 1 after
    events = [json.loads(p[1:])[:2] for p in received(sock_b)]
    assert events == [['late', 0], ['late', 1], ['late', 2], ['after', 0]]
    for manager in (a.manager, b.manager, emitter):
        await manager.close(timeout=1)
