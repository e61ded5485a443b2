"""python-socketio 5.18's manager API on every greensio manager, sync and asyncio.

python-socketio 5.18 split registering a client in two: ``pre_connect(eio_sid,
namespace)`` gives the new sid (pre-connected: ``is_pre_connected`` true,
``is_connected`` false) and ``connect(sid, namespace)`` marks it connected.
``connect(eio_sid, namespace)``, the earlier convention, still registers a
client in one step.  One scenario runs against python-socketio's own managers
and each greensio manager, with a sync and an asyncio driver; a user manager
written against 5.18 sees the server call it that way, over a real socket.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import pytest
import socketio

import greensio
from greensio.managers.async_pubsub_manager import AsyncPubSubManager
from greensio.testing import InMemoryPubSubManager

pytestmark = pytest.mark.timeout(30)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AMQP = 'amqp://guest:guest@127.0.0.1:1//'  # never reached: nothing here initializes a queue manager
REDIS = 'redis://127.0.0.1:1'

GREEN = [('Manager', lambda: greensio.Manager()),
         ('PubSubManager', lambda: greensio.PubSubManager()),
         ('InMemoryPubSubManager', lambda: InMemoryPubSubManager()),
         ('KombuManager', lambda: greensio.KombuManager(AMQP)),
         ('RedisManager', lambda: greensio.RedisManager(REDIS))]
ASYNC = [('AsyncManager', lambda: greensio.AsyncManager()),
         ('AsyncPubSubManager', lambda: AsyncPubSubManager()),
         ('AsyncRedisManager', lambda: greensio.AsyncRedisManager(REDIS)),
         ('AsyncAioPikaManager', lambda: greensio.AsyncAioPikaManager(AMQP))]


def fake_server(packet_class: Any) -> Any:
    """What a manager reads of its server here: sid generation, JSON, logger."""
    ids = itertools.count(1)
    return SimpleNamespace(eio=SimpleNamespace(generate_id=lambda: f'sid{next(ids)}'),
                           packet_class=packet_class, logger=None)


def scenario(mgr: Any) -> Generator[Any, Any, list]:
    """Yields each manager call's result (awaited by the asyncio driver); returns observations."""
    seen: list = []
    sid = yield mgr.pre_connect('e1', '/')
    seen.append(('pre_connect', sid not in (None, 'e1'), mgr.is_pre_connected(sid, '/'), mgr.is_connected(sid, '/'),
                 mgr.sid_from_eio_sid('e1', '/') == sid, mgr.eio_sid_from_sid(sid, '/')))
    seen.append(('pre_connect again', (yield mgr.pre_connect('e1', '/'))))
    seen.append(('connect', (yield mgr.connect(sid, '/')) == sid, mgr.is_pre_connected(sid, '/'),
                 mgr.is_connected(sid, '/')))
    # the convention before 5.18: connect() with the Engine.IO sid, in one step
    old = yield mgr.connect('e2', '/')
    seen.append(('connect(eio_sid)', old not in (None, 'e2'), mgr.is_pre_connected(old, '/'),
                 mgr.is_connected(old, '/'), mgr.eio_sid_from_sid(old, '/')))
    seen.append(('connect(eio_sid) again', (yield mgr.connect('e2', '/'))))
    # a client refused while pre-connected (removed the way the server removes it)
    refused = yield mgr.pre_connect('e3', '/')
    yield mgr.enter_room(refused, '/', 'lobby')
    seen.append(('rooms while pre-connected', sorted('own' if r == refused else r for r in mgr.get_rooms(refused, '/'))))
    yield mgr.disconnect(refused, '/', ignore_queue=True)
    seen.append(('refused', mgr.is_pre_connected(refused, '/'), mgr.is_connected(refused, '/'),
                 mgr.sid_from_eio_sid('e3', '/'), mgr.get_rooms(refused, '/')))
    seen.append(('pending', {ns: sorted(s) for ns, s in mgr.pending_connect.items()}))
    seen.append(('unknown', mgr.is_pre_connected('nobody', '/'), mgr.is_pre_connected(sid, '/other')))
    return seen


def run_sync(mgr: Any) -> list:
    flow, value = scenario(mgr), None
    for _ in range(100):
        try:
            value = flow.send(value)
        except StopIteration as stop:
            return stop.value
        assert not inspect.isawaitable(value)
    raise AssertionError('the scenario did not end')


async def run_async(mgr: Any) -> list:
    flow, value = scenario(mgr), None
    for _ in range(100):
        try:
            value = flow.send(value)
        except StopIteration as stop:
            return stop.value
        if inspect.isawaitable(value):
            value = await value
    raise AssertionError('the scenario did not end')


def python_socketio_observations() -> list:
    mgr = socketio.Manager()
    mgr.set_server(fake_server(socketio.packet.Packet))
    return run_sync(mgr)


def test_the_scenario_pins_python_socketio_5_18() -> None:
    seen = python_socketio_observations()
    assert seen[0] == ('pre_connect', True, True, False, True, 'e1')
    assert seen[2] == ('connect', True, False, True)
    assert seen[3] == ('connect(eio_sid)', True, False, True, 'e2')
    async_mgr = socketio.AsyncManager()
    async_mgr.set_server(fake_server(socketio.packet.Packet))
    got = asyncio.run(run_async(async_mgr))
    if inspect.iscoroutine(got[4][1]):
        # python-socketio 5.18.1's AsyncManager.connect(eio_sid) of a client already
        # there returns an un-awaited pre_connect() coroutine where Manager returns None
        got[4][1].close()
        got[4] = ('connect(eio_sid) again', None)
    assert got == seen


@pytest.mark.parametrize(('name', 'make'), GREEN, ids=[name for name, _ in GREEN])
def test_green_managers_follow_python_socketio(name: str, make: Any) -> None:
    mgr = make()
    mgr.set_server(fake_server(greensio.packet.Packet))
    assert run_sync(mgr) == python_socketio_observations()


@pytest.mark.parametrize(('name', 'make'), ASYNC, ids=[name for name, _ in ASYNC])
def test_asyncio_managers_follow_python_socketio(name: str, make: Any) -> None:
    async def main() -> list:
        mgr = make()
        mgr.set_server(fake_server(greensio.packet.Packet))
        return await run_async(mgr)

    assert asyncio.run(main()) == python_socketio_observations()


@pytest.mark.parametrize(('name', 'make'), GREEN + ASYNC, ids=[name for name, _ in GREEN + ASYNC])
def test_signatures_are_python_socketio_5_18s(name: str, make: Any) -> None:
    mgr = make()
    theirs = socketio.AsyncManager if name.startswith('Async') else socketio.Manager
    for method in ('pre_connect', 'connect', 'is_pre_connected', 'is_connected'):
        ours, their = getattr(mgr, method), getattr(theirs, method)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(their).parameters)[1:], method
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(their), method


# -- a user's manager written against python-socketio 5.18, over a real socket ------------------------


class RecordingManager(greensio.Manager):
    """Overrides the way python-socketio 5.18's documentation of the two steps suggests."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, str]] = []

    def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        sid = super().pre_connect(eio_sid, namespace)
        self.calls.append(('pre_connect', eio_sid, namespace))
        return sid

    def connect(self, sid: str, namespace: str) -> str | None:
        self.calls.append(('connect', sid, namespace))
        return super().connect(sid, namespace)


def test_a_5_18_manager_subclass_is_called_with_the_eio_sid_then_the_sid(serve: Any) -> None:
    mgr = RecordingManager()
    sio = greensio.Server(client_manager=mgr)
    during: list = []

    @sio.on('connect')
    def on_connect(sid: str, environ: dict) -> None:
        during.append(mgr.is_connected(sid, '/'))
        sio.enter_room(sid, 'members')

    url = serve(sio)
    client = socketio.Client(reconnection=False)
    try:
        client.connect(url, transports=['websocket'])
        sid = client.get_sid('/')
        eio_sid = mgr.eio_sid_from_sid(sid, '/')
        assert eio_sid and eio_sid != sid
        assert mgr.calls == [('pre_connect', eio_sid, '/'), ('connect', sid, '/')]
        assert mgr.is_connected(sid, '/') and not mgr.is_pre_connected(sid, '/')
        assert mgr.pending_connect == {}
        assert 'members' in mgr.get_rooms(sid, '/')
        # the client counts as connected while its connect handler runs (it can join rooms, be emitted to)
        assert during == [True]
    finally:
        client.disconnect()


ASYNC_SUBCLASS = '''
import asyncio, json, socket, sys
import uvicorn
import greensio

class RecordingManager(greensio.AsyncManager):
    def __init__(self):
        super().__init__()
        self.calls = []

    async def pre_connect(self, eio_sid, namespace):
        sid = await super().pre_connect(eio_sid, namespace)
        self.calls.append(['pre_connect', eio_sid, namespace])
        return sid

    async def connect(self, sid, namespace):
        self.calls.append(['connect', sid, namespace])
        return await super().connect(sid, namespace)

async def main():
    mgr = RecordingManager()
    sio = greensio.AsyncServer(async_mode='asgi', client_manager=mgr)
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(greensio.ASGIApp(sio), lifespan='off', log_level='warning'))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    client = greensio.AsyncClient(reconnection=False)
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    await client.connect(f'http://127.0.0.1:{sock.getsockname()[1]}', transports=['websocket'])
    sid = client.get_sid('/')
    eio_sid = mgr.eio_sid_from_sid(sid, '/')
    result = {'calls': mgr.calls, 'sid': sid, 'eio_sid': eio_sid, 'connected': mgr.is_connected(sid, '/'),
              'pre_connected': mgr.is_pre_connected(sid, '/')}
    await client.disconnect()
    server.should_exit = True
    await asyncio.wait_for(serving, 10)
    print(json.dumps(result))

asyncio.run(main())
'''


def test_a_5_18_async_manager_subclass_is_called_with_the_eio_sid_then_the_sid() -> None:
    pytest.importorskip('uvicorn')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    run = subprocess.run([sys.executable, '-c', textwrap.dedent(ASYNC_SUBCLASS)], capture_output=True, text=True,
                         timeout=25, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    sid, eio_sid = result['sid'], result['eio_sid']
    assert eio_sid and eio_sid != sid
    assert result['calls'] == [['pre_connect', eio_sid, '/'], ['connect', sid, '/']]
    assert result['connected'] and not result['pre_connected']
