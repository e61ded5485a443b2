"""greensio's AsyncClient end to end: the client scenarios of tests/test_client_e2e.py,
against the official Node socket.io 4.8 server (one process for the module)
and a greensio server in this process, plus AsyncSimpleClient and the
seed's AsyncChatClientNamespace example.

Each test runs its scenario with ``asyncio.run``.  This process is
gevent-patched (conftest), so asyncio's selector is gevent's here and the
in-process green server keeps serving while the loop waits; the seed example
and ``test_vanilla_asyncio_process`` run in plain interpreters.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import client_support
import gevent
import pytest
from client_support import CLIENT_LEFT, TRANSPORTS, Recorder, ServerProcess

import greensio
from greensio import exceptions

pytestmark = pytest.mark.timeout(30)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

node_process = client_support.node_process
server = client_support.server


def aio(fn: Callable) -> Callable:
    """Run an ``async def`` test with ``asyncio.run`` (bounded)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 25))

    return run


async def until(predicate: Callable[[], Any], timeout: float = 5, what: str = 'condition') -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        await asyncio.sleep(0.005)


async def seen(recorder: Recorder, kind: str, timeout: float = 5, **match: Any) -> dict:
    """``Recorder.wait_for`` without blocking the event loop."""
    msg = await until(lambda: recorder.find(kind, **match), timeout, f'{kind} {match}')
    recorder.messages.remove(msg)
    return msg


class Clients:
    """Makes clients; all are shut down on exit, before the server goes away."""

    def __init__(self) -> None:
        self.made: list[greensio.AsyncClient] = []

    def __call__(self, **options: Any) -> greensio.AsyncClient:
        options.setdefault('reconnection', False)
        client = greensio.AsyncClient(**options)
        self.made.append(client)
        return client

    async def __aenter__(self) -> Clients:  # noqa: PYI034 - Self needs Python 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.made:
            await client.shutdown()


def record(client: greensio.AsyncClient, namespace: str = '/',
           events: tuple[str, ...] = ('connect', 'disconnect', 'connect_error', '__disconnect_final')) -> Recorder:
    """Handlers (coroutines) that put the client's lifecycle events in a Recorder."""
    got = Recorder()
    for event in events:
        async def handler(*args: Any, _event: str = event) -> None:
            got.add({'type': _event, 'args': list(args)})

        client.on(event, handler, namespace=namespace)
    return got


# -- connecting ------------------------------------------------------------------------------


@pytest.mark.parametrize('transport', list(TRANSPORTS))
@aio
async def test_connect_emit_disconnect(server: Any, transport: str) -> None:
    async with Clients() as make:
        client = make()
        got = record(client)
        await client.connect(server.url, transports=TRANSPORTS[transport])
        assert client.connected and client.sid
        assert client.transport() == ('polling' if transport == 'polling' else 'websocket')
        await seen(got, 'connect', args=[])
        connection = await seen(server.seen, 'connection', nsp='/')
        assert client.get_sid() == client.get_sid('/') == client.namespaces['/'] == connection['sid']
        assert await client.call('echo', (1, 'two', {'three': [3]})) == (1, 'two', {'three': [3]})

        await client.disconnect()
        assert not client.connected and client.namespaces == {} and client.sid is None
        await seen(got, 'disconnect', args=[greensio.AsyncClient.reason.CLIENT_DISCONNECT])
        await seen(got, '__disconnect_final')
        await seen(server.seen, 'disconnect', sid=connection['sid'], reason=CLIENT_LEFT[server.kind])
        await asyncio.wait_for(client.wait(), 1)  # disconnected for good: returns at once


@aio
async def test_connect_twice_and_emit_to_unconnected_namespace(server: Any) -> None:
    async with Clients() as make:
        client = make()
        await client.connect(server.url, transports=['websocket'])
        with pytest.raises(exceptions.ConnectionError, match='Already connected'):
            await client.connect(server.url)
        with pytest.raises(exceptions.BadNamespaceError, match='/chat is not a connected namespace'):
            await client.emit('echo', namespace='/chat')
        with pytest.raises(ValueError, match='reserved'):
            await client.emit('connect')


@aio
async def test_unreachable_server_raises_and_reports_connect_error() -> None:
    async with Clients() as make:
        client = make()
        got = record(client)
        with pytest.raises(exceptions.ConnectionError):
            await client.connect('http://127.0.0.1:1', transports=['polling'])
        assert (await seen(got, 'connect_error'))['args']
        assert not client.connected
        await asyncio.wait_for(client.wait(), 1)


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_auth_dict_and_callable(server: Any, transport: str) -> None:
    async with Clients() as make:
        client = make()
        await client.connect(server.url, namespaces=['/', '/private'], auth={'token': 'secret'},
                             transports=TRANSPORTS[transport])
        assert set(client.namespaces) == {'/', '/private'}
        assert (await seen(server.seen, 'connection', nsp='/private'))['auth'] == {'token': 'secret'}
        await client.disconnect()

        calls = []

        def auth() -> dict:
            calls.append(1)
            return {'token': 'secret', 'n': len(calls)}

        server.seen.clear()
        client = make()
        await client.connect(server.url, namespaces='/private', auth=auth, transports=TRANSPORTS[transport])
        assert list(client.namespaces) == ['/private']
        assert (await seen(server.seen, 'connection', nsp='/private'))['auth'] == {'token': 'secret', 'n': 1}
        assert calls == [1]


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_auth_url_and_headers_may_be_coroutine_functions(server: Any, transport: str) -> None:
    # python-socketio's AsyncClient awaits them; each is awaited once per attempt
    calls = []

    async def auth() -> dict:
        await asyncio.sleep(0)
        calls.append('auth')
        return {'token': 'secret', 'from': 'coroutine'}

    async def url() -> str:
        calls.append('url')
        return server.url

    async def headers() -> dict:
        calls.append('headers')
        return {'X-Test': '1'}

    async with Clients() as make:
        client = make()
        await client.connect(url, headers=headers, namespaces='/private', auth=auth, transports=TRANSPORTS[transport])
        assert list(client.namespaces) == ['/private']
        assert (await seen(server.seen, 'connection', nsp='/private'))['auth'] == {'token': 'secret',
                                                                                  'from': 'coroutine'}
        assert sorted(calls) == ['auth', 'headers', 'url']


@aio
async def test_refusal_data_reaches_connect_error(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = record(client, '/private')
        with pytest.raises(exceptions.ConnectionError, match='One or more namespaces failed to connect: /private'):
            await client.connect(server.url, namespaces=['/', '/private'], auth={'token': 'wrong'})
        assert (await seen(got, 'connect_error'))['args'] == [
            {'message': 'not authorized', 'data': {'code': 4001, 'reason': 'bad token'}}]
        assert client.failed_namespaces == ['/private'] and not client.connected
        await seen(server.seen, 'disconnect', nsp='/')  # the namespace that was accepted is left again

        client = make()
        got = record(client)
        with pytest.raises(exceptions.ConnectionError):
            await client.connect(server.url, auth={'refuse': ['a', 1]}, transports=['websocket'])
        assert (await seen(got, 'connect_error'))['args'] == [{'message': 'refused', 'data': ['a', 1]}]


@aio
async def test_unknown_namespace_is_refused(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = record(client, '/nowhere')
        with pytest.raises(exceptions.ConnectionError, match='/nowhere'):
            await client.connect(server.url, namespaces=['/nowhere'], transports=['websocket'])
        assert (await seen(got, 'connect_error'))['args'] == [{'message': 'Invalid namespace'}]


@aio
async def test_namespaces_follow_the_handlers_and_connect_without_waiting(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = record(client, '/chat')
        await client.connect(server.url, transports=['websocket'])
        assert list(client.namespaces) == ['/chat']
        await seen(got, 'connect')
        assert (await client.call('whoami', namespace='/chat'))['sid'] == client.get_sid('/chat')
        assert client.get_sid('/') is None

        client = make()
        got = record(client, '/chat')
        await client.connect(server.url, namespaces=['/chat'], transports=['websocket'], wait=False)
        assert client.connected
        await seen(got, 'connect')
        assert await client.call('echo', 1, namespace='/chat') == 1


# -- events and acks -------------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_acks_both_ways(server: Any, transport: str) -> None:
    async with Clients() as make:
        client = make()
        answers = Recorder()

        @client.on('question')
        async def question(*args: Any) -> tuple:
            await asyncio.sleep(0)
            return ('answer', *args)

        @client.event
        def quiet(*args: Any) -> None:  # plain functions work too
            return None

        await client.connect(server.url, transports=TRANSPORTS[transport])

        async def ack(*args: Any) -> None:  # a coroutine ack callback
            answers.add({'type': 'ack', 'args': list(args)})

        await client.emit('echo', ({'a': 1}, [2]), callback=ack)
        assert (await seen(answers, 'ack'))['args'] == [{'a': 1}, [2]]
        await client.send('hi', callback=lambda *args: answers.add({'type': 'sent', 'args': list(args)}))
        await seen(server.seen, 'event', event='message', args=['hi'])
        assert await client.call('ask', ('question', 7)) == ['answer', 7]
        assert await client.call('ask', ('quiet',)) == []
        assert await client.call('ask', ('nobody_handles_this', 1)) == []


@aio
async def test_call_timeout(server: Any) -> None:
    async with Clients() as make:
        client = make()
        await client.connect(server.url, transports=['websocket'])
        with pytest.raises(exceptions.TimeoutError):
            await client.call('no_such_handler', 1, timeout=0.2)
        assert await client.call('echo', 'still fine') == 'still fine'


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_binary_both_ways(server: Any, transport: str) -> None:
    async with Clients() as make:
        client = make()
        got = Recorder()
        client.on('blob', lambda *args: got.add({'type': 'blob', 'args': list(args)}))
        client.on('bounce', lambda data: {'back': data, 'extra': b'\xfe'})
        await client.connect(server.url, transports=TRANSPORTS[transport])
        payload = {'raw': b'\x00\x01\x02', 'list': [bytearray(b'\xff' * 3000), 'text']}
        assert await client.call('echo', payload) == {'raw': b'\x00\x01\x02', 'list': [b'\xff' * 3000, 'text']}
        await client.emit('push', ('blob', b'\x10', {'n': [b'\x11']}))
        assert (await seen(got, 'blob'))['args'] == [b'\x10', {'n': [b'\x11']}]
        assert await client.call('ask', ('bounce', b'\x20')) == [{'back': b'\x20', 'extra': b'\xfe'}]


@aio
async def test_catch_all_handlers(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = Recorder()
        client.on('*', lambda event, *args: got.add({'type': 'any', 'event': event, 'args': list(args)}))
        client.on('named', lambda *args: got.add({'type': 'named', 'args': list(args)}))

        async def any_namespace(event: str, ns: str, *args: Any) -> None:
            got.add({'type': 'any-ns', 'event': event, 'ns': ns, 'args': list(args)})

        client.on('*', any_namespace, namespace='*')
        await client.connect(server.url, namespaces=['/', '/chat'], transports=['websocket'])
        await client.emit('push', ('named', 1))
        await client.emit('push', ('other', 2, 'x'))
        await client.emit('push', ('elsewhere', 3), namespace='/chat')
        assert (await seen(got, 'named'))['args'] == [1]
        assert (await seen(got, 'any'))['event'] == 'other'
        assert await seen(got, 'any-ns') == {'type': 'any-ns', 'event': 'elsewhere', 'ns': '/chat', 'args': [3]}
        assert got.find('any', event='named') is None


@aio
async def test_class_based_namespace(server: Any) -> None:
    got = Recorder()

    class Chat(greensio.AsyncClientNamespace):
        async def on_connect(self) -> None:
            got.add({'type': 'connect', 'sid': self.client.get_sid(self.namespace)})
            await self.emit('seq', 'from on_connect')

        async def on_disconnect(self, reason: str) -> None:
            got.add({'type': 'disconnect', 'reason': reason})

        def on_news(self, data: Any) -> None:  # plain methods work too
            got.add({'type': 'news', 'data': data})

        async def on_question(self, n: int) -> int:
            return n * 2

    async with Clients() as make:
        chat = Chat('/chat')
        client = make()
        client.register_namespace(chat)
        with pytest.raises(ValueError, match='Not a valid namespace class for this client'):
            client.register_namespace(greensio.ClientNamespace('/chat'))
        with pytest.raises(ValueError, match='Not a namespace instance'):
            client.register_namespace(greensio.AsyncNamespace('/chat'))
        await client.connect(server.url, transports=['websocket'])
        assert list(client.namespaces) == ['/chat']
        assert (await seen(got, 'connect'))['sid'] == client.get_sid('/chat')
        await chat.emit('push', ('news', {'n': 1}))
        assert (await seen(got, 'news'))['data'] == {'n': 1}
        assert await chat.call('ask', ('question', 21)) == [42]
        assert (await chat.call('stats'))['seq'] == ['from on_connect']
        await chat.send('via send')
        await seen(server.seen, 'event', nsp='/chat', event='message', args=['via send'])
        await chat.disconnect()
        assert (await seen(got, 'disconnect'))['reason'] == greensio.AsyncClient.reason.CLIENT_DISCONNECT


# -- disconnects from the server ---------------------------------------------------------------


@pytest.mark.parametrize('close', [False, True], ids=['namespace', 'connection'])
@aio
async def test_server_initiated_disconnect(server: Any, close: bool) -> None:
    async with Clients() as make:
        client = make(reconnection=True, reconnection_delay=0.1)
        got = record(client)
        await client.connect(server.url, transports=['websocket'])
        await client.emit('kick', close)
        await seen(got, 'disconnect', args=[greensio.AsyncClient.reason.SERVER_DISCONNECT])
        await seen(got, '__disconnect_final')
        await asyncio.wait_for(client.wait(), 5)  # a disconnect by the server is final: no reconnection
        assert not client.connected and client._reconnect_task is None
        assert got.find('connect') is got.messages[0]


@aio
async def test_server_disconnects_one_of_two_namespaces(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = record(client, '/chat')
        await client.connect(server.url, namespaces=['/', '/chat'], transports=['polling'])
        await client.emit('kick', False, namespace='/chat')
        await seen(got, 'disconnect', args=[greensio.AsyncClient.reason.SERVER_DISCONNECT])
        assert client.connected and list(client.namespaces) == ['/']
        assert await client.call('echo', 'left') == 'left'


# -- volume and order ----------------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_200_rapid_emits_arrive_in_order(server: Any, transport: str) -> None:
    async with Clients() as make:
        client = make()
        flood: list[int] = []
        client.on('flood', flood.append)
        await client.connect(server.url, transports=TRANSPORTS[transport])
        for i in range(200):
            await client.emit('seq', i)
        assert (await client.call('stats'))['seq'] == list(range(200))
        await client.emit('flood', 200)
        await until(lambda: len(flood) >= 200, what='200 flood events')
        assert flood == list(range(200))


@aio
async def test_broadcast_reaches_every_client(server: Any) -> None:
    async with Clients() as make:
        got = Recorder()
        clients = [make() for _ in range(3)]
        for n, client in enumerate(clients):
            client.on('hello', lambda data, _n=n: got.add({'type': 'hello', 'n': _n, 'data': data}))
            await client.connect(server.url, transports=['websocket'])
        await clients[0].emit('broadcast', ('hello', 'all'))
        assert sorted([(await seen(got, 'hello', n=n))['n'] for n in range(3)]) == [0, 1, 2]


@aio
async def test_handler_that_awaits_call_does_not_stop_acks(server: Any) -> None:
    async with Clients() as make:
        client = make()
        got = Recorder()

        @client.on('start')
        async def start(_: Any) -> None:
            got.add({'type': 'inner', 'value': await client.call('echo', 'inner')})

        client.on('after', lambda v: got.add({'type': 'after', 'value': v}))
        await client.connect(server.url, transports=['websocket'])
        await client.emit('push', ('start', 0))
        await client.emit('push', ('after', 1))
        assert (await seen(got, 'inner'))['value'] == 'inner'
        assert (await seen(got, 'after'))['value'] == 1


# -- reconnection ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize('kind', ['node', 'greensio'])
def test_reconnects_after_the_server_restarts(kind: str) -> None:
    if kind == 'node' and client_support.node_skip_reason():
        pytest.skip(client_support.node_skip_reason())
    proc = ServerProcess(kind).start()

    async def scenario() -> None:
        async with Clients() as make:
            client = make(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2)
            got = record(client)
            await client.connect(proc.url, transports=['websocket'])
            await seen(got, 'connect')
            first = client.get_sid()
            proc.kill()
            await seen(got, 'disconnect', args=[greensio.AsyncClient.reason.TRANSPORT_ERROR], timeout=10)
            proc.start()  # the same port
            await seen(got, 'connect', timeout=15)
            # the connect handler runs as the namespace answers; the attempt then completes
            await until(lambda: client.connected, what='the reconnection attempt to complete')
            assert client.get_sid() != first
            assert await client.call('echo', 'back') == 'back'
            assert got.find('__disconnect_final') is None

    try:
        asyncio.run(asyncio.wait_for(scenario(), 50))
    finally:
        proc.kill()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_a_server_that_breaks_the_protocol_is_dropped_and_reconnected_to(serve: Any, transport: str) -> None:
    url = serve(client_support.poisoning_server())

    async def scenario() -> None:
        async with Clients() as make:
            client = make(reconnection=True, reconnection_delay=0.05, randomization_factor=0)
            got = record(client)
            await client.connect(url, transports=TRANSPORTS[transport])
            await seen(got, 'connect')
            first = client.sid
            await client.emit('poison', '2["x",NaN]')
            await seen(got, 'disconnect', args=[greensio.AsyncClient.reason.TRANSPORT_ERROR])
            await seen(got, 'connect')  # connected again
            await until(lambda: client.connected, what='the reconnection attempt to complete')
            assert await client.call('echo', 'back', timeout=5) == 'back'
            assert client.sid != first

    asyncio.run(asyncio.wait_for(scenario(), 25))


# -- AsyncSimpleClient ----------------------------------------------------------------------------


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
@aio
async def test_async_simple_client(server: Any, transport: str) -> None:
    async with greensio.AsyncSimpleClient(reconnection=False) as sio:
        assert not sio.connected and sio.sid is None and sio.transport == ''
        await sio.connect(server.url, namespace='/chat', transports=TRANSPORTS[transport])
        assert sio.connected and sio.sid == (await seen(server.seen, 'connection', nsp='/chat'))['sid']
        assert sio.transport == transport
        with pytest.raises(RuntimeError, match='Already connected'):
            await sio.connect(server.url)
        await sio.emit('push', ('first', 1))
        await sio.emit('push', ('second', b'\x02', {'k': 'v'}))
        assert await sio.call('echo', 'x') == 'x'
        assert await sio.receive(timeout=5) == ['first', 1]
        assert await sio.receive(timeout=5) == ['second', b'\x02', {'k': 'v'}]
        start = time.monotonic()
        with pytest.raises(exceptions.TimeoutError):
            await sio.receive(timeout=0.2)
        assert 0.15 < time.monotonic() - start < 2
        # the server ends the namespace: receive() reports it once the inbox is empty
        await sio.emit('push', ('last', 3))
        await sio.emit('kick')
        assert await sio.receive(timeout=5) == ['last', 3]
        with pytest.raises(exceptions.DisconnectedError):
            await sio.receive(timeout=5)
        assert not sio.connected
        with pytest.raises(exceptions.DisconnectedError):
            await sio.emit('echo', 1)


# -- plain asyncio (no gevent in the process) --------------------------------------------------------

VANILLA = '''
import asyncio, sys
sys.modules['gevent.monkey'] = None  # prove that nothing here patches the process
import greensio

async def main(url):
    client = greensio.AsyncClient(reconnection=False)
    flood = []
    client.on('flood', flood.append)
    for transports in (['websocket'], ['polling'], None):
        await client.connect(url, transports=transports)
        assert await client.call('echo', (1, b'\\x00')) == (1, b'\\x00')
        await client.emit('flood', 50)
        for _ in range(500):
            if len(flood) == 50:
                break
            await asyncio.sleep(0.01)
        assert flood == list(range(50)), flood
        flood.clear()
        await client.disconnect()
    async with greensio.AsyncSimpleClient() as sio:
        await sio.connect(url)
        await sio.emit('push', ('hello', 'simple'))
        assert await sio.receive(timeout=5) == ['hello', 'simple']
    print('ok')

asyncio.run(main(sys.argv[1]))
'''


def test_vanilla_asyncio_process(node_process: Any) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    run = subprocess.run([sys.executable, '-c', VANILLA, node_process.url], capture_output=True, text=True,
                         timeout=25, env=env, check=False)
    assert run.returncode == 0 and run.stdout.strip() == 'ok', run.stdout + run.stderr


# -- Ctrl-C during wait() -------------------------------------------------------------------------------

CTRL_C = '''
import asyncio, gc, sys
import greensio

async def main(url, transport, handle_sigint):
    client = greensio.AsyncClient(handle_sigint=handle_sigint)
    await client.connect(url, transports=[transport])
    print('connected', flush=True)
    await client.wait()

try:
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == 'True'))
    print('returned', flush=True)
except (KeyboardInterrupt, asyncio.CancelledError) as exc:
    print(type(exc).__name__, flush=True)
gc.collect()  # aiohttp reports an unclosed session when it is collected
'''


@pytest.mark.parametrize('handle_sigint', [True, False], ids=['handle_sigint', 'asyncio.run_handles_sigint'])
@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_ctrl_c_during_wait_closes_the_session_and_tasks(serve: Any, transport: str, handle_sigint: bool) -> None:
    sio = greensio.Server()
    left: list[str] = []
    sio.on('disconnect', lambda sid, reason: left.append(reason))
    url = serve(sio)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen([sys.executable, '-c', CTRL_C, url, transport, str(handle_sigint)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        with gevent.Timeout(20, AssertionError('the client did not connect')):
            line = proc.stdout.readline()
        assert line.strip() == 'connected', line + proc.stderr.read()
        gevent.sleep(0.3)  # the client is inside wait()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert out.strip() in ('returned', 'KeyboardInterrupt', 'CancelledError'), out + err
    assert 'Unclosed' not in err, err
    assert 'Task was destroyed' not in err, err
    assert 'Traceback' not in err, err
    if handle_sigint or transport == 'websocket':
        # python-engineio's handler disconnects; else a closed websocket is seen at once (a
        # long-polling client that just stops is seen only when its heartbeat times out)
        with gevent.Timeout(5, AssertionError('the server did not see the client leave')):
            while not left:
                gevent.sleep(0.05)


# -- the seed's AsyncChatClientNamespace example ------------------------------------------------------

#: The usage example the project started from ("AsyncClientNamespace"), with
#: its indentation restored and greensio imported under python-socketio's name.
SEED_ASYNC_CHAT_CLIENT = '''
import asyncio
import greensio as socketio
class AsyncChatClientNamespace(socketio.AsyncClientNamespace):
    def __init__(self):
        super().__init__('/chat')
        self.message_queue = asyncio.Queue()
    async def on_connect(self):
        print('Connected to async chat namespace')
        await self.emit('set_username', {'username': 'Bob'})
    async def on_disconnect(self):
        print('Disconnected from async chat namespace')
    async def on_welcome(self, data):
        print(f'Welcome message: {data["message"]}')
    async def on_message(self, data):
        print(f'{data["username"]}: {data["message"]}')

        # Add to processing queue
        await self.message_queue.put(data)
    async def on_username_set(self, data):
        if data['success']:
            print('Username set successfully')
            await self.emit('join_room', {'room': 'general'})
    async def send_message(self, message, room='general'):
        await self.emit('chat_message', {
            'message': message,
            'room': room
        })
    async def process_messages(self):
        """Background task to process incoming messages"""
        while True:
            try:
                message = await asyncio.wait_for(
                    self.message_queue.get(), timeout=1.0
                )

                # Process message asynchronously
                await self.handle_message(message)
            except asyncio.TimeoutError:
                continue
    async def handle_message(self, message):

        # Simulate async message processing
        await asyncio.sleep(0.1)
        print(f'Processed message from {message["username"]}')
async def main():
    sio = socketio.AsyncClient()
    chat_ns = AsyncChatClientNamespace()
    sio.register_namespace(chat_ns)
    await sio.connect('http://localhost:5000')

    # Start message processing task
    process_task = asyncio.create_task(chat_ns.process_messages())

    # Send some messages
    await chat_ns.send_message('Hello async world!')
    await asyncio.sleep(1)
    await chat_ns.send_message('How is everyone?')

    # Wait for events
    await sio.wait()

# Run the async client
asyncio.run(main())
'''


def test_seed_async_chat_client_namespace_example_runs_as_written(serve: Any, tmp_path: Any) -> None:
    spec = importlib.util.spec_from_file_location('seed_namespaces', os.path.join(ROOT, 'examples', 'seed_namespaces.py'))
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    handled = Recorder()

    class ObservedChat(seed.ChatNamespace):
        """The seed's ChatNamespace (the server the example talks to), reporting what it handles."""

        def trigger_event(self, event: str, *args: Any) -> Any:
            result = super().trigger_event(event, *args)
            handled.add({'type': event, 'sid': args[0], 'args': list(args[1:])})
            return result

    sio = greensio.Server()
    sio.register_namespace(ObservedChat('/chat'))
    url = serve(sio)
    script = tmp_path / 'async_chat_client.py'
    script.write_text(SEED_ASYNC_CHAT_CLIENT.replace('http://localhost:5000', url))  # the only change
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    try:
        sid = handled.wait_for('connect', timeout=15)['sid']
        assert handled.wait_for('set_username', sid=sid)['args'] == [{'username': 'Bob'}]
        assert handled.wait_for('join_room', sid=sid)['args'] == [{'room': 'general'}]
        messages = [handled.wait_for('chat_message', sid=sid, timeout=5)['args'] for _ in range(2)]
        assert messages == [[{'message': 'Hello async world!', 'room': 'general'}],
                            [{'message': 'How is everyone?', 'room': 'general'}]]
        with sio.session(sid, namespace='/chat') as session:
            assert session['username'] == 'Bob'
        # the room echoes the messages sent once the example had joined it (the first one may
        # leave before join_room is handled); the example's task processes what arrives
        with gevent.Timeout(10, False):
            while 'Processed message from Bob' not in lines:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.rstrip('\n'))
        # the last namespace disconnected by the server: sio.wait() returns and the script ends
        sio.disconnect(sid, namespace='/chat')
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines += out.splitlines()
    out = '\n'.join(lines)
    in_order = ['Connected to async chat namespace', 'Welcome message: Welcome to chat!', 'Username set successfully']
    assert [line for line in lines if line in in_order] == in_order, textwrap.indent(out + err, '  ')
    assert 'Processed message from Bob' in lines, out
    assert 'Bob: How is everyone?' in lines and 'Disconnected from async chat namespace' in lines
