"""Cross-worker messaging: the broker-independent half of the queue managers.

Shell ring.  ``PubSubManager`` keeps python-socketio's interface and wire
shapes (``_core.pubsub``) and adds what makes a broker outage survivable:

- **Outbox.**  Every message goes into a bounded FIFO that one background
  task drains in order; ``emit()`` itself never does network I/O.  While the
  broker is away the outbox fills; once it is back the outbox is replayed in
  order.  When it is full, ``emit()`` waits at most ``emit_timeout`` seconds
  for room, then raises :class:`~greensio.exceptions.QueueFullError` before
  delivering anything anywhere, so the caller can retry or give up.
- **At-least-once, deduplicated.**  A batch leaves the outbox only once the
  backend confirms it; a failed batch is published again, and receivers drop
  the repeats by message id.  Listeners take a message as done (the backend
  acknowledges it) only after it was dispatched to local clients.
- **Visible health.**  :attr:`PubSubManager.state` is ``'healthy'`` or
  ``'degraded'`` and every change is logged.
- **Hostile input.**  A message that is not JSON, not ours, or not valid is
  logged, counted and dropped; the listener carries on.

A backend implements ``_publish(message)`` and ``_listen()`` like a
python-socketio backend (``_listen`` yields raw messages; it may also yield
``None`` to say "connected, nothing to read yet" and should raise when its
connection fails, so the state and the reconnect delay are handled here).
Optional hooks: ``_publish_batch`` (several messages per broker round
trip), ``_heartbeat`` (called while the publisher is idle) and ``_close``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from . import exceptions
from ._core import pubsub, safejson
from .manager import Manager

default_logger = logging.getLogger('greensio.pubsub')

HEALTHY = 'healthy'
DEGRADED = 'degraded'

#: Messages the outbox holds while the broker is unreachable (about 1 KiB
#: each for typical events: ~10 MiB).  Past it ``emit()`` raises.
OUTBOX_SIZE = 10_000
#: Longest an ``emit()`` waits for room in a full outbox before raising.
EMIT_TIMEOUT = 0.5
#: Messages handed to the backend at once; a failed batch is republished
#: whole, so this also bounds the duplicates receivers must drop.
PUBLISH_BATCH = 256
#: How often an idle publisher services its connection (AMQP heartbeats).
IDLE_TICK = 1.0
#: Reconnect delays double from the first to the second value.
RETRY_DELAY_MIN = 0.1
RETRY_DELAY_MAX = 5.0
#: ``initialize()`` waits this long for the listener to be subscribed, so
#: the first client's broadcasts are not missed; the server serves anyway.
LISTEN_READY_TIMEOUT = 2.0
#: Callbacks waiting for an ack from a client on another worker.  Acks that
#: never come (client gone, ``call()`` timed out) are forgotten oldest first.
MAX_REMOTE_CALLBACKS = 10_000
#: ``close()`` waits this long for the outbox to drain by default.
CLOSE_TIMEOUT = 5.0


class PubSubManager(Manager):
    """Share clients, rooms and emits between workers through a message broker.

    A base class: :class:`~greensio.KombuManager` (RabbitMQ and other kombu
    transports), :class:`~greensio.RedisManager` and
    :class:`~greensio.testing.InMemoryPubSubManager` are its backends.

    :param channel: the channel (exchange, topic) every worker shares.
    :param write_only: ``True`` for a process without a server (a Celery task,
        a cron job) that only emits, closes rooms and disconnects clients.
    :param logger: a logger; default ``logging.getLogger('greensio.pubsub')``,
        so outages are visible at WARNING level without configuration.
    :param json: the JSON module for queue messages of a write-only manager
        (an attached manager uses the server's, as python-socketio does).
    :param outbox_size: messages kept while the broker is unreachable;
        ``emit()`` raises :class:`~greensio.exceptions.QueueFullError` past it.
    :param emit_timeout: seconds an ``emit()`` may wait for room in a full
        outbox before raising; it never waits otherwise.
    """

    name = 'pubsub'
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
        self._lock = threading.Lock()
        self._remote_callbacks: deque[tuple[str, int]] = deque()
        self._publisher_task: Any = None
        self._publisher_ok = True
        self._listener_ok = True
        self._state = HEALTHY
        self._degraded_since: float | None = None
        self._closed = False
        self._events: tuple[Any, Any, Any, Any] | None = None

    # -- public state ---------------------------------------------------------------

    @property
    def state(self) -> str:
        """``'healthy'``, or ``'degraded'`` while the broker cannot be reached."""
        return self._state

    @property
    def healthy(self) -> bool:
        return self._state == HEALTHY

    @property
    def outbox_length(self) -> int:
        """Messages accepted but not yet confirmed by the broker."""
        return len(self._outbox)

    def flush(self, timeout: float | None = CLOSE_TIMEOUT) -> bool:
        """Wait until every accepted message is confirmed by the broker.

        Returns False if some are still waiting after ``timeout`` seconds.
        A write-only script should call this (or :meth:`close`) before it
        exits; an ``atexit`` hook does so for up to ``CLOSE_TIMEOUT`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        _wake, room, _stop, _ready = self._runtime()
        while self._outbox:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            room.clear()
            if self._outbox:
                room.wait(min(remaining, 0.5) if remaining is not None else 0.5)
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Flush the outbox (up to ``timeout`` seconds), stop listening, release the broker.

        Returns False (and logs how many messages were dropped) if the outbox
        could not be flushed.
        """
        if self._closed:
            return True
        flushed = self.flush(timeout)
        if not flushed:
            self.logger.error('%s: closing with %d message(s) never confirmed by the broker: dropped',
                              self.name, len(self._outbox))
        self._closed = True
        wake, room, stop, _ready = self._runtime()
        stop.set()
        wake.set()
        room.set()
        for task in (self._publisher_task, self.thread):
            join = getattr(task, 'join', None)
            if join is None:
                continue
            try:
                join(timeout=0.1)
                # a listener blocked in a socket read: a greenlet can be
                # interrupted, a thread finishes within one idle tick
                if getattr(task, 'dead', True) is False and hasattr(task, 'kill'):
                    task.kill(timeout=1)
                else:
                    join(timeout=2 * self.idle_tick)
            except Exception:  # noqa: BLE001, S110 - a task that died already has nothing to join
                pass
        try:
            self._close()
        except Exception as exc:  # noqa: BLE001 - the broker may be down: nothing more to do
            self.logger.warning('%s: could not release broker resources: %r', self.name, exc)
        return flushed

    # -- python-socketio's manager interface --------------------------------------------

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        # python-socketio 5.16.1+: an attached manager speaks the server's JSON
        self.json = server.packet_class.json
        self.logger = self._custom_logger or default_logger

    def initialize(self) -> None:
        """Start listening (unless write-only); called before the first connection."""
        super().initialize()
        if not self.write_only:
            _wake, _room, _stop, ready = self._runtime()
            self.thread = self._spawn(self._listener_loop)
            ready.wait(LISTEN_READY_TIMEOUT)
        self.logger.info('%s backend initialized.', self.name)

    def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,  # type: ignore[override]
             skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
             **kwargs: Any) -> Any:
        """Emit to clients on every worker (the parameters of :meth:`Server.emit`).

        Local clients get the event at once; other workers get it through the
        broker.  Raises :class:`~greensio.exceptions.QueueFullError` when the
        outbox stays full for ``emit_timeout`` seconds (nothing was sent).
        """
        room = to or room
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
        wire_callback = None
        local_callback = None
        if callback is not None:
            if self.server is None:
                raise RuntimeError('Callbacks can only be issued from the context of a server.')
            if room is None:
                raise ValueError('Cannot use callback without a room set.')
            if isinstance(room, str) and self.is_connected(room, namespace):
                # the client is ours: an ordinary ack, nothing crosses the broker
                return super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
            ack_id = self._add_remote_callback(room, callback)
            wire_callback = (room, namespace, ack_id)
            local_callback = functools.partial(self._return_callback, self.host_id, room, namespace, ack_id)
        args = list(data) if isinstance(data, tuple) else [data]
        message = self._messages.emit(event=event, args=args, namespace=namespace, room=room,
                                      skip_sid=skip_sid, callback=wire_callback)
        text = pubsub.encode(message, self.json)  # a payload JSON cannot carry fails here, in the caller
        self._reserve()
        try:
            if self.server is not None:
                super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=local_callback)
        finally:
            self._commit(message, text)
        return None

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self.is_connected(sid, namespace):
            return True
        self._send(self._messages.disconnect(sid=sid, namespace=namespace or '/'))
        return False

    def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        """Disconnect a client wherever it is connected (no server needed)."""
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return super().disconnect(sid, namespace)
        if self.server is not None and self.is_connected(sid, namespace):
            self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            return None
        self._send(self._messages.disconnect(sid=sid, namespace=namespace))
        return None

    def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        if self.is_connected(sid, namespace):
            return super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._send(self._messages.room(pubsub.ENTER_ROOM, sid=sid, namespace=namespace or '/', room=room))
        return None

    def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        if self.is_connected(sid, namespace):
            return super().leave_room(sid, namespace, room)
        self._send(self._messages.room(pubsub.LEAVE_ROOM, sid=sid, namespace=namespace or '/', room=room))
        return None

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        namespace = namespace or '/'
        message = self._messages.close_room(room=room, namespace=namespace)
        text = pubsub.encode(message, self.json)
        self._reserve()
        try:
            super().close_room(room, namespace)
        finally:
            self._commit(message, text)

    # -- backend seam ----------------------------------------------------------------

    def _publish(self, message: dict[str, Any]) -> Any:
        """Publish one message and return once the broker has it; raise on failure."""
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _listen(self) -> Iterator[Any]:
        """Yield raw messages (bytes, str or dict) from the channel; ``None`` = connected."""
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        """Publish ``(message, json_text)`` pairs in order; raise if any may be lost."""
        for message, _text in batch:
            self._publish(message)

    def _heartbeat(self) -> bool:
        """Service an idle publisher connection; return True if it is known good."""
        return False

    def _close(self) -> None:
        """Release broker resources (connections, this worker's queue)."""

    # -- runtime -------------------------------------------------------------------------

    def _runtime(self) -> tuple[Any, Any, Any, Any]:
        """(wake publisher, outbox has room, stop, listener ready) events."""
        events = self._events
        if events is None:
            make = self.server.eio.create_event if self.server is not None else threading.Event
            events = self._events = (make(), make(), make(), make())
        return events

    def _spawn(self, target: Callable[[], None]) -> Any:
        if self.server is not None:
            return self.server.start_background_task(target)
        thread = threading.Thread(target=target, name=f'greensio-{self.name}', daemon=True)
        thread.start()
        return thread

    def _check_monkey_patched(self, what: str) -> None:
        """A broker client blocking in unpatched sockets would freeze every greenlet."""
        mode = getattr(self.server, 'async_mode', None) or ''
        if 'gevent' in mode:
            from gevent.monkey import is_module_patched

            if not is_module_patched('socket'):
                raise RuntimeError(f'{what} requires a monkey patched socket library to work with {mode}: '
                                   'call gevent.monkey.patch_all() before anything else is imported')

    # -- outbox ----------------------------------------------------------------------------

    def _reserve(self) -> None:
        """Take one outbox slot, waiting at most ``emit_timeout`` for one."""
        if self._closed:
            raise RuntimeError(f'{self.name} manager is closed')
        deadline = None
        while True:
            with self._lock:
                if len(self._outbox) + self._reserved < self.outbox_size:
                    self._reserved += 1
                    return
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.emit_timeout
            remaining = deadline - now
            if remaining <= 0:
                self.stats['refused'] += 1
                raise exceptions.QueueFullError(
                    f'{self.name}: {len(self._outbox)} messages are waiting for the broker '
                    f'(outbox_size={self.outbox_size}); message not sent')
            _wake, room, _stop, _ready = self._runtime()
            room.clear()
            if len(self._outbox) + self._reserved >= self.outbox_size:
                room.wait(remaining)

    def _commit(self, message: dict[str, Any], text: str) -> None:
        with self._lock:
            self._reserved -= 1
            self._outbox.append((message, text))
        wake, _room, _stop, _ready = self._runtime()
        wake.set()
        if self._publisher_task is None:
            self._start_publisher()

    def _send(self, message: dict[str, Any]) -> None:
        text = pubsub.encode(message, self.json)
        self._reserve()
        self._commit(message, text)

    def _start_publisher(self) -> None:
        with self._lock:
            if self._publisher_task is not None:
                return
            self._publisher_task = True  # claimed; replaced by the task below
        self._publisher_task = self._spawn(self._publisher_loop)
        if self.server is None:
            _register_atexit(self)

    def _publisher_loop(self) -> None:
        wake, room, stop, _ready = self._runtime()
        delay = self.retry_delay_min
        outbox = self._outbox
        while not self._closed:
            if not outbox:
                wake.clear()
                if not outbox:
                    wake.wait(self.idle_tick)
                if not outbox:
                    try:
                        if self._heartbeat():
                            self._set_health(publisher=True)
                    except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                        self._set_health(publisher=False, error=exc)
                        stop.wait(delay)
                        delay = min(delay * 2, self.retry_delay_max)
                    continue
            batch = list(islice(outbox, PUBLISH_BATCH))
            try:
                self._publish_batch(batch)
            except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                self._set_health(publisher=False, error=exc)
                stop.wait(delay)
                delay = min(delay * 2, self.retry_delay_max)
                continue
            delay = self.retry_delay_min
            with self._lock:
                for _ in batch:
                    outbox.popleft()
            self.stats['published'] += len(batch)
            room.set()
            if not self._publisher_ok:
                self._set_health(publisher=True)

    # -- health ------------------------------------------------------------------------------

    def _set_health(self, *, publisher: bool | None = None, listener: bool | None = None,
                    error: BaseException | None = None) -> None:
        if publisher is not None:
            self._publisher_ok = publisher
        if listener is not None:
            self._listener_ok = listener
        new = HEALTHY if self._publisher_ok and self._listener_ok else DEGRADED
        if new == self._state:
            if error is not None and self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug('%s: still degraded: %r', self.name, error)
            return
        self._state = new
        if new == DEGRADED:
            self._degraded_since = time.monotonic()
            part = 'publisher' if publisher is False else 'listener'
            self.logger.warning('%s message queue degraded: the %s lost the broker (%s: %s); '
                                '%d message(s) waiting in the outbox', self.name, part,
                                type(error).__name__, error, len(self._outbox))
        else:
            since = self._degraded_since
            outage = time.monotonic() - since if since is not None else 0.0
            self.logger.warning('%s message queue healthy again after %.1f s; %d message(s) to replay',
                                self.name, outage, len(self._outbox))

    # -- listening ---------------------------------------------------------------------------

    def _listener_loop(self) -> None:
        _wake, _room, stop, ready = self._runtime()
        delay = self.retry_delay_min
        while not self._closed:
            stream = None
            try:
                stream = self._listen()
                for raw in stream:
                    if self._closed:
                        break
                    if raw is None:  # connected (again)
                        delay = self.retry_delay_min
                        if not self._listener_ok:
                            self._set_health(listener=True)
                        ready.set()
                        continue
                    self._handle_raw(raw)
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
                        stream.close()  # type: ignore[attr-defined]
            if not self._closed:
                stop.wait(delay)
                delay = min(delay * 2, self.retry_delay_max)

    def _handle_raw(self, raw: Any) -> None:
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
                self._handle_emit(message)  # type: ignore[arg-type]
            elif kind is pubsub.CallbackMessage:
                self.trigger_callback(message.sid, message.ack_id, message.args)  # type: ignore[union-attr]
            elif kind is pubsub.DisconnectMessage:
                self._handle_disconnect(message)  # type: ignore[arg-type]
            elif kind is pubsub.RoomMessage:
                self._handle_room(message)  # type: ignore[arg-type]
            else:
                self._handle_close_room(message)  # type: ignore[arg-type]
        except Exception:
            self.logger.exception('%s: error handling a %s message', self.name, kind.__name__)

    def _handle_emit(self, message: pubsub.EmitMessage) -> None:
        if self.server is None:
            return
        callback = None
        if message.callback is not None:
            sid, namespace, ack_id = message.callback
            callback = functools.partial(self._return_callback, message.host_id, sid, namespace, ack_id)
        args = message.args
        data = args[0] if len(args) == 1 else tuple(args)
        super().emit(message.event, data, message.namespace, room=message.room, skip_sid=message.skip_sid,
                     callback=callback)

    def _handle_disconnect(self, message: pubsub.DisconnectMessage) -> None:
        if self.server is not None and self.is_connected(message.sid, message.namespace):
            self.server.disconnect(message.sid, namespace=message.namespace, ignore_queue=True)

    def _handle_room(self, message: pubsub.RoomMessage) -> None:
        if not self.is_connected(message.sid, message.namespace):
            return
        if message.kind == pubsub.ENTER_ROOM:
            super().enter_room(message.sid, message.namespace, message.room)
        else:
            super().leave_room(message.sid, message.namespace, message.room)

    def _handle_close_room(self, message: pubsub.CloseRoomMessage) -> None:
        super().close_room(message.room, message.namespace)

    # -- acks across workers -----------------------------------------------------------------

    def _add_remote_callback(self, sid: str, callback: Callable[..., Any]) -> int:
        ack_id = self._generate_ack_id(sid, callback)
        pending = self._remote_callbacks
        pending.append((sid, ack_id))
        if len(pending) > MAX_REMOTE_CALLBACKS:
            old_sid, old_id = pending.popleft()
            self._registry.pop_callback(old_sid, old_id)
        return ack_id

    def _return_callback(self, host_id: str, sid: str, namespace: str, ack_id: int, *args: Any) -> None:
        """A local client acked an event that ``host_id`` emitted: route the ack home."""
        if host_id == self.host_id:
            self.trigger_callback(sid, ack_id, list(args))
        else:
            self._send(self._messages.callback(origin_host_id=host_id, sid=sid, namespace=namespace,
                                               ack_id=ack_id, args=list(args)))


# Write-only managers run their publisher on a daemon thread: give it a
# chance to drain when the script ends, as python-socketio's synchronous
# publish did.
_atexit_managers: list[Any] = []


def _register_atexit(manager: PubSubManager) -> None:
    import atexit
    import weakref

    if not _atexit_managers:
        atexit.register(_flush_at_exit)
    _atexit_managers.append(weakref.ref(manager))


def _flush_at_exit() -> None:
    for ref in _atexit_managers:
        manager = ref()
        if manager is None or manager._closed or not manager._outbox:
            continue
        if not manager.flush(CLOSE_TIMEOUT):
            manager.logger.error('%s: exiting with %d message(s) never confirmed by the broker',
                                 manager.name, len(manager._outbox))
