"""Redis (or Valkey) pub/sub as the cross-worker message queue.

Shell ring: the Redis half of :class:`~greensio.PubSubManager`, on
``PUBLISH``/``SUBSCRIBE`` like python-socketio's, so both share a channel.

What Redis allows and what it does not, compared with RabbitMQ:

- The outbox, its bound, in-order replay after an outage, the bounded
  ``emit()`` and the health state work the same: a ``PUBLISH`` reply is the
  confirmation, and the outbox sends batches in one pipelined round trip.
- Redis pub/sub keeps **nothing** for a subscriber that is not connected:
  messages published while a worker's listener is reconnecting are lost for
  that worker's clients, and a message published while no worker listens
  reaches nobody.  (There is also no consumer acknowledgement to make.)
  ``streams=True`` closes that gap with a Redis stream instead of a channel
  (``_redis_streams`` says how); python-socketio workers cannot read a
  stream, so pub/sub stays the default.
- What the outbox holds through an outage is not replayed the moment Redis
  answers again: every worker's listener is reconnecting too, on its own
  schedule, and a replay that came first would reach none of them.  Redis
  counts the subscribers each ``PUBLISH`` reached; after a failed publish
  the replay waits until the channel has as many subscribers as the last
  publish reached (at most ``RESUBSCRIBE_TIMEOUT`` seconds, for a worker
  that is gone for good).
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator
from typing import Any

from .._core.pubsub import encode
from .base_redis_manager import (  # noqa: F401 - parse_redis_sentinel_url: python-socketio's module has it
    SUBSCRIBE_TIMEOUT,
    RedisSettings,
    _numsub,
    parse_redis_sentinel_url,
)
from .pubsub_manager import PubSubManager


class RedisManager(RedisSettings, PubSubManager):
    """Cross-worker client manager on Redis pub/sub, or on a Redis stream (``streams=True``).

    ``server = greensio.Server(client_manager=greensio.RedisManager(url))``.

    :param url: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``valkey://``,
        ``valkeys://`` or ``redis+sentinel://[user:pw@]h1:p1,h2:p2/<db>/<service>``
        (the service name defaults to the channel name).
    :param channel: the Redis channel; the same on every worker.
    :param write_only: ``True`` for processes that only emit (no server).
    :param logger: see :class:`PubSubManager`.
    :param json: JSON module for a write-only manager's messages.
    :param redis_options: extra arguments for ``Redis.from_url()`` or ``Sentinel()``.
    :param outbox_size: see :class:`PubSubManager`.
    :param emit_timeout: see :class:`PubSubManager`.
    :param batch_size: see :class:`PubSubManager`.
    :param streams: ``True`` to share a Redis stream, ``greensio:<channel>``,
        instead of a pub/sub channel: nothing is lost while a listener
        reconnects or when Redis restarts without its data.  Every worker
        and emitter on the channel must use it; python-socketio cannot.
    :param stream_maxlen: entries the stream keeps (approximately, as
        ``XADD MAXLEN ~``): how far behind a reconnecting listener may fall.

    Redis pub/sub does not buffer for a disconnected subscriber: see the
    module documentation for what that means during an outage.
    """

    name = 'redis'

    def initialize(self) -> None:
        self._check_monkey_patched('Redis')
        super().initialize()

    def _client(self) -> Any:
        module = self._module
        return self._connect(module, importlib.import_module(module.__name__ + '.retry').Retry,
                             self._once() if self.streams else None)

    def _once(self) -> Any:
        """A ``redis_connect_func`` for one client: the handshake on its first connection only."""
        connected = False

        def on_connect(connection: Any) -> None:
            nonlocal connected
            self._reconnecting(connected)
            connection.on_connect()
            connected = True

        return on_connect

    # -- listening ---------------------------------------------------------------------

    def _listen(self) -> Iterator[Any]:
        return self._read_stream() if self.streams else self._subscribe()

    def _read_stream(self) -> Iterator[Any]:
        client = self._client()
        try:
            self._connected(self._where_pipeline(client).execute(raise_on_error=False))
            yield None
            behind = False
            while True:
                if behind:
                    reply = self._checked_read(self._lag_pipeline(client).execute(raise_on_error=False))
                else:
                    reply = self._xread(client)
                messages, behind = self._read_entries(reply)
                if not messages:
                    yield None  # idle: lets the manager notice close()
                yield from messages
        finally:
            with contextlib.suppress(Exception):  # the server may be gone already
                client.close()

    def _subscribe(self) -> Iterator[Any]:
        client = self._client()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # "connected" must mean subscribed, or the first broadcasts are missed
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
            while True:
                reply = pubsub.get_message(timeout=self.idle_tick)
                if reply is not None and reply['type'] == 'subscribe':
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError('Redis did not confirm the subscription')
            self._subscribed(_numsub(client.pubsub_numsub(self.channel)))
            yield None
            channel = self.channel.encode('utf-8')
            while True:
                message = pubsub.get_message(timeout=self.idle_tick)
                if message is None:
                    yield None  # idle: lets the manager notice close()
                elif message['type'] == 'message' and message['channel'] == channel:
                    yield message['data']
        finally:
            # the server may be gone already; one failing close must not skip the other
            with contextlib.suppress(Exception):
                pubsub.close()
            with contextlib.suppress(Exception):
                client.close()

    # -- publishing --------------------------------------------------------------------

    def _publish(self, message: dict[str, Any]) -> Any:
        self._publish_batch([(message, encode(message, self.json))])

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        if self.streams:
            return self._add_entries(batch)
        with self._publisher_guard():
            client = self._publisher()
            subscribers = None if self._awaited is None else _numsub(client.pubsub_numsub(self.channel))
        if subscribers is not None:
            self._check_subscribers(subscribers)  # outside the guard: the connection is fine
        with self._publisher_guard():
            if len(batch) == 1:
                receivers = client.publish(self.channel, batch[0][1])
            else:
                pipe = client.pipeline(transaction=False)
                for _message, text in batch:
                    pipe.publish(self.channel, text)
                receivers = pipe.execute()[-1]
        self._pub_broken = False
        self._reached(receivers)
        return None

    def _add_entries(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        texts = [text for _message, text in batch]
        tail = self._tail
        with self._publisher_guard():
            client = self._publisher()
            at = tail.position
            replay = [] if at is None else tail.check(client.xrange(self.stream_key, at, at))
            ids = self._xadd_pipeline(client, replay + texts).execute()
        self._pub_broken = False
        tail.confirmed(texts, ids[-1])

    def _heartbeat(self) -> bool:
        if not self._pub_broken:
            return False
        with self._publisher_guard():
            self._publisher().ping()
        self._pub_broken = False
        return True

    def _drop_publisher(self) -> None:
        client, self._pub = self._pub, None
        self._pub_broken = True
        self._publisher_lost()
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already
                client.close()

    def _close(self) -> None:
        client, self._pub = self._pub, None
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already
                client.close()
