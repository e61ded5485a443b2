"""RabbitMQ (and any kombu transport) as the cross-worker message queue.

Shell ring: the broker half of :class:`~greensio.PubSubManager`.  The
topology is chosen so that a broker restart loses nothing:

- a **fanout exchange** named after the channel, where every message is
  published, **durable** by default (python-socketio declares it
  non-durable: an existing non-durable exchange is adopted with a warning,
  see :class:`KombuManager`);
- a second, always **durable** fanout exchange, ``greensio.<channel>``,
  bound to the first one, where greensio's queues are bound.  Every
  connection binds it again before it publishes or consumes: when the
  channel's exchange is non-durable, a restart deletes that exchange and
  its bindings, and a worker whose outbox is replayed before the other
  workers have reconnected would otherwise reach none of them;
- **one durable queue per worker**, ``greensio.<channel>.<host_id>``, kept
  across reconnects so the broker buffers while the worker is away, and
  deleted by the broker ``x-expires`` after its worker is gone for good;
- **persistent messages** published with **publisher confirms**, pipelined:
  the next batch is published while RabbitMQ still writes the ones before
  it, and the outbox lets go of a message only once RabbitMQ has it on disk;
- the consumer **acknowledges after local dispatch** (prefetch bounded), so
  a message in flight during a crash is redelivered, and the receiver's
  dedup window drops what it already delivered;
- **AMQP heartbeats** serviced on both connections (the listener between
  reads, the publisher while idle).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

kombu: Any
try:
    import kombu
except ImportError:  # pragma: no cover
    kombu = None

from .._core.cluster import HEARTBEAT_MISSES
from .._core.pubsub import HEARTBEAT as HEARTBEAT_KIND
from .._core.pubsub import encode
from .amqp import (
    ACK_BATCH,
    ACK_BYTES,
    ACK_DELAY,
    CONFIRM_TIMEOUT,
    CONNECT_TIMEOUT,
    HEARTBEAT,
    PREFETCH,
    QUEUE_EXPIRES_MS,
    workers_exchange,
)
from .pubsub_manager import EMIT_TIMEOUT, OUTBOX_SIZE, PubSubManager


class KombuManager(PubSubManager):
    """Cross-worker client manager on RabbitMQ (or any kombu transport URL).

    ``server = greensio.Server(client_manager=greensio.KombuManager(url))``.

    :param url: the broker URL, e.g. ``'amqp://guest:guest@localhost:5672//'``.
    :param channel: the exchange name; the same on every worker.
    :param write_only: ``True`` for processes that only emit (no server).
    :param logger: see :class:`PubSubManager`.
    :param json: JSON module for a write-only manager's messages.
    :param connection_options: extra ``kombu.Connection()`` arguments
        (greensio sets ``heartbeat=10`` and ``connect_timeout=3``).
    :param exchange_options: extra ``kombu.Exchange()`` arguments.  Without
        ``durable`` greensio declares a durable exchange, and adopts a
        non-durable one that a python-socketio fleet already created.  In a
        mixed fleet whose exchange may be recreated from scratch, pass the
        same ``durable`` value on every worker (python-socketio's
        ``KombuManager`` accepts ``exchange_options={'durable': True}``).
    :param queue_options: extra ``kombu.Queue()`` arguments for this worker's queue.
    :param producer_options: extra ``kombu.Producer()`` arguments.
    :param outbox_size: see :class:`PubSubManager`.
    :param emit_timeout: see :class:`PubSubManager`.
    :param batch_size: see :class:`PubSubManager`.

    On the AMQP transport every message is persistent and confirmed; other
    kombu transports publish without confirms.
    """

    name = 'kombu'

    def __init__(self, url: str = 'amqp://guest:guest@localhost:5672//', channel: str = 'socketio',
                 write_only: bool = False, logger: Any = None, json: Any = None,
                 connection_options: dict | None = None, exchange_options: dict | None = None,
                 queue_options: dict | None = None, producer_options: dict | None = None,
                 *, outbox_size: int = OUTBOX_SIZE, emit_timeout: float = EMIT_TIMEOUT, batch_size: int = 1) -> None:
        if kombu is None:
            raise RuntimeError('Kombu package is not installed (Run "pip install kombu" in your virtualenv).')
        super().__init__(channel=channel, write_only=write_only, logger=logger, json=json,
                         outbox_size=outbox_size, emit_timeout=emit_timeout, batch_size=batch_size)
        self.url = url
        self.connection_options = dict(connection_options or {})
        self.exchange_options = dict(exchange_options or {})
        self.queue_options = dict(queue_options or {})
        self.producer_options = dict(producer_options or {})
        #: This worker's queue: stable for the life of the process.
        self.queue_name = f'greensio.{channel}.{self.host_id}'
        # both connections must send a heartbeat at least twice per interval
        # (the broker drops a peer after two silent ones): wake up often enough
        heartbeat = self.connection_options.get('heartbeat', HEARTBEAT)
        if heartbeat:
            self.idle_tick = min(self.idle_tick, heartbeat / 4)
        self._exchange_durable = bool(self.exchange_options.get('durable', True))
        # exchange-to-exchange bindings are a RabbitMQ extension: other kombu
        # transports bind the queue to the channel's exchange directly
        self._relay = False
        self._pub_conn: Any = None
        self._producer: Any = None
        self._pub_broken = False
        self._confirms = False
        self._next_tag = 0
        self._unconfirmed: set[int] = set()
        self._nacked = False
        self._confirmed_at = 0.0
        self._listening = False

    def initialize(self) -> None:
        self._check_monkey_patched('Kombu')
        super().initialize()

    # -- topology ----------------------------------------------------------------------

    def _connection(self) -> Any:
        options: dict[str, Any] = {'heartbeat': HEARTBEAT, 'connect_timeout': CONNECT_TIMEOUT}
        options.update(self.connection_options)
        return kombu.Connection(self.url, **options)

    def _exchange(self) -> Any:
        options: dict[str, Any] = {'type': 'fanout'}
        options.update(self.exchange_options)
        options['durable'] = self._exchange_durable
        return kombu.Exchange(self.channel, **options)

    def _workers_exchange(self) -> Any:
        return kombu.Exchange(workers_exchange(self.channel), type='fanout', durable=True)

    def _queue(self) -> Any:
        options: dict[str, Any] = {'durable': True, 'auto_delete': False,
                                   'queue_arguments': {'x-expires': QUEUE_EXPIRES_MS}}
        options.update(self.queue_options)
        exchange = self._workers_exchange() if self._relay else self._exchange()
        return kombu.Queue(self.queue_name, exchange, **options)

    def _open_channel(self, conn: Any) -> Any:
        """A channel on which both exchanges are declared and bound, adopting an existing one's durability.

        The binding is declared again on every connection, before anything
        is published or consumed on it: after a restart, a non-durable
        channel exchange comes back without it, and the replay of an outbox
        must reach the queues of workers that have not reconnected yet.
        """
        channel = conn.channel()
        tried = self._exchange_durable
        try:
            self._exchange()(channel).declare()
        except Exception as exc:
            if type(exc).__name__ != 'PreconditionFailed' or 'durable' in self.exchange_options:
                raise
            # the publisher and the listener may both get here: set, never toggle
            self._exchange_durable = not tried
            self.logger.warning(
                '%s: exchange %r already exists with durable=%s (python-socketio declares it '
                'non-durable); using it as it is. A non-durable exchange loses its bindings when '
                'RabbitMQ restarts: greensio workers still get what greensio publishes right after '
                'a restart (their queues are bound to the durable exchange %r), python-socketio '
                'workers, and what python-socketio publishes, can miss messages until they have '
                'reconnected.', self.name, self.channel, self._exchange_durable,
                workers_exchange(self.channel))
            channel = conn.channel()  # the broker closed the one that failed
            self._exchange()(channel).declare()
        if getattr(conn.transport, 'driver_type', None) == 'amqp':
            self._workers_exchange()(channel).declare()
            channel.exchange_bind(destination=workers_exchange(self.channel), source=self.channel, routing_key='')
            self._relay = True
        return channel

    # -- listening ---------------------------------------------------------------------

    def _listen(self) -> Iterator[Any]:
        conn = self._connection()
        clean = False
        try:
            conn.connect()
            channel = self._open_channel(conn)
            queue = self._queue()(channel)
            queue.declare()
            self._listening = True
            channel.basic_qos(0, PREFETCH, False)
            received: deque[Any] = deque()
            raw = getattr(conn.transport, 'driver_type', None) == 'amqp'
            if raw:
                # py-amqp's own messages: kombu's wrapper would cost more than
                # our whole decoding, and we never want its deserialisers
                channel.basic_consume(queue=self.queue_name, no_ack=False, callback=received.append)
            else:
                kombu.Consumer(channel, queues=[queue], on_message=received.append, no_ack=False,
                               auto_declare=False).consume()
            yield None
            unacked = unacked_bytes = 0  # dispatched, not yet acknowledged (raw mode acks in batches)
            last: Any = None
            while True:
                try:
                    # while acks are owed, wait only briefly: a burst is acked
                    # as a whole, an isolated message right after it
                    conn.drain_events(timeout=ACK_DELAY if unacked else self.idle_tick)
                except TimeoutError:
                    if unacked:
                        channel.basic_ack(last.delivery_tag, multiple=True)
                        unacked = unacked_bytes = 0
                    else:
                        yield None  # idle: lets the manager notice close()
                conn.heartbeat_check()
                while received:
                    last = received.popleft()
                    yield last.body
                    if raw:
                        unacked += 1
                        unacked_bytes += len(last.body)
                    else:
                        last.ack()
                if unacked >= ACK_BATCH or unacked_bytes >= ACK_BYTES:
                    # every message up to this one reached the local clients
                    channel.basic_ack(last.delivery_tag, multiple=True)
                    unacked = unacked_bytes = 0
        except GeneratorExit:
            clean = True
            raise
        finally:
            _release(conn, clean)

    # -- publishing --------------------------------------------------------------------

    def _publisher(self) -> Any:
        if self._producer is None:
            conn = self._connection()
            try:
                conn.connect()
                channel = self._open_channel(conn)
                self._confirms = getattr(conn.transport, 'driver_type', None) == 'amqp'
                if self._confirms:
                    channel.confirm_select()
                    channel.events['basic_ack'].add(self._on_ack)
                    channel.events['basic_nack'].add(self._on_nack)
                self._next_tag = 0
                self._unconfirmed.clear()
                self._nacked = False
                if self._confirms and not self.producer_options:
                    self._producer = _RawPublisher(channel, self.channel)
                else:
                    self._producer = kombu.Producer(channel, exchange=self._exchange(), auto_declare=False,
                                                    **self.producer_options)
            except BaseException:
                _release(conn, False)
                raise
            self._pub_conn = conn
        return self._producer

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._confirmed_at = time.monotonic()
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._on_ack(delivery_tag, multiple)

    def _publish_text(self, producer: Any, text: str, expiration: str | None = None) -> None:
        options = {'delivery_mode': 2} if expiration is None else {'delivery_mode': 1, 'expiration': expiration}
        producer.publish(text, routing_key='', content_type='application/json', content_encoding='utf-8',
                         retry=False, **options)
        if self._confirms:
            if not self._unconfirmed:
                self._confirmed_at = time.monotonic()  # the confirm timeout counts from here
            self._next_tag += 1
            self._unconfirmed.add(self._next_tag)

    def _wait_for_confirms(self) -> None:
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        conn = self._pub_conn
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f'RabbitMQ did not confirm {len(self._unconfirmed)} message(s)')
            try:
                conn.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                conn.heartbeat_check()
        if self._nacked:
            raise RuntimeError('RabbitMQ refused (nacked) a published message')

    def _publish(self, message: dict[str, Any]) -> Any:
        self._publish_batch([(message, encode(message, self.json))])

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        self._send_batch(batch)
        with self._publisher_guard():
            self._wait_for_confirms()

    def _send_batch(self, batch: list[tuple[dict[str, Any], str]]) -> int:
        with self._publisher_guard():
            producer = self._publisher()
            for message, text in batch:
                if message.get('method') == HEARTBEAT_KIND:
                    # a heartbeat read late would say a dead worker is alive: the broker
                    # drops it once it is as old as the heartbeat timeout, and never
                    # writes it to disk
                    ttl = self.heartbeat_interval * HEARTBEAT_MISSES
                    self._publish_text(producer, text, str(int(ttl * 1000)))
                else:
                    self._publish_text(producer, text)
        return self._next_tag  # without confirms (other transports), 0: confirmed once sent

    def _is_confirmed(self, token: int) -> bool:
        if self._nacked:
            self._drop_publisher()
            raise RuntimeError('RabbitMQ refused (nacked) a published message')
        return not self._unconfirmed or min(self._unconfirmed) > token

    def _await_confirms(self, timeout: float) -> None:
        with self._publisher_guard():
            if time.monotonic() - self._confirmed_at > CONFIRM_TIMEOUT:
                raise TimeoutError(f'RabbitMQ did not confirm {len(self._unconfirmed)} message(s)')
            conn = self._pub_conn
            try:
                conn.drain_events(timeout=timeout)
                for _ in range(PREFETCH):  # then what else it has sent, without waiting (bounded: it may keep sending)
                    conn.drain_events(timeout=0)
            except TimeoutError:
                conn.heartbeat_check()

    def _heartbeat(self) -> bool:
        if self._producer is None:
            if not self._pub_broken:
                return False  # never connected: publishers connect on first use
            with self._publisher_guard():
                self._publisher()
        conn = self._pub_conn
        with self._publisher_guard():
            try:
                conn.drain_events(timeout=0.01)  # reads the broker's heartbeats
            except TimeoutError:
                pass
            conn.heartbeat_check()
        self._pub_broken = False
        return True

    def _drop_publisher(self) -> None:
        conn, self._pub_conn, self._producer = self._pub_conn, None, None
        self._pub_broken = True
        if conn is not None:
            _release(conn, False)

    def _close(self) -> None:
        conn, self._pub_conn, self._producer = self._pub_conn, None, None
        if conn is not None:
            _release(conn, True)
        if self._listening:
            self.delete_queue()

    def delete_queue(self) -> None:
        """Delete this worker's queue on the broker (``close()`` does it)."""
        conn = self._connection()
        try:
            conn.connect()
            self._queue()(conn.channel()).delete()
        finally:
            _release(conn, True)


class _RawPublisher:
    """kombu's ``Producer.publish`` for pre-encoded JSON, straight on py-amqp (a third of the cost)."""

    def __init__(self, channel: Any, exchange: str) -> None:
        import amqp

        self._message = amqp.Message
        self._publish = channel.basic_publish
        self._exchange = exchange

    def publish(self, body: str, routing_key: str = '', content_type: str = 'application/json',
                content_encoding: str = 'utf-8', delivery_mode: int = 2, expiration: str | None = None,
                **_: Any) -> None:
        properties = {'expiration': expiration} if expiration is not None else {}
        message = self._message(body.encode(content_encoding), content_type=content_type,
                                content_encoding=content_encoding, delivery_mode=delivery_mode, **properties)
        self._publish(message, exchange=self._exchange, routing_key=routing_key)


def _release(conn: Any, clean: bool) -> None:
    """Close a connection; after an error, drop it without talking to the broker."""
    with contextlib.suppress(Exception):  # the broker may be gone already
        if clean:
            conn.release()
        else:
            conn.collect()
