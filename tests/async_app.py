"""A greensio ``AsyncServer`` on uvicorn, in its own process, for the tests.

The test process is gevent-monkey-patched (tests/conftest.py), so the
asyncio server runs here, in a plain interpreter: ``python async_app.py``
binds 127.0.0.1 on a free port, prints the port on stdout and serves:

- ``/socket.io/``: the current test application (one of ``KINDS``);
- ``POST /control``: the test process's remote hand.  A JSON body
  ``{"reset": kind, "options": {...}}`` replaces the application with a
  fresh one (closing every connection of the old one);
  ``{"expr": "...", "vars": {...}}`` evaluates a Python expression with
  ``app``, ``sio`` and ``vars`` in scope, awaits it if it is awaitable and
  returns the value.  Values travel as ``async_wire`` JSON.  This is a test
  harness listening on loopback only.

What the applications print (the seed examples print) is kept in
``PRINTED`` instead of going to stdout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
import socket
import sys
import time
from typing import Any

import uvicorn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import async_wire

import greensio as socketio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRINTED: list[str] = []
#: Warnings and errors the servers logged, as (logger name, message).
LOGS: list[tuple[str, str]] = []
#: uvicorn refuses websocket messages over this from their frame header.
WS_MAX_SIZE = 1_000_000


class _Recorder:
    def write(self, text: str) -> int:
        PRINTED.append(text)
        return len(text)

    def flush(self) -> None:
        pass


class _LogRecorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LOGS.append((record.name, record.getMessage()))


for _name in ('socketio.server', 'engineio.server', 'greensio.engine', 'greensio.engineio'):
    # a level set before any server exists: logger=False then adds no handler of its own
    logging.getLogger(_name).setLevel(logging.WARNING)
    logging.getLogger(_name).addHandler(_LogRecorder())


def _load_seed() -> Any:
    spec = importlib.util.spec_from_file_location('seed_async_namespaces',
                                                  os.path.join(ROOT, 'examples', 'seed_async_namespaces.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class E2EApp:
    """The twin of tests/test_e2e_js.py's ``App``: the same handlers, async (and a few plain)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault('ping_interval', 5)
        options.setdefault('ping_timeout', 5)
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', **options)
        self.connected: dict[tuple[str, str], Any] = {}
        self.environs: dict[str, dict] = {}
        self.disconnects: list[tuple[str, str, str]] = []
        self.received: list[tuple[str, str, tuple]] = []
        self.callbacks: list[tuple] = []
        self.call_results: list[tuple[str, Any, float]] = []

        @sio.event
        async def connect(sid: str, environ: dict, auth: Any) -> Any:
            if auth and auth.get('refuse') == 'raise':
                raise socketio.exceptions.ConnectionRefusedError('msg', {'x': 1})
            if auth and auth.get('refuse') == 'false':
                return False
            self.connected[('/', sid)] = auth
            self.environs[sid] = environ
            return None

        @sio.event
        def disconnect(sid: str, reason: str) -> None:  # plain functions work too
            self.disconnects.append(('/', sid, reason))

        @sio.event
        def echo(sid: str, *args: Any) -> tuple:
            self.received.append(('echo', sid, args))
            return args

        @sio.event
        def count(sid: str, i: int) -> None:
            self.received.append(('count', sid, (i,)))

        @sio.event
        async def push(sid: str, event: str, *args: Any) -> None:
            await sio.emit(event, tuple(args), to=sid)

        @sio.event
        async def burst(sid: str, n: int) -> str:
            for i in range(n):
                await sio.emit('n', i, to=sid)
            return 'sent'

        @sio.event
        async def join(sid: str, room: str) -> list:
            await sio.enter_room(sid, room)
            return sorted(sio.rooms(sid))

        @sio.event
        async def leave(sid: str, room: str) -> list:
            await sio.leave_room(sid, room)
            return sorted(sio.rooms(sid))

        @sio.event
        async def to_room(sid: str, room: Any, data: Any, skip: Any = None) -> None:
            await sio.emit('room_msg', data, to=room, skip_sid=skip)

        @sio.event
        async def kick_me(sid: str) -> None:
            await sio.disconnect(sid)

        @sio.event
        async def ask(sid: str, data: Any, timeout: float) -> Any:
            start = time.monotonic()
            try:
                result = await sio.call('question', data, to=sid, timeout=timeout)
            except socketio.exceptions.TimeoutError as exc:
                self.call_results.append((sid, type(exc).__name__, time.monotonic() - start))
                return 'timeout'
            self.call_results.append((sid, result, time.monotonic() - start))
            return ['answered', result]

        @sio.event
        async def ask_with_callback(sid: str, data: Any) -> None:
            async def answered(*args: Any) -> None:  # a coroutine ack callback
                self.callbacks.append(args)

            await sio.emit('question', data, to=sid, callback=answered)

        @sio.on('connect', namespace='/chat')
        async def chat_connect(sid: str, environ: dict, auth: Any) -> None:
            self.connected[('/chat', sid)] = auth

        @sio.on('disconnect', namespace='/chat')
        async def chat_disconnect(sid: str, reason: str) -> None:
            self.disconnects.append(('/chat', sid, reason))

        @sio.on('say', namespace='/chat')
        async def chat_say(sid: str, text: str) -> str:
            await sio.emit('said', {'text': text, 'ns': '/chat'}, to=sid, namespace='/chat')
            return 'ok:' + text


class ConformanceApp:
    """The twin of tests/test_engineio_conformance.py's ``App``."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', **options)
        self.counted: list[int] = []
        self.disconnects: list[tuple[str, str]] = []
        self.log: list[str] = []

        @sio.event
        def count(sid: str, i: int) -> None:
            self.counted.append(i)

        @sio.event
        async def echo(sid: str, *args: Any) -> Any:
            return args

        @sio.event
        async def say(sid: str, text: str) -> None:
            await sio.emit('said', text, to=sid)

        @sio.event
        async def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

    def sockets(self) -> dict[str, dict[str, Any]]:
        return {sid: {'closed': s.closed, 'upgraded': s.upgraded, '_polling': getattr(s, '_polling', False)}
                for sid, s in self.sio.eio.sockets.items()}


class OrderedApp:
    """tests/test_e2e_js.py's ordered-handlers scenario."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', async_handlers='ordered', **options)
        self.log: list[str] = []

        @sio.event
        async def ask(sid: str, data: Any) -> Any:
            result = await sio.call('question', data, to=sid, timeout=5)
            self.log.append('ask done')
            return result

        @sio.event
        def echo(sid: str, data: Any) -> Any:
            self.log.append(f'echo {data}')
            return data


class AlwaysConnectApp:
    """tests/test_e2e_js.py's always_connect refusal scenario."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', always_connect=True, **options)
        self.refused: list[str] = []

        @sio.on('connect', namespace='/chat')
        async def chat_connect(sid: str, environ: dict, auth: Any) -> None:
            self.refused.append(sid)
            raise socketio.exceptions.ConnectionRefusedError('no chat', {'x': 1})

        @sio.event
        async def echo(sid: str, *args: Any) -> tuple:
            return args


class HeartbeatApp:
    """tests/test_e2e_js.py's heartbeat scenario."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', ping_interval=0.25, ping_timeout=0.5, **options)
        self.reasons: dict[str, str] = {}

        @sio.event
        async def disconnect(sid: str, reason: str) -> None:
            self.reasons[sid] = reason

        @sio.event
        async def echo(sid: str, *args: Any) -> tuple:
            return args


class UpgradeTrafficApp:
    """tests/test_e2e_js.py's traffic-during-upgrade scenario: a task emits across the switch."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', **options)
        self.sent: list[int] = []
        self.received: list[int] = []
        self.upgraded_at: list[int] = []

        async def pump(sid: str) -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(self.sent) < 5000:
                await sio.emit('n', len(self.sent), to=sid)
                self.sent.append(len(self.sent))
                if not self.upgraded_at and sio.transport(sid) == 'websocket':
                    self.upgraded_at.append(len(self.sent))
                if self.upgraded_at and len(self.sent) >= self.upgraded_at[0] + 100:
                    return
                if len(self.sent) % 5 == 0:
                    await asyncio.sleep(0.001)

        @sio.event
        def connect(sid: str, environ: dict) -> None:
            sio.start_background_task(pump, sid)

        @sio.event
        def count(sid: str, i: int) -> None:
            self.received.append(i)


class HostileApp:
    """The twin of tests/test_hostile.py's ``Target``: handlers that record what they are asked."""

    def __init__(self, **options: Any) -> None:
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', **options)
        self.calls: list[tuple[Any, ...]] = []
        self.connects: list[str] = []
        self.disconnects: list[tuple[str, str]] = []

        @sio.event
        async def connect(sid: str, environ: dict, auth: Any = None) -> None:
            self.connects.append(sid)

        @sio.event
        async def disconnect(sid: str, reason: str) -> None:
            self.disconnects.append((sid, reason))

        @sio.event
        async def echo(sid: str, *args: Any) -> Any:
            return args[0] if len(args) == 1 else args

        @sio.event
        async def join(sid: str, room: str) -> str:
            await sio.enter_room(sid, room)
            return 'joined'

        @sio.event
        async def relay(sid: str, room: str, *args: Any) -> None:
            self.calls.append(('relay', sid, *args))
            await sio.emit('relayed', args, to=room)

        @sio.event
        async def up(sid: str, *args: Any) -> None:
            self.calls.append(('up', sid, *args))

        @sio.on('*')
        async def catch_all(event: str, sid: str, *args: Any) -> None:
            self.calls.append(('*', event, sid, *args))

        @sio.on('*', namespace='*')
        async def catch_all_namespaces(event: str, namespace: str, sid: str, *args: Any) -> None:
            self.calls.append(('*/*', event, namespace, sid, *args))

        @sio.on('connect', namespace='/slow')
        async def slow_connect(sid: str, environ: dict, auth: Any) -> bool:
            await asyncio.sleep(0.2)  # an authentication lookup
            self.calls.append(('slow connect', auth))
            return auth == {'token': 'good'}

        @sio.on('secret', namespace='/slow')
        async def secret(sid: str) -> str:
            self.calls.append(('secret',))
            return 'the secret'


class MQApp:
    """An asyncio worker on a message queue, with tests/mq/mq_server.py's handlers."""

    def __init__(self, backend: str, url: str, channel: str, **options: Any) -> None:
        if backend == 'aiopika':
            manager = socketio.AsyncAioPikaManager(url, channel=channel)
        else:
            manager = socketio.AsyncRedisManager(url, channel=channel, streams=backend == 'redis-streams')
        self.sio = sio = socketio.AsyncServer(async_mode='asgi', client_manager=manager, **options)

        @sio.on('join')
        async def join(sid: str, room: str) -> str:
            await sio.enter_room(sid, room)
            return 'joined'

        @sio.on('blast')
        async def blast(sid: str, spec: dict) -> int:
            # a stream of broadcasts numbered from 0, published by this worker
            for i in range(spec['count']):
                await sio.emit(spec['event'], i, room=spec.get('room'))
                if i % 64 == 63:
                    await asyncio.sleep(0)
            return spec['count']

        @sio.on('relay_call')
        async def relay_call(sid: str, spec: dict) -> Any:
            return await sio.call('question', spec['data'], to=spec['sid'], timeout=10)

        self._backend, self._url, self._channel = backend, url, channel

    async def external_emit(self, event: str, count: int) -> int:
        """What an asyncio script does with a write-only manager (python-socketio's usage): emit, end."""
        if self._backend == 'aiopika':
            manager = socketio.AsyncAioPikaManager(self._url, channel=self._channel, write_only=True)
        else:
            manager = socketio.AsyncRedisManager(self._url, channel=self._channel, write_only=True,
                                                 streams=self._backend == 'redis-streams')
        for i in range(count):
            await manager.emit(event, i)
        await manager.close()
        return manager.stats['published']


class SeedApp:
    """The seed's AsyncChatNamespace and AsyncGameNamespace, registered as the seed does."""

    def __init__(self, **options: Any) -> None:
        self.seed = _load_seed()
        self.sio = self.seed.create_server(**options)
        self.chat = self.sio.namespace_handlers['/chat']
        self.game = self.sio.namespace_handlers['/game']


KINDS = {
    'e2e': E2EApp,
    'conformance': ConformanceApp,
    'ordered': OrderedApp,
    'always_connect': AlwaysConnectApp,
    'heartbeat': HeartbeatApp,
    'upgrade_traffic': UpgradeTrafficApp,
    'hostile': HostileApp,
    'mq': MQApp,
    'seed': SeedApp,
}


class Harness:
    """The ASGI app uvicorn serves: the control endpoint, else the current application."""

    def __init__(self) -> None:
        self.app: Any = None
        self.asgi: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope['type'] == 'http' and scope['path'] == '/control':
            await self._control(receive, send)
        elif self.asgi is not None:
            await self.asgi(scope, receive, send)
        elif scope['type'] == 'http':
            await _respond(send, 503, b'no application yet')

    async def _control(self, receive: Any, send: Any) -> None:
        body = b''
        while True:
            event = await receive()
            body += event.get('body', b'')
            if not event.get('more_body'):
                break
        request = async_wire.loads(body)
        try:
            if 'reset' in request:
                await self._reset(request['reset'], request.get('options') or {})
                result: Any = None
            else:
                scope = {'app': self.app, 'sio': self.app.sio, 'asyncio': asyncio, 'PRINTED': PRINTED,
                         'LOGS': LOGS, **request.get('vars', {})}
                result = eval(request['expr'], scope)  # the test harness's remote hand
                if inspect.isawaitable(result):
                    result = await result
            answer = {'result': result}
        except Exception as exc:  # noqa: BLE001 - reported to the test process
            answer = {'error': type(exc).__name__, 'message': str(exc)}
        await _respond(send, 200, async_wire.dumps(answer))

    async def _reset(self, kind: str, options: dict) -> None:
        old = self.app
        self.app = KINDS[kind](**options)
        self.asgi = socketio.ASGIApp(self.app.sio)
        PRINTED.clear()
        LOGS.clear()
        if old is not None:
            await old.sio.eio.disconnect()
            await old.sio.shutdown()


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'application/json')]})
    await send({'type': 'http.response.body', 'body': body})


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', 0))
    sock.listen(128)
    config = uvicorn.Config(Harness(), lifespan='off', log_level='warning', ws_max_size=WS_MAX_SIZE,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    print(sock.getsockname()[1], flush=True)
    sys.stdout = _Recorder()
    await server.serve(sockets=[sock])


if __name__ == '__main__':
    asyncio.run(main())
