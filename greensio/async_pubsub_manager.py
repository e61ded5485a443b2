"""Cross-worker messaging for asyncio servers (``socketio.AsyncPubSubManager``).

Shell ring, the asyncio twin of ``pubsub_manager.py``: the same wire schema
(``_core.pubsub``, python-socketio's shapes plus a schema version and
message ids), so green and asyncio workers share one channel, and the same
guarantees: an outbox drained in order by one task (``emit()`` never waits
on the broker, except for room in a full outbox, at most ``emit_timeout``),
publishing confirmed before a message leaves the outbox, duplicates dropped
by message id, a visible health state, hostile messages logged and dropped.
The health bookkeeping and the remote-ack registry are the green manager's
own methods, borrowed: they never wait, so one implementation serves both.

A backend implements ``async _publish_batch(batch)`` (or ``_publish``) and
``_listen()``, an async generator of raw messages that yields ``None`` once
it is subscribed (and when idle) and raises when its connection fails;
optional ``async _heartbeat()`` and ``async _close()``.

A write-only manager (no server: a script that only emits) waits in
``emit()`` until the broker confirmed the message, up to ``CLOSE_TIMEOUT``
seconds, as python-socketio's did, so a script can end right after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from itertools import islice
from typing import Any

from . import exceptions
from ._core import pubsub, safejson
from ._twins import adopt_docstrings
from .async_manager import AsyncManager
from .pubsub_manager import (
    CLOSE_TIMEOUT,
    DEGRADED,
    EMIT_TIMEOUT,
    HEALTHY,
    IDLE_TICK,
    LISTEN_READY_TIMEOUT,
    OUTBOX_SIZE,
    PUBLISH_BATCH,
    RETRY_DELAY_MAX,
    RETRY_DELAY_MIN,
    PubSubManager,
    default_logger,
)

__all__ = ['DEGRADED', 'HEALTHY', 'AsyncPubSubManager']


class AsyncPubSubManager(AsyncManager):
    """Share clients, rooms and emits between asyncio workers through a message broker.

    A base class: :class:`~greensio.AsyncRedisManager` and
    :class:`~greensio.AsyncAioPikaManager` are its backends.  The
    parameters are those of :class:`~greensio.PubSubManager`.
    """

    name = 'asyncpubsub'
    retry_delay_min = RETRY_DELAY_MIN
    retry_delay_max = RETRY_DELAY_MAX
    idle_tick = IDLE_TICK

    def __init__(self, channel: str = 'socketio', write_only: bool = False, logger: Any = None, json: Any = None,
                 *, outbox_size: int = OUTBOX_SIZE, emit_timeout: float = EMIT_TIMEOUT) -> None:
        super().__init__()
        if outbox_size < 1:
            raise ValueError('outbox_size must be at least 1')
        self.channel = channel
        self.write_only = write_only
        self.host_id = uuid.uuid4().hex
        self._custom_logger = logger
        self.logger = logger or default_logger
        self.json = json if json is not None else safejson
        self.outbox_size = outbox_size
        self.emit_timeout = emit_timeout
        self.thread: Any = None  # the listener task (python-socketio's attribute)
        #: Counters: ``published``, ``received``, ``duplicates``, ``invalid``, ``refused``.
        self.stats = dict.fromkeys(('published', 'received', 'duplicates', 'invalid', 'refused'), 0)
        self._messages = pubsub.MessageFactory(self.host_id)
        self._dedup = pubsub.DedupWindow()
        self._outbox: deque[tuple[dict[str, Any], str]] = deque()
        self._reserved = 0
        self._published = 0  # messages confirmed so far (a write-only emit waits for its own)
        self._remote_callbacks: deque[tuple[str, int]] = deque()
        self._publisher_task: asyncio.Task | None = None
        self._publisher_ok = True
        self._listener_ok = True
        self._state = HEALTHY
        self._degraded_since: float | None = None
        self._closed = False
        self._wake = asyncio.Event()  # the outbox has work
        self._room = asyncio.Event()  # the outbox has room (or was drained)
        self._stop = asyncio.Event()  # close()
        self._ready = asyncio.Event()  # the listener is subscribed

    # the green manager's, used as they are: they never wait
    state = PubSubManager.state
    healthy = PubSubManager.healthy
    outbox_length = PubSubManager.outbox_length
    _set_health = PubSubManager._set_health
    _add_remote_callback = PubSubManager._add_remote_callback

    async def flush(self, timeout: float | None = CLOSE_TIMEOUT) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._outbox:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._room.clear()
            await _wait(self._room, remaining)
        return True

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        if self._closed:
            return True
        flushed = await self.flush(timeout)
        if not flushed:
            self.logger.error('%s: closing with %d message(s) never confirmed by the broker: dropped',
                              self.name, len(self._outbox))
        self._closed = True
        for event in (self._stop, self._wake, self._room):
            event.set()
        for task in (self._publisher_task, self.thread):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            await self._close()
        except Exception as exc:  # noqa: BLE001 - the broker may be down: nothing more to do
            self.logger.warning('%s: could not release broker resources: %r', self.name, exc)
        return flushed

    # -- python-socketio's manager interface ----------------------------------------------

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        self.json = server.packet_class.json
        self.logger = self._custom_logger or default_logger

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self.thread = asyncio.ensure_future(self._listener_loop())
        self.logger.info('%s backend initialized.', self.name)

    async def wait_listening(self, timeout: float = LISTEN_READY_TIMEOUT) -> bool:
        """Wait (bounded) until the listener is subscribed; the server awaits it before its first client."""
        return self.write_only or await _wait(self._ready, timeout)

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
                   **kwargs: Any) -> Any:
        room = to or room
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
        wire_callback = None
        local_callback = None
        if callback is not None:
            if self.server is None:
                raise RuntimeError('Callbacks can only be issued from the context of a server.')
            if room is None:
                raise ValueError('Cannot use callback without a room set.')
            if isinstance(room, str) and self.is_connected(room, namespace):
                return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
            ack_id = self._add_remote_callback(room, callback)
            wire_callback = (room, namespace, ack_id)
            local_callback = functools.partial(self._return_callback, self.host_id, room, namespace, ack_id)
        args = list(data) if isinstance(data, tuple) else [data]
        message = self._messages.emit(event=event, args=args, namespace=namespace, room=room,
                                      skip_sid=skip_sid, callback=wire_callback)
        text = pubsub.encode(message, self.json)  # a payload JSON cannot carry fails here, in the caller
        await self._reserve()
        try:
            if self.server is not None:
                await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=local_callback)
        finally:
            position = self._commit(message, text)
        if self.server is None:
            await self._wait_published(position)
        return None

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self.is_connected(sid, namespace):
            return True
        await self._send(self._messages.disconnect(sid=sid, namespace=namespace or '/'))
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return await super().disconnect(sid, namespace)
        if self.server is not None and self.is_connected(sid, namespace):
            await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            return None
        await self._send(self._messages.disconnect(sid=sid, namespace=namespace))
        return None

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        if self.is_connected(sid, namespace):
            return await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        await self._send(self._messages.room(pubsub.ENTER_ROOM, sid=sid, namespace=namespace or '/', room=room))
        return None

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        if self.is_connected(sid, namespace):
            return await super().leave_room(sid, namespace, room)
        await self._send(self._messages.room(pubsub.LEAVE_ROOM, sid=sid, namespace=namespace or '/', room=room))
        return None

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        namespace = namespace or '/'
        message = self._messages.close_room(room=room, namespace=namespace)
        text = pubsub.encode(message, self.json)
        await self._reserve()
        try:
            await super().close_room(room, namespace)
        finally:
            position = self._commit(message, text)
        if self.server is None:
            await self._wait_published(position)

    # -- backend seam ------------------------------------------------------------------------

    async def _publish(self, message: dict[str, Any]) -> Any:
        """Publish one message and return once the broker has it; raise on failure."""
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _listen(self) -> AsyncIterator[Any]:
        """An async generator of raw messages (bytes, str or dict); ``None`` = connected or idle."""
        raise NotImplementedError('This method must be implemented in a subclass.')

    async def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        """Publish ``(message, json_text)`` pairs in order; raise if any may be lost."""
        for message, _text in batch:
            await self._publish(message)

    async def _heartbeat(self) -> bool:
        """Service an idle publisher connection; return True if it is known good."""
        return False

    async def _close(self) -> None:
        """Release broker resources."""

    # -- outbox ------------------------------------------------------------------------------

    async def _reserve(self) -> None:
        """Take one outbox slot, waiting at most ``emit_timeout`` for one."""
        if self._closed:
            raise RuntimeError(f'{self.name} manager is closed')
        deadline = time.monotonic() + self.emit_timeout
        while len(self._outbox) + self._reserved >= self.outbox_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stats['refused'] += 1
                raise exceptions.QueueFullError(
                    f'{self.name}: {len(self._outbox)} messages are waiting for the broker '
                    f'(outbox_size={self.outbox_size}); message not sent')
            self._room.clear()
            await _wait(self._room, remaining)
        self._reserved += 1

    def _commit(self, message: dict[str, Any], text: str) -> int:
        """Queue a reserved message; returns its position (for ``_wait_published``)."""
        self._reserved -= 1
        self._outbox.append((message, text))
        self._wake.set()
        if self._publisher_task is None:
            self._publisher_task = asyncio.ensure_future(self._publisher_loop())
        return self._published + len(self._outbox)

    async def _wait_published(self, position: int, timeout: float = CLOSE_TIMEOUT) -> None:
        """A write-only emit: wait (bounded) until the broker confirmed the message at ``position``."""
        deadline = time.monotonic() + timeout
        while self._published < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.logger.warning('%s: the broker has not confirmed a message yet; it stays in the outbox',
                                    self.name)
                return
            self._room.clear()
            await _wait(self._room, remaining)

    async def _send(self, message: dict[str, Any]) -> None:
        text = pubsub.encode(message, self.json)
        await self._reserve()
        position = self._commit(message, text)
        if self.server is None:
            await self._wait_published(position)

    async def _publisher_loop(self) -> None:
        delay = self.retry_delay_min
        outbox = self._outbox
        while not self._closed:
            if not outbox:
                self._wake.clear()
                await _wait(self._wake, self.idle_tick)
                if not outbox:
                    try:
                        if await self._heartbeat():
                            self._set_health(publisher=True)
                    except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                        self._set_health(publisher=False, error=exc)
                        await _wait(self._stop, delay)
                        delay = min(delay * 2, self.retry_delay_max)
                    continue
            batch = list(islice(outbox, PUBLISH_BATCH))
            try:
                await self._publish_batch(batch)
            except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                self._set_health(publisher=False, error=exc)
                await _wait(self._stop, delay)
                delay = min(delay * 2, self.retry_delay_max)
                continue
            delay = self.retry_delay_min
            for _ in batch:
                outbox.popleft()
            self._published += len(batch)
            self.stats['published'] += len(batch)
            self._room.set()
            if not self._publisher_ok:
                self._set_health(publisher=True)

    # -- listening ---------------------------------------------------------------------------

    async def _listener_loop(self) -> None:
        delay = self.retry_delay_min
        while not self._closed:
            stream = None
            try:
                stream = self._listen()
                async for raw in stream:
                    if self._closed:
                        break
                    if raw is None:  # connected (again), or idle
                        delay = self.retry_delay_min
                        if not self._listener_ok:
                            self._set_health(listener=True)
                        self._ready.set()
                        continue
                    await self._handle_raw(raw)
                else:
                    if not self._closed:
                        self.logger.error('%s: listen() ended unexpectedly; listening again', self.name)
            except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                if self._closed:
                    break
                self._set_health(listener=False, error=exc)
            finally:
                if stream is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection may fail too
                        await stream.aclose()  # type: ignore[attr-defined]
            if not self._closed:
                await _wait(self._stop, delay)
                delay = min(delay * 2, self.retry_delay_max)

    async def _handle_raw(self, raw: Any) -> None:
        try:
            message = pubsub.decode(raw, self.json)
        except Exception as exc:  # noqa: BLE001 - a user's JSON module may raise anything on garbage
            self.stats['invalid'] += 1
            self.logger.warning('%s: dropped an invalid message from the channel: %s', self.name, exc)
            return
        kind = type(message)
        if kind is pubsub.CallbackMessage:
            if message.host_id != self.host_id:
                return  # another worker's ack
        elif message.host_id == self.host_id:
            return  # we applied it locally before publishing
        if message.msg_id is not None and self._dedup.seen(message.msg_id):
            self.stats['duplicates'] += 1
            return
        self.stats['received'] += 1
        try:
            if kind is pubsub.EmitMessage:
                await self._handle_emit(message)  # type: ignore[arg-type]
            elif kind is pubsub.CallbackMessage:
                await self.trigger_callback(message.sid, message.ack_id, message.args)  # type: ignore[union-attr]
            elif kind is pubsub.DisconnectMessage:
                if self.server is not None and self.is_connected(message.sid, message.namespace):
                    await self.server.disconnect(message.sid, namespace=message.namespace, ignore_queue=True)
            elif kind is pubsub.RoomMessage:
                if self.is_connected(message.sid, message.namespace):  # type: ignore[union-attr]
                    if message.kind == pubsub.ENTER_ROOM:  # type: ignore[union-attr]
                        await super().enter_room(message.sid, message.namespace, message.room)  # type: ignore
                    else:
                        await super().leave_room(message.sid, message.namespace, message.room)  # type: ignore
            else:
                await super().close_room(message.room, message.namespace)  # type: ignore[union-attr]
        except Exception:
            self.logger.exception('%s: error handling a %s message', self.name, kind.__name__)

    async def _handle_emit(self, message: pubsub.EmitMessage) -> None:
        if self.server is None:
            return
        callback = None
        if message.callback is not None:
            sid, namespace, ack_id = message.callback
            callback = functools.partial(self._return_callback, message.host_id, sid, namespace, ack_id)
        args = message.args
        data = args[0] if len(args) == 1 else tuple(args)
        await super().emit(message.event, data, message.namespace, room=message.room, skip_sid=message.skip_sid,
                           callback=callback)

    async def _return_callback(self, host_id: str, sid: str, namespace: str, ack_id: int, *args: Any) -> None:
        """A local client acked an event that ``host_id`` emitted: route the ack home."""
        if host_id == self.host_id:
            await self.trigger_callback(sid, ack_id, list(args))
        else:
            await self._send(self._messages.callback(origin_host_id=host_id, sid=sid, namespace=namespace,
                                                     ack_id=ack_id, args=list(args)))


adopt_docstrings(AsyncPubSubManager, PubSubManager)


async def _wait(event: asyncio.Event, timeout: float | None) -> bool:
    """``event.wait()`` bounded by ``timeout``; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
        return False
    return True
