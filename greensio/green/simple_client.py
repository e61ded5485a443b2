"""A client for scripts: connect, emit, call, receive, disconnect (``socketio.SimpleClient``).

Shell ring, on top of :class:`greensio.Client`.  One namespace per client;
every event the server sends lands in an inbox that ``receive()`` reads in
order.  Waiting uses a ``threading.Condition``: green once gevent has
monkey-patched the process, a plain OS-thread condition otherwise.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from ..common.base_client import BaseSimpleClient
from ..common.twins import drive
from ..engineio.client import SIGNAL_CHECK_SECONDS
from .client import Client


class SimpleClient(BaseSimpleClient):
    """A Socket.IO client with a blocking, handler-free API.

    The constructor's arguments go to :class:`greensio.Client` (a new one
    at every ``connect()``; subclasses may set ``client_class``).  Use it
    as a context manager to disconnect on exit::

        with greensio.SimpleClient() as sio:
            sio.connect('http://localhost:5000')
            sio.emit('hello', {'name': 'me'})
            event, *args = sio.receive(timeout=5)
    """

    client_class = Client

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changed = threading.Condition()

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespace: str = '/', socketio_path: str = 'socket.io', wait_timeout: float = 5) -> None:
        drive(self._connect_flow(url, headers, auth, transports, namespace, socketio_path, wait_timeout))

    def emit(self, event: str, data: Any = None) -> None:
        drive(self._live_call_flow('emit', event, data))

    def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        return drive(self._live_call_flow('call', event, data, timeout=timeout))

    def receive(self, timeout: float | None = None) -> list[Any]:
        return drive(self._receive_flow(timeout))

    def disconnect(self) -> None:
        drive(self._disconnect_flow())

    def _new_client(self, namespace: str) -> Client:
        self._changed = threading.Condition()  # created here: after a late monkey-patch too
        return super()._new_client(namespace)

    def _guard(self) -> threading.Condition:
        return self._changed

    def _notify(self) -> None:
        self._changed.notify_all()

    def _wait_change(self, timeout: float | None) -> None:
        # timed, so that Ctrl-C gets through
        self._changed.wait(SIGNAL_CHECK_SECONDS if timeout is None else min(timeout, SIGNAL_CHECK_SECONDS))

    def __enter__(self) -> SimpleClient:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self.disconnect()
