"""A green worker and an asyncio worker on one broker, with external emitters.

The green worker is tests/mq/mq_server.py (``Server`` + ``KombuManager`` or
``RedisManager``); the asyncio worker is an ``AsyncServer`` on uvicorn with
``AsyncAioPikaManager`` or ``AsyncRedisManager`` (tests/async_app.py, kind
``'mq'``); tests/mq/mq_emitter.py is a green write-only emitter and the
asyncio worker's process also runs an asyncio write-only manager.  Every
client, on either worker, must see every numbered stream whole, once, in
order, and a worker can ``call()`` a client attached to the other one.
"""

from __future__ import annotations

import gevent
import pytest
from async_support import AsyncServerProcess, skip_reason

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

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or '')

COUNT = 200
BACKENDS = [pytest.param('kombu', 'aiopika', AMQP_URL, marks=needs_rabbitmq, id='rabbitmq'),
            pytest.param('redis', 'redis', REDIS_URL, marks=needs_redis, id='redis'),
            pytest.param('redis-streams', 'redis-streams', REDIS_URL, marks=needs_redis, id='redis-streams')]
SOURCES = ('from_emitter', 'from_green', 'from_asyncio', 'from_asyncio_script')


def numbers(client: Recorder, event: str) -> list[int]:
    return [args[0] for args in client.of(event)]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(('green_backend', 'asyncio_backend', 'url'), BACKENDS)
def test_green_and_asyncio_workers_share_a_broker(green_backend: str, asyncio_backend: str, url: str) -> None:
    channel = unique_channel()
    fleet = Fleet(green_backend, url, channel, servers=1)
    aio = AsyncServerProcess()
    clients: list[Recorder] = []
    try:
        aio.reset('mq', backend=asyncio_backend, url=url, channel=channel)
        answer = lambda event, args: f'{args[0]} answered' if event == 'question' else None
        urls = {'green': fleet.urls[0], 'asyncio': aio.url}
        clients = [Recorder(urls[w], f'{w}{i}', answer) for w in ('green', 'asyncio') for i in range(2)]
        green, asyncio_ = clients[0], clients[2]
        expected = {'aiopika': 'AsyncAioPikaManager', 'redis': 'AsyncRedisManager',
                    'redis-streams': 'AsyncRedisManager'}[asyncio_backend]
        assert aio('type(sio.manager).__name__') == expected
        # the asyncio worker subscribed before it served its first client
        assert aio('sio.manager._ready.is_set()') is True

        fleet.emit('from_emitter', COUNT)
        starters = [gevent.spawn(green.client.call, 'blast', {'event': 'from_green', 'count': COUNT}, timeout=30),
                    gevent.spawn(asyncio_.client.call, 'blast', {'event': 'from_asyncio', 'count': COUNT},
                                 timeout=30),
                    gevent.spawn(aio, "app.external_emit('from_asyncio_script', count)", count=COUNT)]
        gevent.joinall(starters, timeout=40, raise_error=True)
        assert starters[2].value == COUNT  # the write-only manager had them all confirmed before it closed
        for client in clients:
            for event in SOURCES:
                client.wait_for(event, COUNT, timeout=45)
        fleet.emitter.value('EMITTED', 30)

        # call() across workers, both ways: the ack travels back over the broker
        assert green.client.call('relay_call', {'sid': clients[3].sid, 'data': 'q'}, timeout=20) == 'q answered'
        assert asyncio_.client.call('relay_call', {'sid': clients[1].sid, 'data': 'r'}, timeout=20) == 'r answered'

        # fences: one more event from each publisher arrives after its stream
        fleet.emit('end_emitter', 1)
        green.client.call('blast', {'event': 'end_green', 'count': 1}, timeout=10)
        asyncio_.client.call('blast', {'event': 'end_asyncio', 'count': 1}, timeout=10)
        for client in clients:
            for event in ('end_emitter', 'end_green', 'end_asyncio'):
                client.wait_for(event, timeout=20)
            for event in SOURCES:
                assert check_sequence(numbers(client, event), COUNT) == {
                    'lost': 0, 'duplicated': 0, 'out_of_order': 0}, (client.name, event)
                assert len(client.of(event)) == COUNT
        stats = aio('sio.manager.stats')
        assert stats['invalid'] == 0 and stats['received'] >= 3 * COUNT
        assert aio('sio.manager.state') == 'healthy'
    finally:
        for client in clients:
            client.disconnect()
        fleet.stop()
        aio.close()
        if green_backend == 'kombu':
            delete_exchange(channel)
        elif green_backend == 'redis-streams':
            delete_stream(channel)
    assert 'Traceback' not in fleet.stderr()
