"""AsyncPubSubManager's guarantees on an in-memory bus (no broker, no sockets).

The bus stands in for RabbitMQ or Redis through the backend seam
(``_publish_batch`` and ``_listen``); the servers are real ``AsyncServer``
objects whose clients are Engine.IO sockets registered by hand, so what a
client would receive is read from its socket's queue.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import greensio
from greensio import exceptions
from greensio._core import pubsub
from greensio.managers.async_pubsub_manager import AsyncPubSubManager

pytestmark = pytest.mark.timeout(20)


def aio(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 15))

    return run


class Bus:
    """An in-memory broker: every subscriber gets every published text; ``up`` fails it."""

    def __init__(self) -> None:
        self.up = True
        self.published: list[str] = []
        self.subscribers: list[asyncio.Queue] = []

    def deliver(self, raw: Any) -> None:
        for queue in self.subscribers:
            queue.put_nowait(raw)


class MemoryManager(AsyncPubSubManager):
    name = 'memory'
    retry_delay_min = 0.01
    retry_delay_max = 0.05
    idle_tick = 0.02

    def __init__(self, bus: Bus, **kwargs: Any) -> None:
        super().__init__(channel='test', **kwargs)
        self.bus = bus

    async def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        if not self.bus.up:
            raise ConnectionError('the bus is down')
        for _message, text in batch:
            self.bus.published.append(text)
            self.bus.deliver(text)

    async def _listen(self) -> AsyncIterator[Any]:
        if not self.bus.up:
            raise ConnectionError('the bus is down')
        queue: asyncio.Queue = asyncio.Queue()
        self.bus.subscribers.append(queue)
        try:
            yield None
            while True:
                try:
                    raw = await asyncio.wait_for(queue.get(), self.idle_tick)
                except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                    if not self.bus.up:
                        raise ConnectionError('the bus is down') from None
                    yield None
                    continue
                yield raw
        finally:
            self.bus.subscribers.remove(queue)


async def until(predicate: Callable[[], Any], timeout: float = 5) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError('condition not met in time')
        await asyncio.sleep(0.005)
    return predicate()


class CapturingSocket:
    """An Engine.IO socket registered by hand: what the server sends it is kept in ``queue``."""

    closed = False
    upgraded = False

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.queue: asyncio.Queue = asyncio.Queue()

    def send_nowait(self, pkt: Any) -> None:
        self.queue.put_nowait(pkt)


async def worker(bus: Bus) -> tuple[greensio.AsyncServer, str, CapturingSocket]:
    """An AsyncServer on the bus with one client in '/'; returns (server, sid, its socket)."""
    sio = greensio.AsyncServer(async_mode='asgi', client_manager=MemoryManager(bus))
    sock = CapturingSocket(f'eio-{len(bus.subscribers)}')
    sio.eio.sockets[sock.sid] = sock
    # python-socketio's documented entry points: the Engine.IO connection, then a CONNECT packet
    await sio._handle_eio_connect(sock.sid, {})
    assert sio.manager._ready.is_set()  # the first connection waited for the subscription
    await sio._handle_eio_message(sock.sid, '0')
    answer = sock.queue.get_nowait().data
    assert answer.startswith('0{"sid":')
    return sio, json.loads(answer[1:])['sid'], sock


def received(sock: CapturingSocket) -> list[str]:
    out = []
    while not sock.queue.empty():
        out.append(sock.queue.get_nowait().data)
    return out


@aio
async def test_emits_reach_clients_of_every_worker_once() -> None:
    bus = Bus()
    (a, sid_a, sock_a), (b, _sid_b, sock_b) = await worker(bus), await worker(bus)
    await a.emit('hello', {'n': 1})
    await b.emit('to_a', b'\x01', to=sid_a)
    await until(lambda: b.manager.stats['received'] == 1 and a.manager.stats['received'] == 1)
    assert received(sock_a) == ['2["hello",{"n":1}]', '51-["to_a",{"_placeholder":true,"num":0}]', b'\x01']
    assert received(sock_b) == ['2["hello",{"n":1}]']
    # a redelivered message (same msg_id) is dropped
    bus.deliver(next(text for text in bus.published if '"method":"emit"' in text))
    await until(lambda: b.manager.stats['duplicates'] == 1)
    assert received(sock_b) == []
    for sio in (a, b):
        await sio.shutdown()


@aio
async def test_call_to_a_client_of_another_worker() -> None:
    bus = Bus()
    (a, _sid_a, _sock_a), (b, sid_b, sock_b) = await worker(bus), await worker(bus)
    asking = asyncio.ensure_future(a.call('question', 'q', to=sid_b, timeout=5))
    await until(lambda: not sock_b.queue.empty())
    packet = sock_b.queue.get_nowait().data
    assert packet.startswith('2') and packet.endswith('["question","q"]')
    ack_id = int(packet[1:packet.index('[')])
    await b._handle_eio_message(sock_b.sid, f'3{ack_id}["answer",2]')
    assert await asking == ('answer', 2)
    for sio in (a, b):
        await sio.shutdown()


@aio
async def test_outage_fills_the_outbox_then_replays_in_order(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    bus = Bus()
    emitter = MemoryManager(bus, write_only=True, outbox_size=5, emit_timeout=0.05)
    bus.up = False
    pending = [asyncio.ensure_future(emitter.emit('n', i)) for i in range(5)]
    await until(lambda: emitter.state == 'degraded')
    with pytest.raises(exceptions.QueueFullError):
        await emitter.emit('n', 5)  # full: waits emit_timeout, then refuses
    assert emitter.stats['refused'] == 1 and emitter.outbox_length == 5
    bus.up = True
    await asyncio.gather(*pending)  # a write-only emit returns once its message is confirmed
    assert [pubsub.decode(text, emitter.json).args for text in bus.published] == [[i] for i in range(5)]
    assert emitter.state == 'healthy' and await emitter.flush(1)
    assert 'degraded' in caplog.text and 'healthy again' in caplog.text
    await emitter.close()


@aio
async def test_hostile_messages_are_dropped_and_the_listener_carries_on(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger='greensio.pubsub')
    bus = Bus()
    sio, _sid, sock = await worker(bus)
    for raw in (b'\xff\xfe', 'not json', '{"method":"emit"}', '[1,2]', {'method': 'exec', 'code': 'x'}):
        bus.deliver(raw)
    other = MemoryManager(bus, write_only=True)
    await other.emit('after', 1)
    await until(lambda: sio.manager.stats['received'] == 1)
    assert sio.manager.stats['invalid'] == 5
    assert received(sock) == ['2["after",1]']
    assert caplog.text.count('dropped an invalid message') == 5
    await other.close()
    await sio.shutdown()


@aio
async def test_the_listener_reconnects_after_an_outage() -> None:
    bus = Bus()
    sio, _sid, sock = await worker(bus)
    bus.up = False
    await until(lambda: sio.manager.state == 'degraded')
    bus.up = True
    await until(lambda: sio.manager.state == 'healthy' and bus.subscribers)
    other = MemoryManager(bus, write_only=True)
    await other.emit('back', 1)
    await until(lambda: sio.manager.stats['received'] == 1)
    assert received(sock) == ['2["back",1]']
    await other.close()
    await sio.shutdown()
