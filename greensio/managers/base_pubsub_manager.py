"""What the green and asyncio queue managers share: everything that never waits.

Shell ring.  ``PubSubManager`` (green) and ``AsyncPubSubManager`` (asyncio)
differ only where one blocks and the other awaits: the outbox's waits, the
publisher and listener loops, the backend seam, and the manager methods that
are coroutines on the asyncio side.  Everything else is written once here
(so the twins cannot drift): the limits, the constructor's state, the health bookkeeping
and the stats, building each message and deciding what crosses the broker,
filtering and deduplicating what arrives and acting on it, and the registry
of acks owed to other workers.  Local delivery (``_emit_local`` and the
``basic_*`` methods) never waits in either twin, so it is called from here.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .. import exceptions
from .._core import cluster, pubsub, safejson
from .._core.payload import from_args, to_args
from ..engineio.base_server import BaseServer
from .base_manager import BaseManager

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
#: Messages a backend that pipelines its confirms (RabbitMQ) may have
#: published and not yet confirmed: all of them are published again after a
#: failure, so this too bounds the duplicates receivers must drop.
MAX_IN_FLIGHT = 4 * PUBLISH_BATCH
#: While confirms are owed and nothing new is to be published, the publisher
#: reads them this often (a new message wakes it at once).
CONFIRM_TICK = 0.001
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
#: Seconds between a worker's heartbeats; it counts as dead after
#: ``cluster.HEARTBEAT_MISSES`` of them without one, and a request stops
#: waiting for it then.  Set ``manager.heartbeat_interval`` before the server starts.
HEARTBEAT_INTERVAL = 2.0
#: Shortest gap between two heartbeats, however often new workers say hello.
HEARTBEAT_MIN_GAP = 0.05
#: ``close()`` waits at most this long for its leaving heartbeat to go out
#: (the others notice the worker gone at their heartbeat timeout otherwise).
LEAVE_TIMEOUT = 0.5
#: Clients' answers to a broadcast that collects acks travel back to the
#: origin in batches: one broker message per this many seconds (or per
#: ``ANSWER_BATCH`` answers) instead of one per client.
ANSWER_BATCH_DELAY = 0.002
ANSWER_BATCH = 256

#: A message to queue and, optionally, the local delivery to make once the
#: outbox has room for it (so a full outbox refuses before anyone got it).
Outgoing = tuple[dict[str, Any], Callable[[], Any] | None]


class BasePubSubManager(BaseManager):
    """The queue managers' shared half; a twin adds its waits (see the module docs)."""

    name = 'pubsub'
    _cluster = True
    heartbeat_interval = HEARTBEAT_INTERVAL
    retry_delay_min = RETRY_DELAY_MIN
    retry_delay_max = RETRY_DELAY_MAX
    idle_tick = IDLE_TICK
    #: Guards the outbox against a publisher on another thread; one event loop needs none.
    _lock: Any = contextlib.nullcontext()

    def __init__(self, channel: str = 'socketio', write_only: bool = False, logger: Any = None, json: Any = None,
                 *, outbox_size: int = OUTBOX_SIZE, emit_timeout: float = EMIT_TIMEOUT, batch_size: int = 1) -> None:
        super().__init__()
        if outbox_size < 1:
            raise ValueError('outbox_size must be at least 1')
        if not 1 <= batch_size <= pubsub.MAX_BATCH:
            raise ValueError(f'batch_size must be 1 to {pubsub.MAX_BATCH}')
        self.batch_size = batch_size
        self.channel = channel
        self.write_only = write_only
        # a worker that shares its sessions starts its host id with its tag,
        # so that the others find the owner of a sid (``greensio.forwarding``)
        self.host_id = BaseServer.sid_prefix + uuid.uuid4().hex
        own = pubsub.batch_prefix(self.host_id)
        self._own_batch = (own, own.encode())  # for text, for bytes
        self._custom_logger = logger
        self.logger = logger or default_logger
        self.json = json if json is not None else safejson
        self.outbox_size = outbox_size
        self.emit_timeout = emit_timeout
        self.thread: Any = None  # the listener task (python-socketio's attribute)
        #: Counters: ``published``, ``received``, ``duplicates``, ``invalid``, ``refused``.
        #: ``heartbeats`` received, and ``unexpected`` answers to requests this worker is not waiting for.
        self.stats = dict.fromkeys(('published', 'received', 'duplicates', 'invalid', 'refused', 'heartbeats',
                                    'unexpected'), 0)
        self._messages = pubsub.MessageFactory(self.host_id)
        self._dedup = pubsub.DedupWindow()
        self._seen_requests = pubsub.DedupWindow()  # (origin, request id) acted on: a reused id is dropped
        self._membership = cluster.Membership()
        self._heartbeat_due: tuple[dict[str, Any], str] | None = None  # published ahead of the outbox
        self._heartbeat_sent: tuple[dict[str, Any], str] | None = None  # the last one the broker took
        self._leaving = False  # close() sent the last heartbeat: no other may follow it
        self._heartbeat_task: Any = None
        self._answers: dict[tuple[str, str], list[list[Any]]] = {}  # (origin, request) -> answers to send
        self._outbox: deque[tuple[dict[str, Any], str]] = deque()
        self._reserved = 0
        self._published = 0  # messages confirmed so far (an asyncio write-only emit waits for its own)
        self._remote_callbacks: deque[tuple[str, int]] = deque()
        self._publisher_task: Any = None
        self._publisher_ok = True
        self._listener_ok = True
        self._state = HEALTHY
        self._degraded_since: float | None = None
        self._closed = False
        self._init_runtime()

    def _init_runtime(self) -> None:
        """The twin's own synchronisation state (locks, events)."""

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

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        # python-socketio 5.16.1+: an attached manager speaks the server's JSON
        self.json = server.packet_class.json
        self.logger = self._custom_logger or default_logger

    def _mark_closed(self, flushed: bool) -> None:
        if not flushed:
            self.logger.error('%s: closing with %d message(s) never confirmed by the broker: dropped',
                              self.name, len(self._outbox))
        self._closed = True

    def _release_failed(self, exc: BaseException) -> None:
        self.logger.warning('%s: could not release broker resources: %r', self.name, exc)

    # -- what crosses the broker ----------------------------------------------------------

    def _route_emit(self, event: str, data: Any, namespace: str | None, room: Any, skip_sid: Any,
                    callback: Callable[..., Any] | None, ignore_queue: bool) -> int | Outgoing:
        """The local delivery count when nothing crosses the broker, else what to send."""
        namespace = namespace or '/'
        if ignore_queue:
            return self._emit_local(event, data, namespace, room, skip_sid, callback)
        wire_callback = None
        local_callback = None
        if callback is not None:
            if self.server is None:
                raise RuntimeError('Callbacks can only be issued from the context of a server.')
            if room is None:
                raise ValueError('Cannot use callback without a room set.')
            if isinstance(room, str) and self.is_connected(room, namespace):
                # the client is ours: an ordinary ack, nothing crosses the broker
                return self._emit_local(event, data, namespace, room, skip_sid, callback)
            ack_id = self._add_remote_callback(room, callback)
            wire_callback = (room, namespace, ack_id)
            local_callback = functools.partial(self._return_callback, self.host_id, room, namespace, ack_id)
        args = to_args(data, none_is_an_argument=True)
        message = self._messages.emit(event=event, args=args, namespace=namespace, room=room,
                                      skip_sid=skip_sid, callback=wire_callback)
        if self.server is None:
            return message, None
        return message, functools.partial(self._emit_local, event, data, namespace, room, skip_sid, local_callback,
                                          msg_id=message['msg_id'])

    def _route_room(self, kind: str, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> Outgoing | None:
        """Enter or leave a room here if the client is ours (None), else what to send the other workers."""
        if self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace):
            self._enter_or_leave(kind, sid, namespace, room, eio_sid)
            return None
        return self._messages.room(kind, sid=sid, namespace=namespace or '/', room=room), None

    def _enter_or_leave(self, kind: str, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        if kind == pubsub.ENTER_ROOM:
            self.basic_enter_room(sid, namespace, room, eio_sid)
        else:
            self.basic_leave_room(sid, namespace, room)

    def _route_close_room(self, room: Any, namespace: str | None) -> Outgoing:
        namespace = namespace or '/'
        return (self._messages.close_room(room=room, namespace=namespace),
                functools.partial(self.basic_close_room, room, namespace))

    # -- outbox ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f'{self.name} manager is closed')

    def _has_room(self) -> bool:
        return len(self._outbox) + self._reserved < self.outbox_size

    def _refuse(self) -> exceptions.QueueFullError:
        self.stats['refused'] += 1
        return exceptions.QueueFullError(
            f'{self.name}: {len(self._outbox)} messages are waiting for the broker '
            f'(outbox_size={self.outbox_size}); message not sent')

    def _commit(self, message: dict[str, Any], text: str) -> int:
        """Queue a reserved message; returns its position (what ``_published`` reaches once it is confirmed)."""
        with self._lock:
            self._reserved -= 1
            self._outbox.append((message, text))
            position = self._published + len(self._outbox)
        self._wake_publisher()
        return position

    def _wake_publisher(self) -> None:
        raise NotImplementedError

    def _confirm(self, count: int) -> None:
        """The backend confirmed the first ``count`` messages of the outbox."""
        with self._lock:
            for _ in range(count):
                self._outbox.popleft()
            self._published += count
        self.stats['published'] += count
        if not self._publisher_ok:
            self._set_health(publisher=True)

    def _backoff(self, delay: float) -> float:
        return min(delay * 2, self.retry_delay_max)

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

    def _listening_again(self) -> None:
        if not self._listener_ok:
            self._set_health(listener=True)

    def _listen_ended(self) -> None:
        if not self._closed:
            self.logger.error('%s: listen() ended unexpectedly; listening again', self.name)

    # -- what arrives ------------------------------------------------------------------------

    def _accept(self, raw: Any) -> list[pubsub.Message]:
        """Decode a raw message into what to act on, in order.

        Garbage (a whole batch, if any message in it is bad), our own echo,
        another worker's ack and repeats are left out.
        """
        # our own batches come back from the broker: everything in them was
        # delivered here before it was published, or is addressed to others
        if (self.batch_size > 1 and isinstance(raw, (bytes, str))
                and raw.startswith(self._own_batch[isinstance(raw, bytes)])):  # type: ignore[arg-type]
            return []
        try:
            decoded = pubsub.decode(raw, self.json)
        except Exception as exc:  # noqa: BLE001 - a user's JSON module may raise anything on garbage
            self.stats['invalid'] += 1
            self.logger.warning('%s: dropped an invalid message from the channel: %s', self.name, exc)
            return []
        if isinstance(decoded, pubsub.BatchMessage):
            return [m for m in decoded.messages if self._wanted(m)]
        return [decoded] if self._wanted(decoded) else []

    def _wanted(self, message: pubsub.Message) -> bool:
        if type(message) in (pubsub.CallbackMessage, pubsub.ResponseMessage, pubsub.RelayMessage):
            if message.host_id != self.host_id:
                return False  # addressed to another worker
        elif message.host_id == self.host_id:
            return False  # we applied it locally before publishing
        if message.msg_id is not None and self._dedup.seen(message.msg_id):
            self.stats['duplicates'] += 1
            return False
        self.stats['heartbeats' if type(message) is pubsub.HeartbeatMessage else 'received'] += 1
        return True

    def _wire(self, batch: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
        """What the backend publishes for a batch taken from the outbox: envelopes of ``batch_size`` messages."""
        size = self.batch_size
        if size <= 1 or len(batch) <= 1:
            return batch
        return [pubsub.batch(self.host_id, [text for _message, text in batch[i:i + size]])
                for i in range(0, len(batch), size)]

    def _handle_message(self, message: pubsub.Message) -> Any:
        """Act on an accepted message.

        Returns what the server or the ack callback returned: a coroutine on
        the asyncio side, which the asyncio twin awaits.
        """
        kind = type(message)
        if kind is pubsub.EmitMessage:
            return self._handle_emit(message)  # type: ignore[arg-type]
        if kind is pubsub.CallbackMessage:
            gathering = self._gatherings.get(message.sid)  # type: ignore[union-attr]
            if gathering is not None:  # an ack of a broadcast that collects every ack
                gathering.answer(_sender(message.msg_id), from_args(message.args))  # type: ignore[union-attr]
                return None
            return self.trigger_callback(message.sid, message.ack_id, message.args)  # type: ignore[union-attr]
        if kind is pubsub.HeartbeatMessage:
            self._handle_heartbeat(message)  # type: ignore[arg-type]
        elif kind is pubsub.ResponseMessage:
            self._handle_response(message)  # type: ignore[arg-type]
        elif kind is pubsub.RequestMessage:
            return self._run_flow(self._request_flow(message))  # type: ignore[arg-type]
        elif kind is pubsub.RelayMessage:
            self._handle_relay(message)  # type: ignore[arg-type]
        elif kind is pubsub.DisconnectMessage:
            if self.server is not None and self.is_connected(message.sid, message.namespace):  # type: ignore[union-attr]
                return self.server.disconnect(message.sid, namespace=message.namespace,  # type: ignore[union-attr]
                                              ignore_queue=True)
        elif kind is pubsub.RoomMessage:
            if (self.is_connected(message.sid, message.namespace)  # type: ignore[union-attr]
                    or self.is_pre_connected(message.sid, message.namespace)):  # type: ignore[union-attr]
                self._enter_or_leave(message.kind, message.sid, message.namespace,  # type: ignore[union-attr]
                                     message.room)  # type: ignore[union-attr]
        else:
            self.basic_close_room(message.room, message.namespace)  # type: ignore[union-attr]
        return None

    def _handle_emit(self, message: pubsub.EmitMessage) -> Any:
        if self.server is None:
            return None
        if message.request is not None and self._seen_requests.seen(f'{message.host_id}/{message.request}'):
            self.stats['duplicates'] += 1  # a reused request id: delivered once already
            return None
        callback = None
        if message.request is not None:  # a greensio origin: batched answers
            callback = functools.partial(self._add_answer, message.host_id, message.request)
        elif message.callback is not None:
            sid, namespace, ack_id = message.callback
            callback = functools.partial(self._return_callback, message.host_id, sid, namespace, ack_id)
        data = from_args(message.args)
        if message.request is None:
            self._emit_local(message.event, data, message.namespace, message.room, message.skip_sid, callback,
                             msg_id=message.msg_id)
            return None
        count, recipients = self._emit_collecting(message.event, data, message.namespace, message.room,
                                                  message.skip_sid, callback)
        if count:
            self._later(message.timeout + ANSWER_BATCH_DELAY, self._forget_answers, recipients, callback)
        room = message.room
        client = isinstance(room, str) and self.is_connected(room, message.namespace)
        return self._send(self._messages.response(origin_host_id=message.host_id, request=message.request,
                                                  count=count, client=client))

    # -- the cluster as one server -------------------------------------------------------

    @property
    def _worker_id(self) -> str:  # type: ignore[override]
        return self.host_id

    def workers(self) -> list[str]:
        return [self.host_id, *self._membership.live(time.monotonic())]

    def _expected_workers(self) -> list[str]:
        return self._membership.live(time.monotonic())

    def _settle(self, gathering: cluster.Gathering) -> bool:
        gathering.alive([self.host_id, *self._membership.live(time.monotonic())])
        return super()._settle(gathering)

    def _liveness_tick(self) -> float:
        """How often a waiter checks that the workers it waits for are alive."""
        return self.heartbeat_interval / 2

    def _handle_heartbeat(self, message: pubsub.HeartbeatMessage) -> None:
        if message.leaving:
            self._membership.left(message.host_id)
            for gathering in list(self._gatherings.values()):  # their waiters stop waiting for it
                gathering._changed()
            if message.hello:  # hello and leaving at once: a process that is no worker asks who is there
                self._announce()
            return
        joined = self._membership.heard(message.host_id, message.interval, time.monotonic())
        if joined or message.hello:
            self._announce()  # let a new worker know about this one at once

    def _announce(self) -> None:
        """Publish a heartbeat soon (the twin's heartbeat task wakes up)."""

    def _heartbeat_message(self, hello: bool = False, leaving: bool = False) -> tuple[dict[str, Any], str]:
        message = self._messages.heartbeat(interval=self.heartbeat_interval, hello=hello, leaving=leaving)
        return message, pubsub.encode(message, self.json)

    def _add_answer(self, origin: str, request: str, *args: Any) -> Any:
        """A local client acked a broadcast of ``origin`` that collects acks: batch it for the way home."""
        key = (origin, request)
        batch = self._answers.get(key)
        if batch is None:
            batch = self._answers[key] = []
            self._later(ANSWER_BATCH_DELAY, self._flush_answers, key)
        batch.append(list(args))
        if len(batch) >= ANSWER_BATCH:
            return self._flush_answers(key)
        return None

    def _flush_answers(self, key: tuple[str, str]) -> Any:
        batch = self._answers.pop(key, None)
        if not batch:
            return None
        return self._send(self._messages.response(origin_host_id=key[0], request=key[1], answers=batch))

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` (awaited on the asyncio side) after ``delay`` seconds, off the caller."""
        raise NotImplementedError

    def _handle_response(self, message: pubsub.ResponseMessage) -> None:
        gathering = self._gatherings.get(message.request)
        if gathering is None:
            self.stats['unexpected'] += 1  # late (the request timed out), or forged
            return
        if message.answers is not None:
            for args in message.answers:
                gathering.answer(message.sender, from_args(args))
        elif message.count is not None:
            gathering.count(message.sender, message.count, message.client)
        elif message.sockets is not None:
            gathering.reply(message.sender, message.sockets)
        elif message.session is not None:
            gathering.reply(message.sender, [message.session])
        elif message.forwarded is not None:
            gathering.reply(message.sender, [message.forwarded])
        else:
            gathering.reply(message.sender, [message.answer] if message.handled else [])

    def _request_flow(self, message: pubsub.RequestMessage) -> Any:
        """Apply a request to this worker's clients (a flow: disconnects and answers may wait)."""
        if self._seen_requests.seen(f'{message.host_id}/{message.request}'):
            self.stats['duplicates'] += 1  # a reused request id is not applied twice
            return
        if self.server is None:
            return
        namespace, op = message.namespace, message.op
        answer = None
        if op == pubsub.FETCH_SOCKETS:
            answer = {'sockets': self._local_sockets(namespace, message.to, message.skip)}
        elif op in (pubsub.SOCKETS_JOIN, pubsub.SOCKETS_LEAVE):
            self._local_room_change(op == pubsub.SOCKETS_JOIN, namespace, message.room, message.to, message.skip)
        elif op == pubsub.DISCONNECT_SOCKETS:
            yield from self._local_disconnects(namespace, message.to, message.skip, message.close)
        elif op == pubsub.RECOVER_SESSION:
            session = yield from self.server._hand_over_flow(namespace, message.pid, message.offset)
            answer = {'session': session}
        elif op == pubsub.FORWARD:
            yield (self._spawn_forwarded, message)
        else:
            yield (self._spawn_server_handler, message)
        if answer is not None and message.reply:
            yield (self._send, self._messages.response(origin_host_id=message.host_id, request=message.request,
                                                       **answer))

    @contextlib.contextmanager
    def _sending(self, gathering: cluster.Gathering | None) -> Iterator[cluster.Gathering | None]:
        """Forget ``gathering`` if its request could not be queued (a full outbox)."""
        try:
            yield gathering
        except BaseException:
            if gathering is not None:
                self._end_gathering(gathering)
            raise

    def _request_message(self, gathering: cluster.Gathering | None, op: str, namespace: str,
                         **fields: Any) -> dict[str, Any]:
        request = gathering.request if gathering is not None else self._messages.request_id()
        return self._messages.request(op, request=request, namespace=namespace, reply=gathering is not None,
                                      **fields)

    def _gathering_emit(self, gathering: cluster.Gathering, event: str, data: Any, namespace: str, room: Any,
                        skip_sid: Any) -> Outgoing:
        """The emit that collects acks on every worker, and its local delivery."""
        message = self._messages.emit(event=event, args=to_args(data, none_is_an_argument=True),
                                      namespace=namespace, room=room, skip_sid=skip_sid,
                                      callback=(gathering.request, namespace, 0), request=gathering.request,
                                      timeout=max(gathering.deadline - time.monotonic(), 0.001))
        if self.server is None:  # a client of the cluster (python -m greensio): no clients of its own
            return message, None
        return message, functools.partial(self._gather_locally, gathering, event, data, namespace, room, skip_sid)

    def _server_handler_flow(self, message: pubsub.RequestMessage) -> Any:
        """Run the ``on_server`` handler of a server-side emit and answer the origin (a flow)."""
        handler = self.server._server_handlers.get(message.event)
        result = None
        if handler is not None:
            try:
                result = yield (handler, *message.args)
            except Exception:
                self.logger.exception('server-side event handler error: "%s"', message.event)
                return
        if message.reply:
            answer = {'handled': True, 'answer': result} if handler is not None else {'handled': False}
            yield (self._send, self._messages.response(origin_host_id=message.host_id, request=message.request,
                                                       **answer))

    # -- acks across workers -----------------------------------------------------------------

    def _add_remote_callback(self, sid: str, callback: Callable[..., Any]) -> int:
        ack_id = self._generate_ack_id(sid, callback)
        pending = self._remote_callbacks
        pending.append((sid, ack_id))
        if len(pending) > MAX_REMOTE_CALLBACKS:
            old_sid, old_id = pending.popleft()
            self._registry.pop_callback(old_sid, old_id)
        return ack_id

    def _return_callback(self, host_id: str, sid: str, namespace: str, ack_id: int, *args: Any) -> Any:
        """A local client acked an event that ``host_id`` emitted: route the ack home."""
        raise NotImplementedError

    # -- what each twin implements (documented once, here) --------------------------------------

    def initialize(self) -> None:
        """Start listening (unless write-only); called before the first connection."""
        super().initialize()

    def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,  # type: ignore[override]
             skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
             **kwargs: Any) -> Any:
        """Emit to clients on every worker (the parameters of :meth:`Server.emit`).

        Local clients get the event at once; other workers get it through the
        broker.  Raises :class:`~greensio.exceptions.QueueFullError` when the
        outbox stays full for ``emit_timeout`` seconds (nothing was sent).
        """
        raise NotImplementedError

    def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        """Disconnect a client wherever it is connected (no server needed)."""
        raise NotImplementedError

    def flush(self, timeout: float | None = CLOSE_TIMEOUT) -> bool:
        """Wait until every accepted message is confirmed by the broker.

        Returns False if some are still waiting after ``timeout`` seconds.
        A write-only script should call this (or :meth:`close`) before it
        exits; an ``atexit`` hook does so for up to ``CLOSE_TIMEOUT`` seconds.
        """
        raise NotImplementedError

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Flush the outbox (up to ``timeout`` seconds), stop listening, release the broker.

        Returns False (and logs how many messages were dropped) if the outbox
        could not be flushed.
        """
        raise NotImplementedError

    def _publish(self, message: dict[str, Any]) -> Any:
        """Publish one message and return once the broker has it; raise on failure."""
        raise NotImplementedError

    def _listen(self) -> Iterator[Any]:
        """Yield raw messages (bytes, str or dict) from the channel; ``None`` = connected."""
        raise NotImplementedError

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        """Publish ``(message, json_text)`` pairs in order; raise if any may be lost."""
        raise NotImplementedError

    def _heartbeat(self) -> bool:
        """Service an idle publisher connection; return True if it is known good."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release broker resources (connections, this worker's queue)."""
        raise NotImplementedError

    def _send(self, message: dict[str, Any], deliver_locally: Callable[[], Any] | None = None) -> None:
        """Queue ``message`` for the other workers, after ``deliver_locally`` once the outbox has room."""
        raise NotImplementedError

    def _reserve(self) -> None:
        """Take one outbox slot, waiting at most ``emit_timeout`` for one."""
        raise NotImplementedError

    def _spawn_server_handler(self, message: pubsub.RequestMessage) -> None:
        """Run the ``on_server`` handler of a server-side emit off the listener."""
        raise NotImplementedError

    def _spawn_forwarded(self, message: pubsub.RequestMessage) -> None:
        """Serve a request another worker forwarded, off the listener, if this worker owns its session.

        Only green servers under greensio's gunicorn worker own sessions
        that others forward (their sids carry the worker's tag).
        """

    def _handle_relay(self, message: pubsub.RelayMessage) -> None:
        """Part of a websocket another worker relays (only green workers own relayed sessions)."""

    def owner_of(self, sid: str, tag_length: int) -> str | None:
        """The live worker whose host id starts with the tag of ``sid``, if any (see ``greensio.forwarding``)."""
        tag = sid[:tag_length]
        if len(tag) < tag_length:
            return None
        return next((worker for worker in self.workers() if worker.startswith(tag) and worker != self.host_id), None)


def _sender(msg_id: str | None) -> str:
    """The worker that sent a message (message ids are ``<host id>.<counter>``)."""
    if msg_id is None:
        return cluster.UNKNOWN  # python-socketio numbers nothing
    return msg_id.rsplit('.', 1)[0]
