"""RabbitMQ through aio-pika as the message queue of asyncio workers (``socketio.AsyncAioPikaManager``).

Shell ring, the asyncio twin of ``kombu_manager.py``, with the same topology
so that green (kombu) and asyncio (aio-pika) workers share one exchange:

- a **fanout exchange** named after the channel, durable (an existing
  non-durable one, as python-socketio declares it, is adopted with a warning),
  where every message is published;
- the durable fanout exchange ``greensio.<channel>``, bound to it again by
  every connection before it publishes or consumes, where the queues are
  bound (a restart deletes a non-durable channel exchange with its bindings;
  a replayed outbox must still reach the workers that have not reconnected);
- **one durable queue per worker**, ``greensio.<channel>.<host_id>``,
  expiring ``QUEUE_EXPIRES_MS`` after its worker is gone;
- **persistent messages** with **publisher confirms** (aio-pika's channel
  default): the outbox lets go of a message once RabbitMQ confirmed it;
- the consumer **acknowledges after local dispatch**; a redelivery after a
  crash is dropped by the dedup window;
- AMQP heartbeats are serviced by aiormq on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

aio_pika: Any
try:
    import aio_pika
except ImportError:  # pragma: no cover
    aio_pika = None

from .._core.pubsub import encode
from .amqp import (
    CONNECT_TIMEOUT,
    HEARTBEAT,
    PREFETCH,
    QUEUE_EXPIRES_MS,
    workers_exchange,
)
from .async_pubsub_manager import AsyncPubSubManager
from .base_pubsub_manager import EMIT_TIMEOUT, OUTBOX_SIZE


class AsyncAioPikaManager(AsyncPubSubManager):
    """Cross-worker client manager on RabbitMQ for :class:`greensio.AsyncServer` (needs aio-pika).

    ``sio = greensio.AsyncServer(client_manager=greensio.AsyncAioPikaManager(url))``.

    :param url: the broker URL, e.g. ``'amqp://guest:guest@localhost:5672//'``.
    :param channel: the exchange name; the same on every worker, green or asyncio.
    :param write_only: ``True`` for processes that only emit (no server).
    :param logger: see :class:`~greensio.PubSubManager`.
    :param json: JSON module for a write-only manager's messages.
    :param exchange_durable: declare the exchange durable (default), or not;
        ``None`` adopts whatever exists.
    :param outbox_size: see :class:`~greensio.PubSubManager`.
    :param emit_timeout: see :class:`~greensio.PubSubManager`.
    :param batch_size: see :class:`~greensio.PubSubManager`.
    """

    name = 'asyncaiopika'

    def __init__(self, url: str = 'amqp://guest:guest@localhost:5672//', channel: str = 'socketio',
                 write_only: bool = False, logger: Any = None, json: Any = None, *,
                 exchange_durable: bool | None = None, outbox_size: int = OUTBOX_SIZE,
                 emit_timeout: float = EMIT_TIMEOUT, batch_size: int = 1) -> None:
        if aio_pika is None:
            raise RuntimeError('aio_pika package is not installed (Run "pip install aio_pika" in your virtualenv).')
        super().__init__(channel=channel, write_only=write_only, logger=logger, json=json,
                         outbox_size=outbox_size, emit_timeout=emit_timeout, batch_size=batch_size)
        self.url = url
        #: This worker's queue: stable for the life of the process.
        self.queue_name = f'greensio.{channel}.{self.host_id}'
        self._exchange_durable = True if exchange_durable is None else exchange_durable
        self._adopt = exchange_durable is None
        self._pub_conn: Any = None
        self._pub_exchange: Any = None
        self._listening = False

    # -- topology -------------------------------------------------------------------------

    async def _connection(self) -> Any:
        return await aio_pika.connect(self.url, timeout=CONNECT_TIMEOUT, heartbeat=HEARTBEAT)

    async def _exchange(self, conn: Any) -> tuple[Any, Any, Any]:
        """A channel, the channel's exchange (adopting an existing one's durability) and
        greensio's durable exchange, bound to it on this connection before anything is
        published or consumed (see the module documentation)."""
        channel = await conn.channel()
        tried = self._exchange_durable
        try:
            exchange = await channel.declare_exchange(self.channel, aio_pika.ExchangeType.FANOUT, durable=tried)
        except Exception as exc:
            if 'PRECONDITION_FAILED' not in str(exc) or not self._adopt:
                raise
            self._exchange_durable = not tried  # set, never toggle: the listener may get here too
            self.logger.warning(
                '%s: exchange %r already exists with durable=%s (python-socketio declares it '
                'non-durable); using it as it is.', self.name, self.channel, self._exchange_durable)
            channel = await conn.channel()  # the broker closed the one that failed
            exchange = await channel.declare_exchange(self.channel, aio_pika.ExchangeType.FANOUT,
                                                      durable=self._exchange_durable)
        workers = await channel.declare_exchange(workers_exchange(self.channel), aio_pika.ExchangeType.FANOUT,
                                                 durable=True)
        await workers.bind(exchange, routing_key='')
        return channel, exchange, workers

    # -- listening --------------------------------------------------------------------------

    async def _listen(self) -> AsyncIterator[Any]:
        conn = await self._connection()
        try:
            channel, _exchange, workers = await self._exchange(conn)
            await channel.set_qos(prefetch_count=PREFETCH)
            queue = await channel.declare_queue(self.queue_name, durable=True,
                                                arguments={'x-expires': QUEUE_EXPIRES_MS})
            await queue.bind(workers)
            self._listening = True
            received: asyncio.Queue = asyncio.Queue()
            await queue.consume(received.put, no_ack=False)
            yield None
            while True:
                try:
                    message = await asyncio.wait_for(received.get(), self.idle_tick)
                except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                    if conn.is_closed or channel.is_closed:
                        raise ConnectionError('the RabbitMQ connection was lost') from None
                    yield None  # idle: lets the manager notice close()
                    continue
                yield message.body
                await message.ack()  # dispatched to the local clients: RabbitMQ may forget it
        finally:
            with contextlib.suppress(Exception):  # the broker may be gone already
                await conn.close()

    # -- publishing ---------------------------------------------------------------------------

    async def _publisher(self) -> Any:
        if self._pub_exchange is None:
            conn = await self._connection()
            try:
                _channel, self._pub_exchange, _workers = await self._exchange(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            self._pub_conn = conn
        return self._pub_exchange

    async def _publish(self, message: dict[str, Any]) -> Any:
        await self._publish_batch([(message, encode(message, self.json))])

    async def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        try:
            exchange = await self._publisher()
            for _message, text in batch:
                # returns once RabbitMQ confirmed it (the channel has publisher confirms)
                await exchange.publish(
                    aio_pika.Message(text.encode('utf-8'), content_type='application/json', content_encoding='utf-8',
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key='')
        except BaseException:
            await self._drop_publisher()
            raise

    async def _heartbeat(self) -> bool:
        conn = self._pub_conn
        if conn is None:
            return False  # publishers connect on first use
        if conn.is_closed:
            await self._drop_publisher()
            await self._publisher()
        return True

    async def _drop_publisher(self) -> None:
        conn, self._pub_conn, self._pub_exchange = self._pub_conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # the broker may be gone already
                await conn.close()

    async def _close(self) -> None:
        if self._listening:
            with contextlib.suppress(Exception):  # the broker may be gone: it expires the queue itself
                conn = await self._connection()
                try:
                    channel = await conn.channel()
                    await channel.queue_delete(self.queue_name)
                finally:
                    await conn.close()
        await self._drop_publisher()
