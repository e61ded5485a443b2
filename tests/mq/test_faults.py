"""Faults on real brokers: RabbitMQ stopped mid-stream, a worker SIGKILLed,
rogue messages on the channel, Redis publisher connections killed (and, with
Redis Streams, listener connections: test_redis_streams.py has its restart), a worker's
outbox replayed before the other worker listens again (RabbitMQ stopped, and
a private Redis server stopped).

Same fleet as test_multiprocess.py (two worker processes, one write-only
emitter process, python-socketio clients here); every test counts every
delivery and asserts 0 lost, 0 duplicated, nothing out of order.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

import greensio

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Fleet,
    Recorder,
    RedisServer,
    check_sequence,
    declare_python_socketio_exchange,
    delete_exchange,
    delete_queues,
    delete_stream,
    rabbitmq_up,
    unique_channel,
    wait_until,
)

# stops and starts the shared RabbitMQ and Redis: run alone, after the rest of the suite
pytestmark = pytest.mark.serial

CLEAN = {'lost': 0, 'duplicated': 0, 'out_of_order': 0}


def numbers(client: Recorder, event: str) -> list[int]:
    return [args[0] for args in client.of(event)]


@contextlib.contextmanager
def fleet_of(backend: str, prepare: Callable[[str], None] | None = None, **kwargs) -> Iterator[Fleet]:
    """A Fleet on a fresh channel; ``prepare(channel)`` runs first (e.g. to create its exchange)."""
    channel = unique_channel()
    if prepare is not None:
        prepare(channel)
    fleet = Fleet(backend, AMQP_URL if backend == 'kombu' else REDIS_URL, channel, **kwargs)
    try:
        yield fleet
    finally:
        fleet.stop()
        if backend == 'kombu':
            delete_queues(fleet.queues)  # a SIGKILLed worker cannot delete its own
            delete_exchange(channel)
        elif backend == 'redis-streams':
            delete_stream(channel)


def assert_clean(clients: list[Recorder], streams: dict[str, int]) -> None:
    for client in clients:
        for event, count in streams.items():
            assert check_sequence(numbers(client, event), count) == CLEAN, (client.name, event)
            assert len(client.of(event)) == count, (client.name, event)


def fence(fleet: Fleet, clients: list[Recorder], via: Recorder | None = None) -> None:
    """One more event from the emitter (and from ``via``'s worker): it arrives after their streams."""
    fleet.emit('end_emitter', 1)
    if via is not None:
        via.client.call('blast', {'event': 'end_worker', 'count': 1}, timeout=20)
    for client in clients:
        client.wait_for('end_emitter', timeout=30)
        if via is not None:
            client.wait_for('end_worker', timeout=30)


def rabbitmqctl(*args: str, timeout: float = 120) -> None:
    subprocess.run(['rabbitmqctl', *args], check=True, capture_output=True, timeout=timeout)


@contextlib.contextmanager
def rabbitmq_stopped() -> Iterator[None]:
    rabbitmqctl('stop_app')
    try:
        yield
    finally:
        rabbitmqctl('start_app')
        wait_until(rabbitmq_up, 60, 'RabbitMQ answering again')


def stream_through_an_outage(fleet: Fleet, outage: Callable[[], Any], fresh_manager: Callable[[], Any],
                             before: Callable[[list[Recorder]], None] | None = None,
                             during: Callable[[], None] | None = None) -> None:
    """The emitter streams 400 numbered events; while the broker is down (``outage()``)
    worker a broadcasts 100 and a write-only manager that never connected
    (``fresh_manager()``) emits 20.  Every client gets every event once, in order.

    ``before(clients)`` runs once the stream is under way, ``during()`` at the end of the outage.
    """
    a, b = fleet.servers
    clients = [Recorder(url, f'{w}{i}') for w, url in zip('ab', fleet.urls) for i in range(2)]
    on_a, on_b = clients[:2], clients[2:]
    fleet.emit('seq', 400, interval_ms=10)
    wait_until(lambda: all(len(c.of('seq')) >= 50 for c in clients), 30, 'stream under way')
    if before is not None:
        before(clients)
    with outage():
        # a worker emits while the broker is down: its own clients get it now...
        on_a[0].client.call('blast', {'event': 'during', 'count': 100}, timeout=10)
        for client in on_a:
            client.wait_for('during', 100, timeout=10)
        a.send('state')
        wait_until(lambda: a.value('STATE', nth=0) == 'degraded', 20, 'worker a reports degraded')
        assert on_b[0].of('during') == []  # ...the other worker's clients once it is back
        # an emitter that starts while the broker is down never connected at all
        fresh = fresh_manager()
        for i in range(20):
            fresh.emit('fresh', i)
        assert fresh.flush(0.5) is False and fresh.outbox_length == 20
        if during is not None:
            during()
    for client in clients:
        client.wait_for('seq', 400, timeout=60)
        client.wait_for('during', 100, timeout=60)
        client.wait_for('fresh', 20, timeout=60)
    assert fresh.close(10)
    emitted, while_degraded = map(int, fleet.emitter.value('EMITTED', 30).split())
    assert emitted == 400 and while_degraded > 0
    fence(fleet, clients, via=on_a[0])
    on_b[0].client.call('blast', {'event': 'from_b', 'count': 10}, timeout=20)
    for client in clients:
        client.wait_for('from_b', 10, timeout=30)
    assert_clean(clients, {'seq': 400, 'during': 100, 'fresh': 20, 'from_b': 10})
    for worker in (a, b):
        wait_until(lambda w=worker: any('healthy again' in line for line in w.stderr), 30, 'healthy again')
        assert any('message queue degraded' in line for line in worker.stderr)
        assert not any('Traceback' in line for line in worker.stderr)
    a.send('state')
    wait_until(lambda: a.value('STATE', nth=1), 10, 'state of a')
    assert a.value('STATE', nth=1) == 'healthy'
    for client in clients:
        client.disconnect()


@needs_rabbitmq
@pytest.mark.timeout(150)
def test_rabbitmq_restart_mid_stream_loses_and_duplicates_nothing():
    # the emitter and worker a publish in batches (their outboxes are replayed as batches), worker b one by one
    with fleet_of('kombu', emitter_args=('--batch-size', '64'), own_args=[('--batch-size', '64'), ()]) as fleet:
        stream_through_an_outage(fleet, rabbitmq_stopped,
                                 lambda: greensio.KombuManager(AMQP_URL, channel=fleet.channel, write_only=True))


@needs_rabbitmq
@pytest.mark.timeout(90)
def test_sigkill_of_one_worker_does_not_affect_the_other():
    with fleet_of('kombu') as fleet:
        a, _b = fleet.servers
        on_a = Recorder(fleet.urls[0], 'a0')
        on_b = [Recorder(fleet.urls[1], f'b{i}') for i in range(2)]
        fleet.emit('seq', 300, interval_ms=5)
        wait_until(lambda: all(len(c.of('seq')) >= 50 for c in on_b), 30, 'stream under way')
        a.proc.kill()
        a.proc.wait(10)
        wait_until(lambda: not on_a.client.connected, 30, 'client of the killed worker disconnected')
        on_b[0].client.call('blast', {'event': 'after_kill', 'count': 50}, timeout=10)
        for client in on_b:
            client.wait_for('seq', 300, timeout=30)
            client.wait_for('after_kill', 50, timeout=30)
        fence(fleet, on_b, via=on_b[0])
        assert_clean(on_b, {'seq': 300, 'after_kill': 50})
        for client in on_b:
            client.disconnect()


def rogue_payloads() -> list[tuple[bytes, str]]:
    """(body, content type) pairs a foreign or hostile publisher could send."""
    wrong = {'method': 'emit', 'event': 'seq', 'data': [999], 'binary': True, 'host_id': 'x' * 32,
             'version': 1, 'msg_id': 'rogue.1'}
    # a batch is valid only as a whole: its good message must not be delivered either
    good = {**wrong, 'binary': False, 'msg_id': f'{"x" * 32}.1'}

    def batch(*messages: dict, **header: object) -> tuple[bytes, str]:
        envelope = {'method': 'greensio.batch', 'host_id': 'x' * 32, 'version': 2, 'messages': list(messages)}
        return json.dumps({**envelope, **header}).encode(), 'application/json'

    return [
        batch(good, wrong),
        batch(good, {'method': 'greensio.batch', 'host_id': 'x' * 32, 'version': 2, 'messages': [good]}),
        batch(good, version=3),
        batch(good, version=1),
        batch(*[good] * 1025),
        batch({**good, 'msg_id': f'{"y" * 32}.1'}),
        batch(good, messages=[]),
        (pickle.dumps({'method': 'emit', 'event': 'seq', 'data': [999], 'host_id': 'evil'}),
         'application/x-python-serialize'),
        (pickle.dumps({'method': 'emit'}, protocol=0), 'application/x-python-serialize'),
        (b'\x00\xff\xfe binary junk', 'application/octet-stream'),
        (b'this is not json', 'text/plain'),
        (b'{"truncated": ', 'application/json'),
        (b'{"hello": "world"}', 'application/json'),
        (json.dumps({'method': 'emit', 'event': 'seq', 'host_id': 'x'}).encode(), 'application/json'),
        (json.dumps(wrong).encode(), 'application/json'),
        (json.dumps({**wrong, 'binary': False, 'version': 42}).encode(), 'application/json'),
        (b'[' * 5000 + b']' * 5000, 'application/json'),
    ]


def publish_rogue_kombu(channel: str, payloads: list[tuple[bytes, str]]) -> int:
    import kombu

    with kombu.Connection(AMQP_URL, connect_timeout=3) as conn:
        producer = kombu.Producer(conn.channel(), exchange=kombu.Exchange(channel, type='fanout', durable=True),
                                  auto_declare=False)
        for body, content_type in payloads:
            producer.publish(body, content_type=content_type, content_encoding='binary', routing_key='')
            gevent.sleep(0.01)  # interleave with the emitter's stream
    return len(payloads)


def publish_rogue_redis(channel: str, payloads: list[tuple[bytes, str]]) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for body, _ in payloads:
        client.publish(channel, body)
        gevent.sleep(0.01)
    client.close()
    return len(payloads)


def publish_rogue_stream(channel: str, payloads: list[tuple[bytes, str]]) -> int:
    """The payloads as stream entries (``streams=True``), and entries whose fields are not ours."""
    import redis

    from greensio.managers.redis_streams import FIELD, stream_key

    entries = [{FIELD: body} for body, _ in payloads]
    entries += [{'junk': 'no data field'}, {FIELD: '{}', 'extra': 'two fields'}, {'': b'\x00'}]
    client = redis.Redis.from_url(REDIS_URL)
    for fields in entries:
        client.xadd(stream_key(channel), fields)
        gevent.sleep(0.01)
    client.close()
    return len(entries)


PUBLISH_ROGUE = {'kombu': publish_rogue_kombu, 'redis': publish_rogue_redis, 'redis-streams': publish_rogue_stream}


@pytest.mark.timeout(90)
@pytest.mark.parametrize('backend', [pytest.param('kombu', marks=needs_rabbitmq),
                                     pytest.param('redis', marks=needs_redis),
                                     pytest.param('redis-streams', marks=needs_redis)])
def test_rogue_messages_are_dropped_without_disturbing_the_listener(backend):
    with fleet_of(backend) as fleet:
        clients = [Recorder(url, f'{w}0') for w, url in zip('ab', fleet.urls)]
        payloads = rogue_payloads()
        fleet.emit('seq', 200, interval_ms=2)
        wait_until(lambda: all(c.of('seq') for c in clients), 20, 'stream under way')
        published = PUBLISH_ROGUE[backend](fleet.channel, payloads)
        for client in clients:
            client.wait_for('seq', 200, timeout=30)
        fence(fleet, clients)
        assert_clean(clients, {'seq': 200})
        for worker in fleet.servers:
            dropped = sum('dropped an invalid message' in line for line in worker.stderr)
            assert dropped == published, '\n'.join(worker.stderr)
            assert not any('Traceback' in line for line in worker.stderr)
        for client in clients:
            client.disconnect()


@needs_redis
@pytest.mark.timeout(90)
@pytest.mark.parametrize(('backend', 'target'), [('redis', 'publisher'), ('redis-streams', 'publisher'),
                                                 ('redis-streams', 'listeners')])
def test_redis_connections_killed_mid_stream(backend, target):
    """The emitter's publisher connection, or (streams: pub/sub keeps nothing
    for a listener that is away) the workers' listener connections."""
    import redis

    name = f'greensio-{target}-{unique_channel()}'
    named = {'emitter_args' if target == 'publisher' else 'server_args': ('--client-name', name)}
    with fleet_of(backend, **named) as fleet:
        clients = [Recorder(url, f'{w}0') for w, url in zip('ab', fleet.urls)]
        fleet.emit('seq', 300, interval_ms=5)
        admin = redis.Redis.from_url(REDIS_URL)
        killed = 0
        for threshold in (50, 120, 200):
            wait_until(lambda t=threshold: all(len(c.of('seq')) >= t for c in clients), 30, f'{threshold} delivered')
            # a worker's listener is the connection that reads (XREAD); its publisher only writes
            ids = [c['id'] for c in admin.client_list()
                   if c.get('name') == name and (target == 'publisher' or c.get('cmd') == 'xread')]
            for client_id in ids:
                killed += admin.client_kill_filter(_id=client_id)
        assert killed >= 3
        for client in clients:
            client.wait_for('seq', 300, timeout=30)
        fence(fleet, clients)
        assert_clean(clients, {'seq': 300})
        admin.close()
        assert 'Traceback' not in fleet.stderr()
        if target == 'listeners':
            assert 'healthy again' in fleet.stderr()
        for client in clients:
            client.disconnect()


def broadcasts_during_outages(fleet: Fleet, outage: Callable[[], Any], replay_attempted: Callable[[], bool]) -> None:
    """A client's event makes worker a emit to a room while the broker is down:
    a's members get it at once, b's once the broker is back, after every outage.

    When the broker is back, a's publisher replays its outbox while b's
    listener reconnects on its own schedule, and either may come first.  In
    every other outage b is paused (SIGSTOP) until ``replay_attempted()``, so
    the replay surely comes first there; in the others the two race.
    """
    b = fleet.servers[1]
    on_a = Recorder(fleet.urls[0], 'a0')
    on_b = [Recorder(fleet.urls[1], f'b{i}') for i in range(2)]
    outsider = Recorder(fleet.urls[1], 'b-outsider')  # not in the room
    for client in (on_a, *on_b):
        assert client.client.call('join', 'r', timeout=10) == 'joined'

    def blast(event: str, start: int) -> None:
        spec = {'event': event, 'count': 1, 'start': start, 'room': 'r'}
        assert on_a.client.call('blast', spec, timeout=10) == 1

    blast('before', 0)  # a's publisher is connected when the broker stops
    for client in on_b:
        client.wait_for('before', timeout=20)
    sent = 0
    for hold_b in (False, True, False, True):
        paused = False
        try:
            with outage():
                for delay in (0.0, 0.3):  # right after the stop, and once a's publisher may have noticed
                    gevent.sleep(delay)
                    blast('during', sent)
                    sent += 1
                on_a.wait_for('during', sent, timeout=10)  # a's own members do not wait for the broker
                assert len(on_b[0].of('during')) == sent - 2  # b's do
                if hold_b:
                    os.kill(b.proc.pid, signal.SIGSTOP)
                    paused = True
            if paused:
                wait_until(replay_attempted, 30, "a's publisher replaying its outbox")
        finally:
            if paused:
                os.kill(b.proc.pid, signal.SIGCONT)
        for client in on_b:
            client.wait_for('during', sent, timeout=20)
    blast('end', 0)  # a's outbox is replayed in order: nothing of a's can arrive after this
    for client in on_b:
        client.wait_for('end', timeout=20)
    for client in (on_a, *on_b):
        assert check_sequence(numbers(client, 'during'), sent) == CLEAN, client.name
        assert len(client.of('during')) == sent, client.name
    assert outsider.of('during') == []
    for client in (on_a, *on_b, outsider):
        client.disconnect()


@needs_rabbitmq
@pytest.mark.timeout(90)
@pytest.mark.parametrize('exchange', ['greensio', 'python-socketio'])
def test_room_broadcasts_from_a_handler_during_rabbitmq_outages_reach_the_other_worker(exchange):
    """The channel's exchange is greensio's own (durable) or one a python-socketio
    fleet created before greensio's workers came (non-durable, adopted): a
    restart deletes that one and whatever is bound to it."""
    prepare = declare_python_socketio_exchange if exchange == 'python-socketio' else None
    with fleet_of('kombu', prepare=prepare, emitter=False) as fleet:
        a = fleet.servers[0]
        broadcasts_during_outages(fleet, rabbitmq_stopped, lambda: a.ask('outbox', 'OUTBOX') == '0')


@needs_redis
@pytest.mark.skipif(not RedisServer.available(), reason='redis-server is not installed')
@pytest.mark.timeout(90)
def test_room_broadcasts_from_a_handler_during_redis_outages_reach_the_other_worker():
    """Redis keeps nothing for a subscriber that is away: a's replay must wait
    for the subscribers the channel had before the outage."""
    server = RedisServer()
    try:
        fleet = Fleet('redis', server.url, unique_channel(), emitter=False)
        try:
            a = fleet.servers[0]
            broadcasts_during_outages(
                fleet, server.stopped,
                lambda: a.ask('outbox', 'OUTBOX') == '0' or any('holding the replay' in line for line in a.stderr))
            assert any('holding the replay' in line for line in a.stderr), '\n'.join(a.stderr)
        finally:
            fleet.stop()
    finally:
        server.stop()
