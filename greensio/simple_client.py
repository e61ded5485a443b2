"""A client for scripts: connect, emit, call, receive, disconnect (``socketio.SimpleClient``).

Shell ring, on top of :class:`greensio.Client`.  One namespace per client;
every event the server sends lands in an inbox that ``receive()`` reads in
order.  Waiting uses a ``threading.Condition``: green once gevent has
monkey-patched the process, a plain OS-thread condition otherwise.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from . import exceptions
from ._twins import SharedDocs
from .client import SIGNAL_CHECK_SECONDS, Client


class BaseSimpleClient(SharedDocs):
    """What :class:`SimpleClient` and :class:`AsyncSimpleClient` share, and their docstrings."""

    client_class: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.client_args = args
        self.client_kwargs = kwargs
        self.client: Any = None
        self.namespace = '/'
        #: True from ``connect()`` until disconnected for good (stays True while reconnecting).
        self.connected = False
        self.input_buffer: list[list[Any]] = []
        self._live = False  # the namespace is connected right now

    def _new_client(self, namespace: str) -> Any:
        """A fresh client whose handlers report to ``_update`` and fill the inbox."""
        self.namespace = namespace
        self.input_buffer = []
        client = self.client = self.client_class(*self.client_args, **self.client_kwargs)

        @client.event(namespace=namespace)
        def connect() -> None:
            self._update(live=True, connected=True)

        @client.event(namespace=namespace)
        def disconnect() -> None:
            self._update(live=False)  # emit/call wait while reconnecting

        @client.on('__disconnect_final', namespace=namespace)
        def disconnect_final() -> None:
            self._update(live=False, connected=False)

        @client.on('*', namespace=namespace)
        def on_event(event: str, *args: Any) -> None:
            self._update(event=[event, *args])

        return client

    def _update(self, **state: Any) -> None:
        raise NotImplementedError

    def connect(self, url: Any, headers: Any = {}, auth: Any = None, transports: Any = None,  # noqa: B006
                namespace: str = '/', socketio_path: str = 'socket.io', wait_timeout: float = 5) -> Any:
        """Connect to a server; the arguments are those of :meth:`greensio.Client.connect`.

        Raises ``RuntimeError`` if already connected and
        :class:`exceptions.ConnectionError` if the server cannot be reached
        or refuses the namespace.
        """
        raise NotImplementedError

    @property
    def sid(self) -> str | None:
        """The sid of this client in its namespace (it changes when reconnecting)."""
        return self.client.get_sid(self.namespace) if self.client else None

    @property
    def transport(self) -> str:
        """``'polling'``, ``'websocket'``, or ``''`` when not connected."""
        return (self.client.transport() or '') if self.client else ''

    def emit(self, event: str, data: Any = None) -> Any:
        """Send an event (no ack); waits while the client reconnects."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        """Send an event and return the server's ack; :class:`exceptions.TimeoutError` after ``timeout``."""
        raise NotImplementedError

    def receive(self, timeout: float | None = None) -> Any:
        """The next event from the server as ``[event, *args]``, in arrival order.

        Raises :class:`exceptions.TimeoutError` when none arrives within
        ``timeout`` seconds and :class:`exceptions.DisconnectedError` once
        the client is disconnected for good and the inbox is empty.
        """
        raise NotImplementedError

    def disconnect(self) -> Any:
        """Disconnect from the server (also stops a reconnection)."""
        raise NotImplementedError


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
        if self.connected:
            raise RuntimeError('Already connected')
        self._changed = threading.Condition()  # created here: after a late monkey-patch too
        client = self._new_client(namespace)
        try:
            client.connect(url, headers=headers, auth=auth, transports=transports, namespaces=[namespace],
                           socketio_path=socketio_path, wait_timeout=wait_timeout)
        except BaseException:
            self.client = None
            self._update(live=False, connected=False)
            raise
        self._update(live=True, connected=True)

    def _update(self, **state: Any) -> None:
        with self._changed:
            self._live = state.get('live', self._live)
            self.connected = state.get('connected', self.connected)
            if 'event' in state:
                self.input_buffer.append(state['event'])
            self._changed.notify_all()

    def _wait_live(self) -> Client:
        """Wait through a reconnection; ``DisconnectedError`` once it gave up."""
        with self._changed:
            while self.connected and not self._live:
                self._changed.wait(SIGNAL_CHECK_SECONDS)  # timed, so that Ctrl-C gets through
            client = self.client
            if not self.connected or client is None:
                raise exceptions.DisconnectedError()
            return client

    def emit(self, event: str, data: Any = None) -> None:
        while True:
            client = self._wait_live()
            try:
                return client.emit(event, data, namespace=self.namespace)
            except exceptions.BadNamespaceError:
                self._update(live=False)  # lost just now: wait for the reconnection

    def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        while True:
            client = self._wait_live()
            try:
                return client.call(event, data, namespace=self.namespace, timeout=timeout)
            except exceptions.BadNamespaceError:
                self._update(live=False)

    def receive(self, timeout: float | None = None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self.input_buffer:
                if not self.connected:
                    raise exceptions.DisconnectedError()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise exceptions.TimeoutError()
                self._changed.wait(SIGNAL_CHECK_SECONDS if remaining is None else min(remaining, SIGNAL_CHECK_SECONDS))
            return self.input_buffer.pop(0)

    def disconnect(self) -> None:
        client = self.client
        if client is not None:
            client.disconnect()
        self.client = None
        self._update(live=False, connected=False)

    def __enter__(self) -> SimpleClient:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        self.disconnect()
