"""Cross-worker messaging for asyncio servers (``socketio.AsyncPubSubManager``).

Shell ring, the asyncio twin of ``pubsub_manager.py``: the same wire schema
(``_core.pubsub``, python-socketio's shapes plus a schema version and
message ids), so green and asyncio workers share one channel, and the same
guarantees: an outbox drained in order by one task (``emit()`` never waits
on the broker, except for room in a full outbox, at most ``emit_timeout``),
publishing confirmed before a message leaves the outbox, duplicates dropped
by message id, a visible health state, hostile messages logged and dropped.
Everything that never waits (state, health, stats, building and routing
messages, dedup, acting on what arrives, the remote-ack registry) is
``base_pubsub_manager.BasePubSubManager``, shared with the green twin; this
module adds the asyncio waits: events, the publisher and listener tasks.

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
import inspect
import time
from collections.abc import AsyncIterator, Callable
from itertools import islice
from typing import Any

from .._core import cluster, pubsub
from ..common.twins import drive_async
from .async_manager import AsyncManager
from .base_pubsub_manager import (
    CLOSE_TIMEOUT,
    DEGRADED,
    HEALTHY,
    HEARTBEAT_MIN_GAP,
    LEAVE_TIMEOUT,
    LISTEN_READY_TIMEOUT,
    PUBLISH_BATCH,
    BasePubSubManager,
)

__all__ = ['DEGRADED', 'HEALTHY', 'AsyncPubSubManager']


class AsyncPubSubManager(BasePubSubManager, AsyncManager):
    """Share clients, rooms and emits between asyncio workers through a message broker.

    A base class: :class:`~greensio.AsyncRedisManager` and
    :class:`~greensio.AsyncAioPikaManager` are its backends.  The
    parameters are those of :class:`~greensio.PubSubManager`.
    """

    name = 'asyncpubsub'
    _run_flow = staticmethod(drive_async)

    def _init_runtime(self) -> None:
        self._announce_event = asyncio.Event()  # publish a heartbeat now
        self._handler_tasks: set[asyncio.Task] = set()  # server-side handlers, referenced until done
        self._wake = asyncio.Event()  # the outbox has work
        self._room = asyncio.Event()  # the outbox has room (or was drained)
        self._stop = asyncio.Event()  # close()
        self._ready = asyncio.Event()  # the listener is subscribed

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
        if self._heartbeat_task is not None:  # the others stop counting this worker at once
            self._leaving = True
            leaving = self._heartbeat_due = self._heartbeat_message(leaving=True)
            self._wake_publisher()
            deadline = time.monotonic() + LEAVE_TIMEOUT
            while self._heartbeat_sent is not leaving and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        flushed = await self.flush(timeout)
        self._mark_closed(flushed)
        for event in (self._stop, self._wake, self._room, self._announce_event):
            event.set()
        for task in (self._publisher_task, self.thread, self._heartbeat_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            await self._close()
        except Exception as exc:  # noqa: BLE001 - the broker may be down: nothing more to do
            self._release_failed(exc)
        return flushed

    # -- python-socketio's manager interface ----------------------------------------------

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self.thread = asyncio.ensure_future(self._listener_loop())
            self._heartbeat_task = asyncio.ensure_future(self._heartbeat_loop())
        self.logger.info('%s backend initialized.', self.name)

    async def wait_listening(self, timeout: float = LISTEN_READY_TIMEOUT) -> bool:
        """Wait (bounded) until the listener is subscribed; the server awaits it before its first client."""
        return self.write_only or await _wait(self._ready, timeout)

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
                   **kwargs: Any) -> Any:
        route = self._route_emit(event, data, namespace, to or room, skip_sid, callback, bool(kwargs.get('ignore_queue')))
        if isinstance(route, int):  # delivered here only
            return route
        await self._send(*route)
        return None

    async def _emit_gathering(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any,
                              timeout: float, ignore_queue: bool = False) -> cluster.Gathering:
        if ignore_queue:
            return super()._emit_gathering(event, data, namespace, room, skip_sid, timeout, ignore_queue)
        with self._sending(self._new_gathering(cluster.ACKS, timeout)) as gathering:
            await self._send(*self._gathering_emit(gathering, event, data, namespace, room, skip_sid))
        return gathering

    async def _start_request(self, op: str, namespace: str, timeout: float | None, **fields: Any) -> Any:
        with self._sending(None if timeout is None else self._new_gathering(cluster.REPLIES, timeout)) as gathering:
            await self._send(self._request_message(gathering, op, namespace, **fields))
        return gathering

    def _spawn_server_handler(self, message: pubsub.RequestMessage) -> None:
        task = asyncio.ensure_future(self._run_server_handler(message))
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    async def _run_server_handler(self, message: pubsub.RequestMessage) -> None:
        await drive_async(self._server_handler_flow(message))

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.logger.exception('%s: error sending answers', self.name)

        task = asyncio.ensure_future(run())
        self._handler_tasks.add(task)
        task.add_done_callback(self._handler_tasks.discard)

    def _announce(self) -> None:
        self._announce_event.set()

    async def _heartbeat_loop(self) -> None:
        hello = True
        while not self._closed and not self._leaving:
            if self._heartbeat_due is None or hello:
                self._heartbeat_due = self._heartbeat_message(hello=hello)
                hello = False
                self._wake_publisher()
            self._announce_event.clear()
            await _wait(self._announce_event, self.heartbeat_interval)
            await _wait(self._stop, HEARTBEAT_MIN_GAP)  # many hellos at once: one heartbeat

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace):
            return self.is_connected(sid, namespace)  # ours: nothing to ask the other workers
        await self._send(self._messages.disconnect(sid=sid, namespace=namespace or '/'))
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return self.basic_disconnect(sid, namespace)
        if self.server is not None and self.is_connected(sid, namespace):
            await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            return None
        await self._send(self._messages.disconnect(sid=sid, namespace=namespace))
        return None

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        route = self._route_room(pubsub.ENTER_ROOM, sid, namespace, room, eio_sid)
        if route is not None:
            await self._send(*route)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        route = self._route_room(pubsub.LEAVE_ROOM, sid, namespace, room)
        if route is not None:
            await self._send(*route)

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        await self._send(*self._route_close_room(room, namespace))

    # -- backend seam ------------------------------------------------------------------------

    async def _publish(self, message: dict[str, Any]) -> Any:
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _listen(self) -> AsyncIterator[Any]:
        raise NotImplementedError('This method must be implemented in a subclass.')

    async def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        for message, _text in batch:
            await self._publish(message)

    async def _heartbeat(self) -> bool:
        return False

    async def _close(self) -> None:
        pass

    # -- outbox ------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any], deliver_locally: Callable[[], Any] | None = None) -> None:
        text = pubsub.encode(message, self.json)  # a payload JSON cannot carry fails here, in the caller
        await self._reserve()
        try:
            if deliver_locally is not None:
                deliver_locally()
        finally:
            position = self._commit(message, text)
        if self.server is None:
            await self._wait_published(position)

    async def _reserve(self) -> None:
        self._check_open()
        deadline = time.monotonic() + self.emit_timeout
        while not self._has_room():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._refuse()
            self._room.clear()
            await _wait(self._room, remaining)
        self._reserved += 1

    def _wake_publisher(self) -> None:
        self._wake.set()
        if self._publisher_task is None:
            self._publisher_task = asyncio.ensure_future(self._publisher_loop())

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

    async def _publisher_loop(self) -> None:
        delay = self.retry_delay_min
        outbox = self._outbox
        while not self._closed:
            heartbeat = self._heartbeat_due
            if heartbeat is not None:
                # ahead of the outbox, never queued: a late heartbeat is worthless
                self._heartbeat_due = None
                try:
                    await self._publish_batch([heartbeat])
                except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                    self._set_health(publisher=False, error=exc)
                    await _wait(self._stop, delay)
                    delay = self._backoff(delay)
                    continue
                self._heartbeat_sent = heartbeat
            if not outbox:
                self._wake.clear()
                if self._heartbeat_due is None:
                    await _wait(self._wake, self.idle_tick)
                if not outbox and self._heartbeat_due is None:
                    try:
                        if await self._heartbeat():
                            self._set_health(publisher=True)
                    except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                        self._set_health(publisher=False, error=exc)
                        await _wait(self._stop, delay)
                        delay = self._backoff(delay)
                    continue
                if not outbox:  # woken for a heartbeat only
                    continue
            batch = list(islice(outbox, PUBLISH_BATCH))
            try:
                await self._publish_batch(self._wire(batch))
            except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                self._set_health(publisher=False, error=exc)
                await _wait(self._stop, delay)
                delay = self._backoff(delay)
                continue
            delay = self.retry_delay_min
            self._confirm(len(batch))
            self._room.set()

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
                        self._listening_again()
                        self._ready.set()
                        continue
                    await self._handle_raw(raw)
                else:
                    self._listen_ended()
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
                delay = self._backoff(delay)

    async def _handle_raw(self, raw: Any) -> None:
        for message in self._accept(raw):
            try:
                result = self._handle_message(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.logger.exception('%s: error handling a %s message', self.name, type(message).__name__)

    # -- acks across workers -----------------------------------------------------------------

    async def _return_callback(self, host_id: str, sid: str, namespace: str, ack_id: int, *args: Any) -> None:
        if host_id == self.host_id:
            await self.trigger_callback(sid, ack_id, list(args))
        else:
            await self._send(self._messages.callback(origin_host_id=host_id, sid=sid, namespace=namespace,
                                                     ack_id=ack_id, args=list(args)))




async def _wait(event: asyncio.Event, timeout: float | None) -> bool:
    """``event.wait()`` bounded by ``timeout``; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
        return False
    return True
