"""Test helpers for greensio applications (public).

Integration ring.  Everything here runs in one process with no network:

- :class:`InMemoryBus` and :class:`InMemoryPubSubManager`: a message broker
  in a box and the queue manager that uses it, so several ``Server``
  instances in one test behave like workers sharing RabbitMQ, outages and
  redeliveries included.  It is the reference backend of greensio's own
  cross-worker contract tests.
- :class:`TestClient`: an in-process client for a plain ``greensio.Server``,
  no sockets, handlers run inline.
- ``SocketIOTestClient`` (``greensio.flask_testing``, loaded on first use
  so this module does not need Flask): an in-process client for Flask apps,
  what ``greensio.flask.SocketIO.test_client(app)`` returns.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from . import exceptions
from ._core.payload import from_args
from ._core.pubsub import encode
from .common.inprocess import InProcessClient
from .managers.pubsub_manager import PubSubManager

__all__ = ['BusOutage', 'InMemoryBus', 'InMemoryPubSubManager', 'TestClient', 'default_bus']


# -- in-memory pub/sub -----------------------------------------------------------------------

class BusOutage(ConnectionError):
    """Raised by an :class:`InMemoryBus` that was told to :meth:`~InMemoryBus.fail`."""


class _Subscription:
    """One subscriber's queue: survives its listener's reconnects, like a durable AMQP queue."""

    def __init__(self, bus: InMemoryBus) -> None:
        self._bus = bus
        self.ready: deque[Any] = deque()
        self.unacked: deque[Any] = deque()

    def get(self, timeout: float) -> tuple[Any] | None:
        """The next message as a 1-tuple (so ``None`` payloads stay distinct), or None."""
        cond = self._bus._cond
        deadline = time.monotonic() + timeout
        with cond:
            while True:
                self._bus._check_up()
                if self.ready:
                    data = self.ready.popleft()
                    self.unacked.append(data)
                    return (data,)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                cond.wait(remaining)

    def ack(self) -> None:
        """Acknowledge the oldest delivered message."""
        with self._bus._cond:
            self._bus._check_up()
            if self.unacked:
                self.unacked.popleft()

    def requeue_unacked(self) -> None:
        # what a broker does when a consumer's connection drops
        while self.unacked:
            self.ready.appendleft(self.unacked.pop())


class InMemoryBus:
    """A fanout broker in memory: every subscriber of a channel gets every message.

    Each subscriber (a manager's ``host_id``) has a queue that buffers while
    its listener is away and redelivers what was delivered but not
    acknowledged, as RabbitMQ does.  :meth:`fail` and :meth:`restore`
    simulate an outage; :meth:`inject` publishes raw bytes, as a foreign
    or hostile publisher could.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._channels: dict[str, dict[str, _Subscription]] = {}
        self._down = False
        #: Raw payloads in publication order, for assertions.
        self.history: list[Any] = []

    @property
    def is_down(self) -> bool:
        return self._down

    def _check_up(self) -> None:
        if self._down:
            raise BusOutage('the in-memory bus is down')

    def publish(self, channel: str, data: Any) -> int:
        """Deliver ``data`` to every subscriber of ``channel``; return how many."""
        with self._cond:
            self._check_up()
            return self._deliver(channel, data)

    def inject(self, channel: str, data: Any) -> int:
        """Publish raw ``data`` even during an outage (a test's rogue publisher)."""
        with self._cond:
            return self._deliver(channel, data)

    def _deliver(self, channel: str, data: Any) -> int:
        self.history.append(data)
        subscribers = self._channels.get(channel, {})
        for sub in subscribers.values():
            sub.ready.append(data)
        self._cond.notify_all()
        return len(subscribers)

    def subscribe(self, channel: str, subscriber: str) -> _Subscription:
        """The subscriber's queue (created once; unacked messages are redelivered)."""
        with self._cond:
            self._check_up()
            subs = self._channels.setdefault(channel, {})
            sub = subs.get(subscriber)
            if sub is None:
                sub = subs[subscriber] = _Subscription(self)
            sub.requeue_unacked()
            return sub

    def unsubscribe(self, channel: str, subscriber: str) -> None:
        with self._cond:
            self._channels.get(channel, {}).pop(subscriber, None)

    def subscribers(self, channel: str) -> list[str]:
        with self._cond:
            return list(self._channels.get(channel, {}))

    def fail(self) -> None:
        """Start an outage: publishing and receiving raise :class:`BusOutage`."""
        with self._cond:
            self._down = True
            self._cond.notify_all()

    def restore(self) -> None:
        """End the outage; queued messages are delivered again."""
        with self._cond:
            self._down = False
            self._cond.notify_all()


#: The bus an :class:`InMemoryPubSubManager` uses when given none.
default_bus = InMemoryBus()


class InMemoryPubSubManager(PubSubManager):
    """A queue manager on an :class:`InMemoryBus`: workers in one process.

    Messages travel as JSON text, exactly as on a real broker, so a payload
    that could not cross RabbitMQ fails here too.  Takes the arguments of
    :class:`~greensio.PubSubManager` plus ``bus``.
    """

    name = 'memory-pubsub'
    # no real network: reconnect quickly so tests of outages stay fast
    retry_delay_min = 0.01
    retry_delay_max = 0.1
    idle_tick = 0.1

    def __init__(self, bus: InMemoryBus | None = None, channel: str = 'socketio', write_only: bool = False,
                 logger: Any = None, json: Any = None, **kwargs: Any) -> None:
        super().__init__(channel=channel, write_only=write_only, logger=logger, json=json, **kwargs)
        self.bus = bus if bus is not None else default_bus

    def _publish(self, message: dict[str, Any]) -> Any:
        return self.bus.publish(self.channel, encode(message, self.json))

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        for _message, text in batch:
            self.bus.publish(self.channel, text)

    def _listen(self) -> Iterator[Any]:
        sub = self.bus.subscribe(self.channel, self.host_id)
        yield None
        while True:
            item = sub.get(self.idle_tick)
            if item is None:
                yield None  # idle: lets the manager notice close()
                continue
            yield item[0]
            sub.ack()  # only after the manager dispatched it

    def _close(self) -> None:
        self.bus.unsubscribe(self.channel, self.host_id)


# -- in-process client ----------------------------------------------------------------------

class TestClient(InProcessClient):
    """A Socket.IO client for a :class:`greensio.Server` that runs in-process, without sockets.

    It stands in for one Engine.IO connection and connects on creation.
    Handlers run inline, so when :meth:`emit` returns the handler has run,
    and its ack and whatever it emitted have arrived.

    :param server: the :class:`greensio.Server` under test (in-memory manager).
    :param namespace: the namespace to connect to (``'/'`` by default).
    :param auth: the connect payload handed to the connect handler.
    :param environ: WSGI environ entries for the connection (``server.get_environ(sid)``).
    :param query_string: a string or a dict, seen in ``environ['QUERY_STRING']``.
    :param headers: request headers, seen as ``HTTP_*`` environ entries.

    Received events are collected per namespace; :meth:`get_received` returns
    and clears them as ``{'name': event, 'args': [...], 'namespace': ns}``.
    A server event that asks for an ack (the server's ``call()``) is answered
    by the :meth:`on` handler for it, or with an empty ack if there is none.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, server: Any, namespace: str | None = None, auth: Any = None, environ: dict | None = None,
                 query_string: str | dict | None = None, headers: dict | None = None) -> None:
        super().__init__(server)
        self._environ_args = (environ, query_string, headers)
        #: The refusal payload of the last refused :meth:`connect`, else None.
        self.connect_error: Any = None
        self.connect(namespace=namespace, auth=auth)

    def connect(self, namespace: str | None = None, auth: Any = None) -> bool:
        """Connect to ``namespace``; return whether the server accepted.

        A refusal leaves :meth:`is_connected` false and its payload in
        :attr:`connect_error` (and ``connect_errors[namespace]``).
        """
        namespace = namespace or '/'
        self._connect(namespace, auth, self._environ)
        self.connect_error = self.connect_errors.get(namespace)
        return self.is_connected(namespace)

    def call(self, event: str, *args: Any, namespace: str | None = None) -> Any:
        """Emit ``event`` and return its ack as ``Client.call`` does: None, a value, or a tuple.

        Raises :class:`greensio.exceptions.TimeoutError` at once if no ack came
        (the handler is missing, or it did not ack): in-process, none will.
        """
        ack = self._emit(event, args, True, namespace)
        if ack is None:
            raise exceptions.TimeoutError()
        return from_args(ack)

    def _environ(self) -> dict:
        environ, query_string, headers = self._environ_args
        if isinstance(query_string, dict):
            query_string = urlencode(query_string, doseq=True)
        wsgi = {
            'REQUEST_METHOD': 'GET', 'PATH_INFO': '/socket.io/', 'SCRIPT_NAME': '',
            'QUERY_STRING': '&'.join(filter(None, ['EIO=4&transport=polling', query_string])),
            'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1',
            'REMOTE_ADDR': '127.0.0.1', 'wsgi.url_scheme': 'http',
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace('-', '_')
            wsgi[key if key in ('CONTENT_TYPE', 'CONTENT_LENGTH') else 'HTTP_' + key] = value
        wsgi.update(environ or {})
        return wsgi


def __getattr__(name: str) -> Any:
    # the Flask test client lives in its own module: importing it needs Flask
    if name == 'SocketIOTestClient':
        from .flask_testing import SocketIOTestClient

        return SocketIOTestClient
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
