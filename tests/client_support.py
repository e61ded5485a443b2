"""Servers for the client tests: the official Node socket.io 4.8 server and a
greensio server with the same handlers (see ``tests/js/node_server.js`` for
the events both understand).

Both report what they see as dicts (``connection``, ``disconnect``,
``event``) into a ``Recorder``; tests wait on it with a deadline.  The
greensio server runs in the test process (``build_server``) or, for the
restart tests, as a subprocess of this module::

    python tests/client_support.py '{"port": 0}'
"""

from __future__ import annotations

if __name__ == '__main__':  # the subprocess server is a gevent program
    from gevent import monkey

    monkey.patch_all()

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import pytest
from jsclient import from_js, node_executable, skip_reason, to_js

import greensio

NODE_SERVER = os.path.join(HERE, 'js', 'node_server.js')
NAMESPACES = ('/', '/chat', '/private')
#: Seconds a subprocess server gets to print its port.
STARTUP_SECONDS = 15


def node_skip_reason() -> str | None:
    reason = skip_reason()
    if reason is None and not os.path.isdir(os.path.join(HERE, 'js', 'node_modules', 'socket.io')):
        reason = 'run "npm ci" in tests/js to install socket.io'
    return reason


class Recorder:
    """Messages in arrival order; ``wait_for`` consumes the first match."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self._changed = threading.Condition()

    def add(self, msg: dict) -> None:
        with self._changed:
            self.messages.append(msg)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self.messages.clear()

    def find(self, kind: str, **match: Any) -> dict | None:
        for msg in self.messages:
            if msg.get('type') == kind and all(msg.get(k) == v for k, v in match.items()):
                return msg
        return None

    def wait_for(self, kind: str, timeout: float = 5, **match: Any) -> dict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                msg = self.find(kind, **match)
                if msg is not None:
                    self.messages.remove(msg)
                    return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f'no {kind} {match} within {timeout}s; have {self.messages[-10:]}')
                self._changed.wait(remaining)


def build_server(recorder: Recorder | None = None, **options: Any) -> greensio.Server:
    """A greensio server speaking node_server.js's events, on every namespace in NAMESPACES."""
    report: Callable[[dict], None] = recorder.add if recorder is not None else _print_json
    sio = greensio.Server(**options)
    counters = {'connections': 0, 'disconnects': 0, 'events': 0}
    sequences: dict[tuple[str, str], list] = {}

    def setup(nsp: str) -> None:
        def on(name: str) -> Callable:
            def register(fn: Callable) -> Callable:
                def handler(sid: str, *args: Any) -> Any:
                    counters['events'] += 1
                    report({'type': 'event', 'nsp': nsp, 'sid': sid, 'event': name, 'args': from_js(to_js(args))})
                    return fn(sid, *args)

                sio.on(name, handler, namespace=nsp)
                return fn

            return register

        @sio.on('connect', namespace=nsp)
        def connect(sid: str, environ: dict, auth: Any) -> None:
            auth = auth or {}
            if 'refuse' in auth:
                raise greensio.exceptions.ConnectionRefusedError('refused', auth['refuse'])
            if nsp == '/private' and auth.get('token') != 'secret':
                raise greensio.exceptions.ConnectionRefusedError('not authorized', {'code': 4001, 'reason': 'bad token'})
            counters['connections'] += 1
            report({'type': 'connection', 'nsp': nsp, 'sid': sid, 'auth': auth,
                    'transport': sio.transport(sid, nsp)})

        @sio.on('disconnect', namespace=nsp)
        def disconnect(sid: str, reason: str) -> None:
            counters['disconnects'] += 1
            sequences.pop((nsp, sid), None)
            report({'type': 'disconnect', 'nsp': nsp, 'sid': sid, 'reason': reason})

        @on('echo')
        def echo(sid: str, *args: Any) -> Any:
            return args

        @on('message')
        def message(sid: str, *args: Any) -> None:
            pass

        @on('whoami')
        def whoami(sid: str) -> dict:
            return {'sid': sid, 'nsp': nsp, 'auth': None, 'transport': sio.transport(sid, nsp)}

        @on('push')
        def push(sid: str, event: str, *args: Any) -> None:
            sio.emit(event, args, to=sid, namespace=nsp)

        @on('ask')
        def ask(sid: str, event: str, *args: Any) -> Any:
            try:
                answer = sio.call(event, args, to=sid, namespace=nsp, timeout=2)
            except greensio.exceptions.TimeoutError:
                return {'error': 'timeout'}
            if answer is None:
                return []
            return list(answer) if isinstance(answer, tuple) else [answer]

        @on('seq')
        def seq(sid: str, i: int) -> None:
            sequences.setdefault((nsp, sid), []).append(i)

        @on('stats')
        def stats(sid: str) -> dict:
            return {'seq': sequences.get((nsp, sid), []), **counters}

        @on('flood')
        def flood(sid: str, n: int) -> None:
            for i in range(n):
                sio.emit('flood', i, to=sid, namespace=nsp)

        @on('broadcast')
        def broadcast(sid: str, event: str, *args: Any) -> None:
            sio.emit(event, args, namespace=nsp)

        @on('kick')
        def kick(sid: str, close: bool = False) -> None:
            eio_sid = sio.manager.eio_sid_from_sid(sid, nsp)
            sio.disconnect(sid, namespace=nsp)
            if close and eio_sid:
                sio.eio.disconnect(eio_sid)

    for nsp in NAMESPACES:
        setup(nsp)
    return sio


def poisoning_server() -> greensio.Server:
    """A greensio server that, when asked (``poison``), sends its client a malformed Socket.IO packet."""
    sio = greensio.Server()
    sio.on('echo', lambda sid, *args: args)
    sio.on('poison', lambda sid, text: sio.eio.send(sio.manager.eio_sid_from_sid(sid, '/'), text))
    return sio


def _print_json(msg: dict) -> None:
    sys.stdout.write(json.dumps(to_js(msg)) + '\n')
    sys.stdout.flush()


class ServerProcess:
    """A server in a subprocess (Node or greensio) that prints JSON lines.

    ``start()`` waits for its ``ready`` line; ``kill()`` ends it abruptly
    (no goodbye to the clients); ``start()`` again reuses the same port.
    """

    def __init__(self, kind: str, **config: Any) -> None:
        self.kind = kind
        self.config = config
        self.recorder = Recorder()
        self.port: int = config.get('port', 0)
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def command(self) -> list[str]:
        config = json.dumps({**self.config, 'port': self.port})
        if self.kind == 'node':
            return [node_executable() or 'node', NODE_SERVER, config]
        return [sys.executable, os.path.abspath(__file__), config]

    def start(self) -> ServerProcess:
        self.recorder.clear()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        ready = self.recorder.wait_for('ready', timeout=STARTUP_SECONDS)
        self.port = ready['port']
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                self.recorder.add(from_js(json.loads(line)))
            except ValueError:
                sys.stderr.write(f'[{self.kind} server] {line}')

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdin:
            proc.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=5)

    stop = kill

    def __enter__(self) -> ServerProcess:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


# -- pytest fixtures (import them into a test module to use them) -----------------------

TRANSPORTS = {'websocket': ['websocket'], 'polling': ['polling'], 'upgrade': None}
#: What each server reports when the client leaves a namespace on its own.
CLIENT_LEFT = {'node': 'client namespace disconnect', 'greensio': 'client disconnect'}


@dataclasses.dataclass
class Target:
    """A server under test: its kind, URL and what it saw."""

    kind: str
    url: str
    seen: Recorder


@pytest.fixture(scope='module')
def node_process():
    """One Node socket.io server for a test module."""
    reason = node_skip_reason()
    if reason:
        pytest.skip(reason)
    with ServerProcess('node') as proc:
        yield proc


@pytest.fixture(params=['node', 'greensio'])
def server(request, serve) -> Target:
    """Each test runs against the Node server and an in-process greensio server."""
    if request.param == 'node':
        proc = request.getfixturevalue('node_process')
        proc.recorder.clear()
        return Target('node', proc.url, proc.recorder)
    seen = Recorder()
    return Target('greensio', serve(build_server(seen)), seen)


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    options = {k: config[k] for k in ('ping_interval', 'ping_timeout') if k in config}
    app = greensio.WSGIApp(build_server(**options))
    server = greensio.make_server(app, config.get('host', '127.0.0.1'), config.get('port', 0))
    server.start()
    _print_json({'type': 'ready', 'port': server.server_port, 'pid': os.getpid()})
    import gevent

    # stdin closing (the test ended or died) ends the server
    gevent.get_hub().threadpool.spawn(sys.stdin.read).get()
    server.stop(timeout=1)


if __name__ == '__main__':
    main()
