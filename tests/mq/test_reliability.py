"""Outbox, replay, dedup, health and hostile input, on the in-memory bus.

The same machinery runs under every backend; the bus makes outages and
redeliveries cheap to stage.  The real-broker versions are in test_faults.py.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import time

import pytest

import greensio
from greensio.testing import InMemoryBus, InMemoryPubSubManager

from .helpers import Recorder, check_sequence, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def bus():
    return InMemoryBus()


@pytest.fixture
def pair(bus, serve):
    """Two workers on one bus with one client each: ``(a, b, client_a, client_b)``."""
    servers, clients = [], []
    for name in ('a', 'b'):
        sio = greensio.Server(client_manager=InMemoryPubSubManager(bus, channel='c'))
        servers.append(sio)
        clients.append(Recorder(serve(sio), name))
    yield (*servers, *clients)
    for client in clients:
        client.disconnect()
    for sio in servers:
        sio.manager.close(timeout=1)


def numbers(client: Recorder, event: str = 'seq') -> list[int]:
    return [args[0] for args in client.of(event)]


def test_emits_during_an_outage_are_replayed_in_order(bus, pair, caplog):
    a, _b, client_a, client_b = pair
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    bus.fail()
    for i in range(50):
        a.emit('seq', i)
    client_a.wait_for('seq', 50)  # local clients do not wait for the broker
    wait_until(lambda: a.manager.state == 'degraded', 5, 'publisher notices the outage')
    assert not a.manager.healthy and a.manager.outbox_length == 50
    assert client_b.of('seq') == []
    bus.restore()
    client_b.wait_for('seq', 50)
    wait_until(lambda: a.manager.healthy, 5, 'healthy again')
    client_b.fence(a.emit)
    assert numbers(client_b) == list(range(50))
    assert numbers(client_a) == list(range(50))
    text = caplog.text
    assert 'degraded' in text and 'healthy again' in text


def test_listener_outage_is_visible_and_buffered(bus, pair):
    a, b, _client_a, client_b = pair
    bus.fail()
    wait_until(lambda: b.manager.state == 'degraded', 5, 'listener notices the outage')
    a.emit('seq', 1)
    bus.restore()
    client_b.wait_for('seq')
    wait_until(lambda: b.manager.healthy, 5, 'listener healthy again')


def test_a_full_outbox_refuses_quickly_and_delivers_nothing(bus, serve):
    sio = greensio.Server(client_manager=InMemoryPubSubManager(bus, channel='c', outbox_size=5, emit_timeout=0.05))
    client = Recorder(serve(sio), 'local')
    remote = InMemoryPubSubManager(bus, channel='c')
    remote_sio = greensio.Server(client_manager=remote)
    remote_client = Recorder(serve(remote_sio), 'remote')
    try:
        bus.fail()
        for i in range(5):
            sio.emit('seq', i)
        started = time.monotonic()
        with pytest.raises(greensio.exceptions.QueueFullError):
            sio.emit('seq', 5)
        assert time.monotonic() - started < 1  # emit_timeout is 0.05 s; room for a busy CI machine
        with pytest.raises(greensio.exceptions.QueueFullError):
            sio.close_room('r')
        assert sio.manager.stats['refused'] == 2
        bus.restore()
        remote_client.wait_for('seq', 5)
        client.fence(sio.emit)
        remote_client.fence(sio.emit)
        assert numbers(client) == numbers(remote_client) == [0, 1, 2, 3, 4]
    finally:
        client.disconnect()
        remote_client.disconnect()
        sio.manager.close(1)
        remote.close(1)


def test_duplicates_are_dropped_and_rogue_messages_do_not_stop_the_listener(bus, pair, caplog):
    _a, b, _client_a, client_b = pair
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    emitter = InMemoryPubSubManager(bus, channel='c', write_only=True)
    rogue = [b'\x80\x04\x95garbage', pickle.dumps({'method': 'emit', 'event': 'seq', 'data': [666]}),
             b'{"not": "ours"}', b'[]', json.dumps({'method': 'emit', 'host_id': 'x', 'version': 1}).encode(),
             json.dumps({'method': 'emit', 'event': 'seq', 'data': [666], 'host_id': 'x', 'version': 7,
                         'msg_id': 'x.1'}).encode()]
    for i in range(20):
        emitter.emit('seq', i)
        assert emitter.flush(5)
        if i % 4 == 0:
            bus.inject('c', bus.history[-1])  # a redelivery
        if i < len(rogue):
            bus.inject('c', rogue[i])
    client_b.wait_for('seq', 20)
    assert check_sequence(numbers(client_b), 20) == {'lost': 0, 'duplicated': 0, 'out_of_order': 0}
    assert b.manager.stats['duplicates'] == 5
    assert b.manager.stats['invalid'] == len(rogue)
    assert caplog.text.count('dropped an invalid message') >= len(rogue)
    emitter.close(1)


def test_write_only_flush_reports_what_is_stuck(bus):
    emitter = InMemoryPubSubManager(bus, channel='c', write_only=True)
    bus.fail()
    emitter.emit('x', 1)
    emitter.disconnect('some-sid', namespace='/')
    assert emitter.flush(0.2) is False
    assert emitter.outbox_length == 2
    bus.restore()
    assert emitter.flush(5) is True
    assert emitter.close(1) is True
    assert [json.loads(m)['method'] for m in bus.history] == ['emit', 'disconnect']
    with pytest.raises(RuntimeError):
        emitter.emit('x', 2)


def test_unserialisable_payload_fails_in_the_caller(bus, pair):
    a, _b, client_a, _client_b = pair
    with pytest.raises((TypeError, ValueError)):
        a.emit('bad', {'x': object()})
    with pytest.raises(ValueError):
        a.emit('bad', float('nan'))
    a.emit('good', 1)  # the outbox is not poisoned
    client_a.wait_for('good')
    assert a.manager.outbox_length <= 1


@pytest.mark.timeout(30)
def test_unpatched_gevent_is_refused_with_a_clear_message():
    code = ('import greensio\n'
            'for cls in (greensio.KombuManager, greensio.RedisManager):\n'
            '    sio = greensio.Server(client_manager=cls(channel="x"))\n'
            '    try:\n'
            '        sio.manager.initialize()\n'
            '    except RuntimeError as exc:\n'
            '        print(exc)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=25, check=False)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    assert lines[0].startswith('Kombu requires a monkey patched socket library')
    assert lines[1].startswith('Redis requires a monkey patched socket library')


def test_redis_urls():
    with pytest.raises(ValueError, match='Unsupported Redis URL scheme'):
        greensio.RedisManager('http://localhost')
    from greensio.managers.base_redis_manager import parse_sentinel_url

    assert parse_sentinel_url('redis+sentinel://u:p%40w@h1:1,h2:2/3/svc') == (
        [('h1', 1), ('h2', 2)], 'svc', {'username': 'u', 'password': 'p@w', 'db': 3})
    assert parse_sentinel_url('redis+sentinel://h1:26379') == ([('h1', 26379)], None, {})


def test_a_message_is_acknowledged_only_after_dispatch_and_a_redelivery_is_dropped(bus, serve):
    """The bus fails while worker b dispatches a message: b's ack fails, the
    bus redelivers the message after the outage, and b drops the repeat."""
    disconnects: list[str] = []
    a = greensio.Server(client_manager=InMemoryPubSubManager(bus, channel='c'))
    b = greensio.Server(client_manager=InMemoryPubSubManager(bus, channel='c'))

    @b.on('disconnect')
    def on_disconnect(sid, reason):
        disconnects.append(sid)
        bus.fail()  # mid-dispatch: the message is delivered but not yet acknowledged

    client_a, client_b = Recorder(serve(a), 'a'), Recorder(serve(b), 'b')
    try:
        a.disconnect(client_b.sid)
        wait_until(lambda: disconnects, 5, "b's disconnect handler")
        wait_until(lambda: b.manager.state == 'degraded', 5, 'b notices the outage')
        bus.restore()
        wait_until(lambda: b.manager.stats['duplicates'] == 1, 5, 'the redelivered message dropped')
        assert disconnects == [client_b.sid]  # the handler ran once
        assert b.manager.stats['received'] == 1
        client_b2 = Recorder(serve(b), 'b2')  # b listens again
        a.emit('after', 1)
        client_b2.wait_for('after')
        client_b2.disconnect()
    finally:
        client_a.disconnect()
        client_b.disconnect()
        a.manager.close(1)
        b.manager.close(1)


def test_batches_through_an_outage_and_redelivered_lose_and_duplicate_nothing(bus, pair):
    _a, b, _client_a, client_b = pair
    emitter = InMemoryPubSubManager(bus, channel='c', write_only=True, batch_size=32)
    try:
        for i in range(100):
            emitter.emit('seq', i)
        assert emitter.flush(5)
        bus.fail()  # the outbox fills, then is replayed in order, cut into batches afresh
        for i in range(100, 300):
            emitter.emit('seq', i)
        assert emitter.flush(0.2) is False
        bus.restore()
        assert emitter.flush(5)
        bus.inject('c', bus.history[-1])  # a whole batch redelivered
        client_b.wait_for('seq', 300)
        client_b.fence(emitter.emit)
        assert numbers(client_b) == list(range(300))
        assert emitter.stats['published'] == 300 + 1  # the fence
        assert json.loads(bus.history[-2])['method'] == 'greensio.batch'
        assert b.manager.stats['duplicates'] >= 1 and b.manager.stats['invalid'] == 0
    finally:
        emitter.close(1)


def test_batch_size_is_bounded():
    for size in (0, 1025):
        with pytest.raises(ValueError):
            InMemoryPubSubManager(InMemoryBus(), channel='c', batch_size=size)
