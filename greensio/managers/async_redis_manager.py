"""Redis (or Valkey) pub/sub as the message queue of asyncio workers (``socketio.AsyncRedisManager``).

Shell ring, the asyncio twin of ``redis_manager.py`` on redis-py's asyncio
client: the same ``PUBLISH``/``SUBSCRIBE`` channel and message format, so
green, asyncio and python-socketio workers share one channel.  What Redis
pub/sub does not keep for a disconnected subscriber is said in
``redis_manager``'s documentation; it applies here too.  ``streams=True``
shares the green manager's stream, with the same bookkeeping
(``_redis_streams``): green and asyncio workers can read it together.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import AsyncIterator
from typing import Any

from .._core.pubsub import encode
from .async_pubsub_manager import AsyncPubSubManager
from .base_redis_manager import SUBSCRIBE_TIMEOUT, RedisSettings, _numsub


class AsyncRedisManager(RedisSettings, AsyncPubSubManager):
    """Cross-worker client manager on Redis pub/sub or a Redis stream, for :class:`greensio.AsyncServer`.

    ``sio = greensio.AsyncServer(client_manager=greensio.AsyncRedisManager(url))``.
    The parameters are those of :class:`greensio.RedisManager`.
    """

    name = 'aioredis'

    def _client(self) -> Any:
        name = self._module.__name__
        return self._connect(importlib.import_module(name + '.asyncio'),
                             importlib.import_module(name + '.asyncio.retry').Retry,
                             self._once() if self.streams else None)

    def _once(self) -> Any:
        connected = False

        async def on_connect(connection: Any) -> None:
            nonlocal connected
            self._reconnecting(connected)
            await connection.on_connect()
            connected = True

        return on_connect

    def _listen(self) -> AsyncIterator[Any]:
        return self._read_stream() if self.streams else self._subscribe()

    async def _read_stream(self) -> AsyncIterator[Any]:
        client = self._client()
        try:
            self._connected(await self._where_pipeline(client).execute(raise_on_error=False))
            yield None
            behind = False
            while True:
                if behind:
                    reply = self._checked_read(await self._lag_pipeline(client).execute(raise_on_error=False))
                else:
                    reply = await self._xread(client)
                messages, behind = self._read_entries(reply)
                if not messages:
                    yield None  # idle: lets the manager notice close()
                for raw in messages:
                    yield raw
        finally:
            with contextlib.suppress(Exception):  # the server may be gone already
                await client.aclose()

    async def _subscribe(self) -> AsyncIterator[Any]:
        client = self._client()
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # "connected" must mean subscribed, or the first broadcasts are missed
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
            while True:
                reply = await pubsub.get_message(timeout=self.idle_tick)
                if reply is not None and reply['type'] == 'subscribe':
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError('Redis did not confirm the subscription')
            self._subscribed(_numsub(await client.pubsub_numsub(self.channel)))
            yield None
            channel = self.channel.encode('utf-8')
            while True:
                message = await pubsub.get_message(timeout=self.idle_tick)
                if message is None:
                    yield None  # idle: lets the manager notice close()
                elif message['type'] == 'message' and message['channel'] == channel:
                    yield message['data']
        finally:
            # the server may be gone already; one failing close must not skip the other
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _publish(self, message: dict[str, Any]) -> Any:
        await self._publish_batch([(message, encode(message, self.json))])

    async def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        if self.streams:
            return await self._add_entries(batch)
        try:
            client = self._publisher()
            subscribers = None if self._awaited is None else _numsub(await client.pubsub_numsub(self.channel))
        except BaseException:
            await self._drop_publisher()
            raise
        if subscribers is not None:
            self._check_subscribers(subscribers)  # the connection is fine: keep it
        try:
            if len(batch) == 1:
                receivers = await client.publish(self.channel, batch[0][1])
            else:
                pipe = client.pipeline(transaction=False)
                for _message, text in batch:
                    pipe.publish(self.channel, text)
                receivers = (await pipe.execute())[-1]
        except BaseException:
            await self._drop_publisher()
            raise
        self._pub_broken = False
        self._reached(receivers)
        return None

    async def _add_entries(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        texts = [text for _message, text in batch]
        tail = self._tail
        try:
            client = self._publisher()
            at = tail.position
            replay = [] if at is None else tail.check(await client.xrange(self.stream_key, at, at))
            ids = await self._xadd_pipeline(client, replay + texts).execute()
        except BaseException:
            await self._drop_publisher()
            raise
        self._pub_broken = False
        tail.confirmed(texts, ids[-1])

    async def _heartbeat(self) -> bool:
        if not self._pub_broken:
            return False
        try:
            await self._publisher().ping()
        except BaseException:
            await self._drop_publisher()
            raise
        self._pub_broken = False
        return True

    async def _drop_publisher(self) -> None:
        client, self._pub = self._pub, None
        self._pub_broken = True
        self._publisher_lost()
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already
                await client.aclose()

    async def _close(self) -> None:
        client, self._pub = self._pub, None
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already
                await client.aclose()
