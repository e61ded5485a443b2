"""Two greensio worker processes, one external write-only emitter process, real clients.

Every delivery is counted: each client must see each numbered stream whole,
once, in order.  Streams come from the emitter (plain threads, no gevent)
and from each worker at the same time; with ``batch_size``, every publisher
sends them (and the calls' acks) as batches.
"""

from __future__ import annotations

import gevent
import pytest

from .conftest import needs_rabbitmq, needs_redis
from .helpers import (
    AMQP_URL,
    REDIS_URL,
    Fleet,
    Recorder,
    check_sequence,
    delete_exchange,
    delete_stream,
    unique_channel,
)

BATCH = ('--batch-size', '32')
BACKENDS = [pytest.param('kombu', AMQP_URL, (), marks=needs_rabbitmq, id='kombu'),
            pytest.param('redis', REDIS_URL, (), marks=needs_redis, id='redis'),
            pytest.param('kombu', AMQP_URL, BATCH, marks=needs_rabbitmq, id='kombu-batch'),
            pytest.param('redis', REDIS_URL, BATCH, marks=needs_redis, id='redis-batch'),
            pytest.param('redis-streams', REDIS_URL, BATCH, marks=needs_redis, id='redis-streams-batch')]
COUNT = 300


@pytest.fixture
def fleet(request):
    backend, url, options = request.param
    channel = unique_channel()
    fleet = Fleet(backend, url, channel, server_args=options, emitter_args=options)
    yield fleet
    fleet.stop()
    if backend == 'kombu':
        delete_exchange(channel)
    elif backend == 'redis-streams':
        delete_stream(channel)


def numbers(client: Recorder, event: str) -> list[int]:
    return [args[0] for args in client.of(event)]


@pytest.mark.timeout(90)
@pytest.mark.parametrize('fleet', [p.values for p in BACKENDS], indirect=True, ids=[p.id for p in BACKENDS])
def test_three_publishers_every_client_everything_once_in_order(fleet):
    answer = lambda event, args: f'{args[0]} answered' if event == 'question' else None
    clients = [Recorder(url, f'{w}{i}', answer) for w, url in zip('ab', fleet.urls) for i in range(2)]
    try:
        fleet.emit('from_emitter', COUNT)
        starters = [gevent.spawn(clients[0].client.call, 'blast', {'event': 'from_a', 'count': COUNT}, timeout=30),
                    gevent.spawn(clients[2].client.call, 'blast', {'event': 'from_b', 'count': COUNT}, timeout=30)]
        gevent.joinall(starters, timeout=30, raise_error=True)
        for client in clients:
            for event in ('from_emitter', 'from_a', 'from_b'):
                client.wait_for(event, COUNT, timeout=45)
        fleet.emitter.value('EMITTED', 30)
        # a worker calls a client attached to the other worker and gets its answer
        assert clients[0].client.call('relay_call', {'sid': clients[3].sid, 'data': 'q'}, timeout=20) == 'q answered'
        assert clients[3].client.call('relay_call', {'sid': clients[1].sid, 'data': 'r'}, timeout=20) == 'r answered'
        # fences: one more event from each publisher, which arrives after its stream
        fleet.emit('end_emitter', 1)
        clients[0].client.call('blast', {'event': 'end_a', 'count': 1}, timeout=10)
        clients[2].client.call('blast', {'event': 'end_b', 'count': 1}, timeout=10)
        for client in clients:
            for event in ('end_emitter', 'end_a', 'end_b'):
                client.wait_for(event, timeout=20)
            for event in ('from_emitter', 'from_a', 'from_b'):
                assert check_sequence(numbers(client, event), COUNT) == {
                    'lost': 0, 'duplicated': 0, 'out_of_order': 0}, (client.name, event)
                assert len(client.of(event)) == COUNT
    finally:
        for client in clients:
            client.disconnect()
    assert 'Traceback' not in fleet.stderr()
