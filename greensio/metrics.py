"""Prometheus metrics for a Socket.IO server (the ``metrics`` extra).

Integration ring.  Nothing here runs unless an application creates a
:class:`Metrics`: a server without one pays one attribute check at each
counting point.  Most figures are read at scrape time from state the server
and its manager keep anyway (connected clients, websocket write backlogs,
the message queue's state, outbox and counters).  The few that must be
counted as they happen (events, handler time, bytes, connects, disconnects,
``call()`` timeouts) are counted by the server itself, in place, while a
:class:`Metrics` is attached to it (``server._metrics``): a few integer
additions per packet read or written, per event two clock reads and a
comparison with the histogram's first bucket, and per broadcast one count
of its bytes, however many clients it reaches.  A custom collector turns
the integers into Prometheus metric families when Prometheus scrapes.

Green threads and the asyncio loop never switch inside an addition, so the
counters need no lock; a scrape from another OS thread (``serve()`` under
asyncio) reads copies.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any
from wsgiref.simple_server import WSGIServer

try:
    from prometheus_client import CollectorRegistry, make_asgi_app, make_wsgi_app
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ModuleNotFoundError("greensio.metrics needs the 'metrics' extra: pip install 'greensio[metrics]' "
                              '(missing: prometheus-client)') from exc

from .common.base_server import utf8_size
from .health import _route_asgi, _route_wsgi, serve_wsgi

__all__ = ['HANDLER_BUCKETS', 'Metrics']

#: Upper bounds (seconds) of the handler duration histogram: from the tens of
#: microseconds an in-memory handler takes to the seconds of one that calls
#: out to a database or another client.
HANDLER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)

_FIRST_BOUND = HANDLER_BUCKETS[0]

#: Times a scrape retries reading a dict that another OS thread resized under it.
_READ_ATTEMPTS = 5


def _copy(read: Callable[[], Any]) -> Any:
    """``read()``, retried if another thread changed a dict while it was iterated."""
    for _ in range(_READ_ATTEMPTS - 1):
        try:
            return read()
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return read()


class _Histogram:
    """Bucket counts of one namespace; cumulated only when scraped."""

    __slots__ = ('counts', 'total')

    def __init__(self) -> None:
        self.counts = [0] * (len(HANDLER_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class Metrics:
    """Prometheus metrics of one :class:`~greensio.Server` or :class:`~greensio.AsyncServer`.

    ::

        metrics = Metrics(sio)
        app = greensio.WSGIApp(sio, metrics.wsgi_app(flask_app))   # /metrics on the app's port
        metrics.serve(9100)                                         # or on a port of its own

    :param server: the Socket.IO server to observe.  Creating the object
        starts counting; :meth:`close` stops.  A server has one at a time.
    :param worker: the value of the ``worker`` label every metric carries, so
        that the series of several worker processes stay apart (default: the
        process id).
    :param registry: a ``prometheus_client.CollectorRegistry`` to register in
        (default: a new one of its own, so the process's default registry and
        other servers are not touched).
    """

    def __init__(self, server: Any, worker: str | None = None, registry: Any = None) -> None:
        self.server = server
        self.worker = str(os.getpid()) if worker is None else str(worker)
        self.registry = CollectorRegistry(auto_describe=False) if registry is None else registry
        if getattr(server, '_metrics', None) is not None:
            raise ValueError('this server has a Metrics already: close() it first')
        # the server adds to these as traffic goes (see the counting methods below)
        self.events_sent: dict[str, int] = {}
        self.connects: dict[tuple[str, str], int] = {}
        self.disconnects: dict[tuple[str, str], int] = {}
        self.call_timeouts = 0
        self.ack_timeouts = 0
        self.received_bytes = 0
        self.sent_bytes = 0
        self._durations: dict[str, _Histogram] = {}
        self.registry.register(self)
        server._metrics = self

    # -- serving -----------------------------------------------------------------------

    def wsgi_app(self, app: Callable | None = None, path: str = '/metrics') -> Callable:
        """A WSGI app answering ``path`` with the metrics and passing anything else to ``app`` (404 without)."""
        return _route_wsgi({path: make_wsgi_app(self.registry)}, app)

    def asgi_app(self, app: Callable | None = None, path: str = '/metrics') -> Callable:
        """The ASGI twin of :meth:`wsgi_app`."""
        return _route_asgi({path: make_asgi_app(self.registry)}, app)

    def serve(self, port: int, host: str = '127.0.0.1', app: Callable | None = None) -> WSGIServer:
        """Serve :meth:`wsgi_app` (and ``app`` for other paths) on a port of its own, in a daemon thread.

        Under gevent with monkey patching the thread is a greenlet.  Returns
        the server: ``server.server_port`` is the port (useful with port 0),
        ``server.shutdown()`` stops it.
        """
        return serve_wsgi(self.wsgi_app(app), port, host)

    def close(self) -> None:
        """Stop counting and leave the registry (the server is as it was before)."""
        if self.server._metrics is self:
            self.server._metrics = None
            self.registry.unregister(self)

    # -- counting: called by the server at its dispatch points (the hot path) ----------------

    def handled(self, namespace: str, seconds: float) -> None:
        """An event's handler returned (or raised) after ``seconds``.

        One histogram per namespace also counts the namespace's events, so an
        event costs a dict lookup, a comparison (most handlers finish within
        the first bucket; the others take a C bisect) and two additions.
        """
        histogram = self._durations.get(namespace) or self._histogram(namespace)
        histogram.counts[0 if seconds <= _FIRST_BOUND else bisect_left(HANDLER_BUCKETS, seconds)] += 1
        histogram.total += seconds

    def _histogram(self, namespace: str) -> _Histogram:
        histogram = self._durations[namespace] = _Histogram()
        return histogram

    def connected(self, namespace: str, result: str) -> None:
        """A client's connection to a namespace: ``'accepted'`` or ``'refused'`` (by the connect
        handler), or ``'recovered'`` (its session restored, connection state recovery)."""
        key = (namespace, result)
        self.connects[key] = self.connects.get(key, 0) + 1

    def disconnected(self, namespace: str, reason: str) -> None:
        """A client left a namespace, for ``reason``."""
        key = (namespace, reason)
        self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def emitted(self, namespace: str, recipients: int, eio_pkts: Sequence[Any] = ()) -> None:
        """An event went to ``recipients`` clients of this worker, each sent ``eio_pkts``.

        A broadcast encodes its packets once, so its bytes are counted here
        once, not at each recipient.
        """
        self.events_sent[namespace] = self.events_sent.get(namespace, 0) + recipients
        if eio_pkts:
            self.sent(eio_pkts, recipients)

    def sent(self, eio_pkts: Sequence[Any], recipients: int = 1) -> None:
        """Engine.IO packets went to ``recipients`` clients: their payloads' UTF-8 bytes."""
        size = 0
        for eio_pkt in eio_pkts:
            data = eio_pkt.data
            if data:  # ASCII text and bytes are measured without encoding them
                size += len(data) if data.__class__ is not str or data.isascii() else utf8_size(data)
        self.sent_bytes += size * recipients

    @property
    def events_received(self) -> dict[str, int]:
        """Events received so far, by namespace."""
        return {namespace: sum(h.counts) for namespace, h in list(self._durations.items())}

    # -- scraping ----------------------------------------------------------------------

    def describe(self) -> Iterable[Any]:
        return []  # names vary with the manager; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        """Build every metric family from the counters and the server's current state."""
        worker = self.worker
        labels = ['worker']

        def family(kind: Any, name: str, doc: str, extra: tuple[str, ...] = ()) -> Any:
            return kind(name, doc, labels=[*labels, *extra])

        clients = family(GaugeMetricFamily, 'greensio_clients', 'Clients connected to a namespace of this worker',
                         ('namespace', 'transport'))
        for (namespace, transport), n in sorted(_copy(self._clients).items()):
            clients.add_metric([worker, namespace, transport], n)
        yield clients

        for name, doc, counts, extra in (
            ('greensio_connects', 'Namespace connections: accepted or refused by the connect handler, or recovered',
             self.connects, ('namespace', 'result')),
            ('greensio_disconnects', 'Namespace disconnections, by reason', self.disconnects, ('namespace', 'reason')),
            ('greensio_events_received', 'Events received from clients', _copy(lambda: self.events_received),
             ('namespace',)),
            ('greensio_events_sent', 'Events sent to clients of this worker (one per recipient)',
             self.events_sent, ('namespace',)),
        ):
            counter = family(CounterMetricFamily, name, doc, extra)
            for key, n in sorted(_copy(partial(dict, counts)).items()):
                counter.add_metric([worker, *(key if isinstance(key, tuple) else (key,))], n)
            yield counter

        durations = family(HistogramMetricFamily, 'greensio_handler_duration_seconds',
                           'Time event handlers took, waits included', ('namespace',))
        bounds = [*map(str, HANDLER_BUCKETS), '+Inf']
        for namespace, histogram in sorted(_copy(lambda: dict(self._durations)).items()):
            cumulative, running = [], 0
            for bound, n in zip(bounds, list(histogram.counts)):
                running += n
                cumulative.append((bound, running))
            durations.add_metric([worker, namespace], cumulative, histogram.total)
        yield durations

        for name, doc, value in (
            ('greensio_call_timeouts', 'call() waits that timed out without an ack', self.call_timeouts),
            ('greensio_ack_timeouts', 'Acks a broadcast waited for and did not get in time', self.ack_timeouts),
            ('greensio_received_bytes', 'Bytes of Engine.IO messages received (payloads, UTF-8)', self.received_bytes),
            ('greensio_sent_bytes', 'Bytes of Engine.IO messages sent (payloads, UTF-8, one per recipient)',
             self.sent_bytes),
        ):
            counter = family(CounterMetricFamily, name, doc)
            counter.add_metric([worker], value)
            yield counter

        slow, backlog = _copy(self._backlog)
        for name, doc, value in (
            ('greensio_slow_clients', 'Websocket clients with writes waiting because they read slowly', slow),
            ('greensio_write_backlog_bytes', 'Bytes waiting to be written to slow websocket clients (gevent server)',
             backlog),
        ):
            gauge = family(GaugeMetricFamily, name, doc)
            gauge.add_metric([worker], value)
            yield gauge

        yield from self._queue_families(worker, family)

    def _clients(self) -> dict[tuple[str, str], int]:
        manager, eio = self.server.manager, self.server.eio
        sockets = eio.sockets
        found: dict[tuple[str, str], int] = {}
        for namespace in list(manager.get_namespaces()):
            for _sid, eio_sid in list(manager.get_participants(namespace, None)):
                socket = sockets.get(eio_sid)
                if socket is None:
                    continue
                key = (namespace, 'websocket' if socket.upgraded else 'polling')
                found[key] = found.get(key, 0) + 1
        return found

    def _backlog(self) -> tuple[int, int]:
        slow = total = 0
        for socket in list(self.server.eio.sockets.values()):
            ws = getattr(socket, 'ws', None)
            if ws is not None and hasattr(ws, '_backlog_size'):  # the gevent server's websocket
                owed = ws._backlog_size
                total += owed
            elif socket.upgraded:  # the asyncio server: packets its writer has not written yet
                owed = socket.queue.qsize()
            else:
                continue
            if owed:
                slow += 1
        return slow, total

    def _queue_families(self, worker: str, family: Callable) -> Iterator[Any]:
        manager = self.server.manager
        state = getattr(manager, 'state', None)
        if state is None:  # the in-memory manager: one process, no queue
            return
        gauge = family(GaugeMetricFamily, 'greensio_message_queue_state',
                       'The message queue connection: 1 for the current state', ('state',))
        for name in ('healthy', 'degraded'):
            gauge.add_metric([worker, name], 1 if state == name else 0)
        yield gauge
        for name, doc, value in (
            ('greensio_outbox_messages', 'Messages waiting for the broker to confirm them', manager.outbox_length),
            ('greensio_outbox_capacity', 'Messages the outbox holds before emits wait and fail', manager.outbox_size),
        ):
            gauge = family(GaugeMetricFamily, name, doc)
            gauge.add_metric([worker], value)
            yield gauge
        stats = dict(manager.stats)
        for key, name, doc in (
            ('published', 'greensio_queue_published', 'Messages the broker confirmed'),
            ('received', 'greensio_queue_received', 'Messages received from other workers and processed'),
            ('duplicates', 'greensio_queue_deduplicated', 'Messages received twice and dropped'),
            ('invalid', 'greensio_queue_invalid', 'Messages that failed validation and were dropped'),
            ('refused', 'greensio_queue_refused', 'Emits refused because the outbox stayed full'),
        ):
            counter = family(CounterMetricFamily, name, doc)
            counter.add_metric([worker], stats.get(key, 0))
            yield counter
