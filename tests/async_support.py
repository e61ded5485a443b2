"""Drive ``tests/async_app.py`` (an ``AsyncServer`` on uvicorn) from the gevent test process.

``AsyncServerProcess`` starts the server process and talks to its control
endpoint.  ``RemoteApp`` and ``RemoteServer`` stand in for an in-process
test application and its ``sio``: attribute reads and method calls become
control requests, so scenarios written against an in-process
``greensio.Server`` (tests/test_e2e_js.py) run unchanged against the
``AsyncServer``.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import async_wire
import gevent

import greensio

APP_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'async_app.py')


def skip_reason() -> str | None:
    """Why the asyncio tests cannot run here, or None."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        return 'uvicorn is not installed (pip install -e .[dev])'
    return None


class RemoteError(Exception):
    """An exception raised in the server process (``kind`` is its class name)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f'{kind}: {message}')
        self.kind = kind


class AsyncServerProcess:
    """``tests/async_app.py`` in a subprocess, on 127.0.0.1 and a free port."""

    def __init__(self, start_timeout: float = 20) -> None:
        self.proc = subprocess.Popen([sys.executable, APP_SCRIPT], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            with gevent.Timeout(start_timeout, TimeoutError('the asyncio server process did not start')):
                line = self.proc.stdout.readline()
            self.port = int(line)
        except BaseException:
            self.close()
            raise
        self.url = f'http://127.0.0.1:{self.port}'

    def request(self, payload: dict, timeout: float = 30) -> Any:
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            conn.request('POST', '/control', body=async_wire.dumps(payload))
            response = conn.getresponse()
            answer = async_wire.loads(response.read())
        finally:
            conn.close()
        if 'error' in answer:
            raise RemoteError(answer['error'], answer['message'])
        return answer['result']

    def __call__(self, expr: str, **variables: Any) -> Any:
        """Evaluate ``expr`` in the server process (``app``, ``sio`` and ``variables`` in scope)."""
        return self.request({'expr': expr, 'vars': variables})

    def reset(self, kind: str, **options: Any) -> None:
        """A fresh application of ``kind`` (see ``async_app.KINDS``); the old one's clients are dropped."""
        self.request({'reset': kind, 'options': options})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class RemoteManager:
    def __init__(self, remote: AsyncServerProcess) -> None:
        self._remote = remote

    def is_connected(self, sid: str, namespace: str) -> bool:
        return self._remote('sio.manager.is_connected(sid, namespace)', sid=sid, namespace=namespace)

    @property
    def callbacks(self) -> dict[str, dict[int, bool]]:
        """Pending ack ids per sid (the callbacks themselves stay in the server process)."""
        return self._remote('{sid: {i: True for i in ids} for sid, ids in sio.manager.callbacks.items()}')


class RemoteEngine:
    def __init__(self, remote: AsyncServerProcess) -> None:
        self._remote = remote

    @property
    def sockets(self) -> dict[str, SimpleNamespace]:
        states = self._remote(
            "{k: {'closed': s.closed, 'upgraded': s.upgraded, '_polling': s._polling}"
            ' for k, s in sio.eio.sockets.items()}')
        return {sid: SimpleNamespace(**state) for sid, state in states.items()}

    def send(self, sid: str, data: Any) -> None:
        self._remote('sio.eio.send(sid, data)', sid=sid, data=data)


class RemoteServer:
    """The parts of a server's API the end-to-end scenarios use, called in the server process."""

    reason = greensio.Server.reason

    def __init__(self, remote: AsyncServerProcess) -> None:
        self._remote = remote
        self.manager = RemoteManager(remote)
        self.eio = RemoteEngine(remote)

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None) -> None:
        self._remote('sio.emit(event, data, to=to, room=room, skip_sid=skip_sid, namespace=namespace)',
                     event=event, data=data, to=to, room=room, skip_sid=skip_sid, namespace=namespace)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = 60) -> Any:
        try:
            return self._remote('sio.call(event, data, to=to, sid=sid, namespace=namespace, timeout=timeout)',
                                event=event, data=data, to=to, sid=sid, namespace=namespace, timeout=timeout)
        except RemoteError as exc:
            if exc.kind == 'TimeoutError':
                raise greensio.exceptions.TimeoutError() from None
            raise

    def transport(self, sid: str, namespace: str | None = None) -> str:
        return self._remote('sio.transport(sid, namespace)', sid=sid, namespace=namespace)

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        self._remote('sio.disconnect(sid, namespace)', sid=sid, namespace=namespace)

    def rooms(self, sid: str, namespace: str | None = None) -> list:
        return self._remote('sio.rooms(sid, namespace)', sid=sid, namespace=namespace)

    def get_environ(self, sid: str, namespace: str | None = None) -> dict | None:
        return self._remote('{k: v for k, v in (sio.get_environ(sid, namespace) or {}).items() if isinstance(v, str)}',
                            sid=sid, namespace=namespace)

    def shutdown(self) -> None:
        """The server process outlives the test; the next reset replaces the application."""


class RemoteApp:
    """A test application in the server process: ``app.<name>`` reads its attribute there."""

    def __init__(self, remote: AsyncServerProcess, kind: str, **options: Any) -> None:
        remote.reset(kind, **options)
        self.__dict__.update(_remote=remote, url=remote.url, sio=RemoteServer(remote))

    def __getattr__(self, name: str) -> Any:
        return self._remote(f'app.{name}')

    def sid_of(self, connect_msg: dict) -> str:
        """The server-side sid of a JS ``connect`` message (once the handler ran)."""
        from e2e_helpers import wait_until

        sid = connect_msg['id']
        wait_until(lambda: self._remote("('/', sid) in app.connected", sid=sid), what=f'connect handler for {sid}')
        return sid
