"""A greensio worker and a python-socketio worker on one channel (the migration path).

python-socketio 5.18's own ``KombuManager``/``RedisManager`` runs in one
worker process, greensio's in the other; each worker's broadcasts, each
write-only emitter's broadcasts and ``call()`` across the two reach the
clients of both.
"""

from __future__ import annotations

import pytest

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Process,
    Recorder,
    check_sequence,
    declare_python_socketio_exchange,
    delete_exchange,
    unique_channel,
)

COUNT = 100


@pytest.mark.timeout(90)
@pytest.mark.parametrize('backend', [pytest.param('kombu', marks=needs_rabbitmq),
                                     pytest.param('redis', marks=needs_redis)])
def test_greensio_and_python_socketio_workers_share_a_channel(backend):
    url = AMQP_URL if backend == 'kombu' else REDIS_URL
    channel = unique_channel()
    if backend == 'kombu':
        declare_python_socketio_exchange(channel)
    common = ('--backend', backend, '--url', url, '--channel', channel)
    procs = [Process('mq_server.py', *common, '--impl', 'greensio'),
             Process('mq_server.py', *common, '--impl', 'socketio'),
             Process('mq_emitter.py', *common, '--impl', 'greensio'),
             Process('mq_emitter.py', *common, '--impl', 'socketio')]
    clients: list[Recorder] = []
    try:
        urls = [f'http://127.0.0.1:{p.value("PORT", 30)}' for p in procs[:2]]
        for p in procs[2:]:
            p.value('HOST', 30)
        answer = lambda event, args: f'{args[0]}!' if event == 'question' else None
        clients = [Recorder(urls[0], 'greensio-client', answer), Recorder(urls[1], 'socketio-client', answer)]
        on_g, on_p = clients
        # python-socketio subscribes when its first client connects; make sure it listens
        on_p.client.call('blast', {'event': 'warmup', 'count': 1}, timeout=10)
        on_g.wait_for('warmup', timeout=20)

        on_g.client.call('blast', {'event': 'from_greensio', 'count': COUNT}, timeout=20)
        on_p.client.call('blast', {'event': 'from_socketio', 'count': COUNT}, timeout=20)
        procs[2].send(f'emit from_greensio_emitter {COUNT} 0')
        procs[3].send(f'emit from_socketio_emitter {COUNT} 0')
        streams = ('from_greensio', 'from_socketio', 'from_greensio_emitter', 'from_socketio_emitter')
        for client in clients:
            for event in streams:
                client.wait_for(event, COUNT, timeout=30)
        # acks across implementations: each worker calls the client attached to the other
        assert on_g.client.call('relay_call', {'sid': on_p.sid, 'data': 'g->p'}, timeout=20) == 'g->p!'
        assert on_p.client.call('relay_call', {'sid': on_g.sid, 'data': 'p->g'}, timeout=20) == 'p->g!'
        for client in clients:
            for event in streams:
                numbers = [args[0] for args in client.of(event)]
                assert check_sequence(numbers, COUNT) == {'lost': 0, 'duplicated': 0, 'out_of_order': 0}, \
                    (client.name, event)
        if backend == 'kombu':
            assert any('already exists with durable=False' in line for line in procs[0].stderr)
    finally:
        for client in clients:
            client.disconnect()
        for p in procs:
            p.stop()
        if backend == 'kombu':
            delete_exchange(channel)
