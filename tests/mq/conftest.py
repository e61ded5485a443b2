"""Fixtures of the cross-worker suite: one ``backend`` parameter, many workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import greensio
from greensio.testing import InMemoryBus, InMemoryPubSubManager

from .helpers import (
    AMQP_URL,
    REDIS_URL,
    delete_exchange,
    delete_stream,
    rabbitmq_up,
    redis_up,
    unique_channel,
)

_RABBIT = rabbitmq_up()
_REDIS = redis_up()
needs_rabbitmq = pytest.mark.skipif(not _RABBIT, reason='RabbitMQ is not running on 127.0.0.1:5672')
needs_redis = pytest.mark.skipif(not _REDIS, reason='Redis is not running on 127.0.0.1:6379')

BACKENDS = [
    pytest.param('memory', id='memory'),
    pytest.param('kombu', id='kombu', marks=needs_rabbitmq),
    pytest.param('redis', id='redis', marks=needs_redis),
    pytest.param('redis-streams', id='redis-streams', marks=needs_redis),
]


class Broker:
    """Makes managers of one backend on one unique channel, and cleans up after them."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.channel = unique_channel()
        self.bus = InMemoryBus()
        self.url = {'kombu': AMQP_URL, 'redis': REDIS_URL, 'redis-streams': REDIS_URL}.get(backend)
        self.managers: list[Any] = []

    def manager(self, write_only: bool = False, **kwargs: Any) -> Any:
        if self.backend == 'memory':
            mgr = InMemoryPubSubManager(self.bus, channel=self.channel, write_only=write_only, **kwargs)
        elif self.backend == 'kombu':
            mgr = greensio.KombuManager(self.url, channel=self.channel, write_only=write_only, **kwargs)
        else:
            if self.backend == 'redis-streams':
                kwargs['streams'] = True
            mgr = greensio.RedisManager(self.url, channel=self.channel, write_only=write_only, **kwargs)
        self.managers.append(mgr)
        return mgr

    def close(self) -> None:
        for mgr in self.managers:
            mgr.close(timeout=2)
        if self.backend == 'kombu':
            delete_exchange(self.channel)
        elif self.backend == 'redis-streams':
            delete_stream(self.channel)


@pytest.fixture(params=BACKENDS)
def broker(request: Any) -> Any:
    b = Broker(request.param)
    yield b
    b.close()


@pytest.fixture
def workers(broker: Broker, serve: Callable[[Any], str]) -> Callable[..., list[tuple[Any, str]]]:
    """``workers(n)`` starts n greensio servers sharing the broker; returns (server, url) pairs."""

    def start(n: int = 2, setup: Callable[[Any], None] | None = None) -> list[tuple[Any, str]]:
        result = []
        for _ in range(n):
            sio = greensio.Server(client_manager=broker.manager())
            if setup is not None:
                setup(sio)
            result.append((sio, serve(sio)))
        return result

    return start


def pytest_configure(config: Any) -> None:
    config.addinivalue_line('markers', 'python_socketio: the test shares its channel with python-socketio workers')
