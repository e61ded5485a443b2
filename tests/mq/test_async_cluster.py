"""The cluster as one server on the asyncio twin: three AsyncServers on an in-memory bus.

The bus and the queue manager are those of ``tests/test_async_pubsub.py``;
each client is an Engine.IO socket registered by hand, so what it receives
is read from its queue and its acks are fed to the server as packets.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from test_async_pubsub import Bus, CapturingSocket, MemoryManager, aio, received, until

import greensio
from greensio.cluster import AsyncRemoteSocket, BroadcastTimeoutError

from .conftest import needs_rabbitmq
from .helpers import AMQP_URL, delete_exchange, unique_channel

pytestmark = pytest.mark.timeout(30)


class FastHeartbeats(MemoryManager):
    heartbeat_interval = 0.1


async def cluster(bus: Any, clients: int = 2) -> list[tuple[greensio.AsyncServer, list[tuple[str, CapturingSocket]]]]:
    """Three AsyncServers, each with ``clients`` clients in room 'r'; waits until they know each other.

    ``bus`` is an in-memory :class:`Bus`, or a RabbitMQ channel name for ``AsyncAioPikaManager``.
    """
    workers = []
    for w in range(3):
        if isinstance(bus, str):
            manager = greensio.AsyncAioPikaManager(AMQP_URL, channel=bus)
            manager.heartbeat_interval = FastHeartbeats.heartbeat_interval
        else:
            manager = FastHeartbeats(bus)
        sio = greensio.AsyncServer(async_mode='asgi', client_manager=manager)
        sio.shared_session_keys = ('name',)

        @sio.on_server('ping')
        async def ping(data, sio=sio):
            await asyncio.sleep(0)
            return [sio.manager.host_id, data]

        connected = []
        for c in range(clients):
            sock = CapturingSocket(f'eio-{w}-{c}')
            sio.eio.sockets[sock.sid] = sock
            await sio._handle_eio_connect(sock.sid, {'QUERY_STRING': f'w={w}', 'HTTP_X_TEST': 'yes',
                                                     'REMOTE_ADDR': '10.0.0.1'})
            await sio._handle_eio_message(sock.sid, '0{"token":"t"}')
            sid = json.loads(sock.queue.get_nowait().data[1:])['sid']
            await sio.enter_room(sid, 'r')
            await sio.save_session(sid, {'name': f'{w}{c}', 'private': 1})
            connected.append((sid, sock))
        workers.append((sio, connected))
    for sio, _ in workers:
        await until(lambda sio=sio: len(sio.manager.workers()) == 3, 10)
    return workers


async def answer_all(workers, skip: set[str] = frozenset(), count: int = 1) -> None:
    """Every client (but ``skip``) acks the events it got that ask for one, with ``<data>!``."""
    for sio, clients in workers:
        for sid, sock in clients:
            await until(lambda sock=sock: not sock.queue.empty(), 5)
            for packet in received(sock):
                match = re.fullmatch(r'2(\d+)\["\w+","(\w+)"\]', packet)
                if match and sid not in skip:
                    await sio._handle_eio_message(sock.sid, f'3{match[1]}["{match[2]}!"]')


@aio
async def test_call_to_a_room_collects_every_ack_and_counts_the_missing() -> None:
    workers = await cluster(Bus())
    a = workers[0][0]
    call = asyncio.ensure_future(a.call('question', 'q', to='r', timeout=5))
    await answer_all(workers)
    assert await call == ['q!'] * 6
    got = []

    async def callback(answers, missing):
        got.append((answers, missing))

    silent = workers[2][1][0][0]
    await workers[1][0].emit('question', 'x', to='r', callback=callback, timeout=0.5)
    await answer_all(workers, skip={silent})
    await until(lambda: got, 5)
    assert got == [(['x!'] * 5, 1)]
    call = asyncio.ensure_future(a.call('question', 'y', to=['r'], timeout=0.5))
    await answer_all(workers, skip={silent})
    with pytest.raises(BroadcastTimeoutError) as caught:
        await call
    assert caught.value.answers == ['y!'] * 5 and caught.value.missing == 1
    with pytest.raises(ValueError, match='give a timeout'):
        await a.emit('question', 'z', to=['r'], callback=callback)


@aio
async def test_call_to_one_remote_sid_is_one_answer() -> None:
    workers = await cluster(Bus(), clients=1)
    sid, _sock = workers[2][1][0]
    call = asyncio.ensure_future(workers[0][0].call('question', 'one', to=sid, timeout=5))
    await answer_all(workers[2:])
    assert await call == 'one!'


@aio
async def test_fetch_sockets_and_operations_on_selectors() -> None:
    workers = await cluster(Bus())
    a, b = workers[0][0], workers[1][0]
    found = await a.fetch_sockets('r')
    assert len(found) == 6 and all(isinstance(s, AsyncRemoteSocket) for s in found)
    remote = next(s for s in found if s.sid == workers[2][1][1][0])
    assert set(remote.rooms) == {remote.sid, 'r'}
    assert remote.handshake['query'] == {'w': '2'} and remote.handshake['headers'] == {'x-test': 'yes'}
    assert remote.handshake['auth'] == {'token': 't'} and remote.handshake['address'] == '10.0.0.1'
    assert remote.data == {'name': '21'}
    await remote.enter_room('vip')
    await until(lambda: 'vip' in workers[2][0].rooms(remote.sid))
    # every client of r but worker 1's and one of worker 0's joins 'chosen'
    skip = [workers[0][1][0][0], *(sid for sid, _ in workers[1][1])]
    await b.sockets_join('chosen', to='r', skip=skip)
    expected = sorted([workers[0][1][1][0], *(sid for sid, _ in workers[2][1])])
    await until(lambda: sorted(s for sio, c in workers for s, _ in c if 'chosen' in sio.rooms(s)) == expected)
    await a.sockets_leave('chosen', to='vip')
    await until(lambda: 'chosen' not in workers[2][0].rooms(remote.sid))
    await b.disconnect_sockets(to='chosen')
    await until(lambda: sorted(s.sid for s in found if not _connected(workers, s.sid))
                == sorted(set(expected) - {remote.sid}))
    assert len(await b.fetch_sockets()) == 4


def _connected(workers, sid: str) -> bool:
    return any(sio.manager.is_connected(sid, '/') for sio, _ in workers)


@aio
async def test_server_side_emit_reaches_every_other_worker_with_acks() -> None:
    workers = await cluster(Bus(), clients=1)
    a = workers[0][0]
    answers = await a.server_side_call('ping', {'n': 1}, timeout=5)
    assert sorted(host for host, _ in answers) == sorted(sio.manager.host_id for sio, _ in workers[1:])
    got = []
    await a.server_side_emit('ping', 2, callback=lambda answers, missing: got.append((answers, missing)), timeout=5)
    await until(lambda: got)
    assert sorted(data for _, data in got[0][0]) == [2, 2] and got[0][1] == 0
    # a worker that closes leaves at once: nobody waits for it
    await workers[2][0].manager.close(timeout=1)
    await until(lambda: len(a.manager.workers()) == 2)
    assert len(await a.server_side_call('ping', 3, timeout=5)) == 1


@needs_rabbitmq
@pytest.mark.timeout(60)
def test_the_asyncio_twin_on_rabbitmq() -> None:
    """The same cluster on RabbitMQ through AsyncAioPikaManager: acks, fetch, server-side calls."""
    channel = unique_channel()

    async def run() -> None:
        workers = await cluster(channel)
        try:
            call = asyncio.ensure_future(workers[0][0].call('question', 'q', to='r', timeout=10))
            await answer_all(workers)
            assert await call == ['q!'] * 6
            assert len(await workers[1][0].fetch_sockets()) == 6
            assert len(await workers[2][0].server_side_call('ping', 1, timeout=10)) == 2
        finally:
            for sio, _ in workers:
                await sio.manager.close(timeout=2)

    try:
        asyncio.run(asyncio.wait_for(run(), 50))
    finally:
        delete_exchange(channel)
