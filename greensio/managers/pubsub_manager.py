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

What never waits (state, health, stats, building and routing messages,
dedup, acting on what arrives) is written once in ``base_pubsub_manager``
and shared with the asyncio twin; this module adds the green waits: a lock
and events, the publisher and listener loops on background tasks.

A backend implements ``_publish(message)`` and ``_listen()`` like a
python-socketio backend (``_listen`` yields raw messages; it may also yield
``None`` to say "connected, nothing to read yet" and should raise when its
connection fails, so the state and the reconnect delay are handled here).
Optional hooks: ``_publish_batch`` (several messages per broker round
trip), ``_send_batch``/``_is_confirmed``/``_await_confirms`` (the next batch
goes out before the last one is confirmed), ``_heartbeat`` (called while the
publisher is idle) and ``_close``.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .._core import cluster, pubsub
from ..common.twins import drive
from .base_pubsub_manager import (
    CLOSE_TIMEOUT,
    CONFIRM_TICK,
    DEGRADED,
    EMIT_TIMEOUT,
    HEALTHY,
    HEARTBEAT_MIN_GAP,
    IDLE_TICK,
    LEAVE_TIMEOUT,
    LISTEN_READY_TIMEOUT,
    MAX_IN_FLIGHT,
    MAX_REMOTE_CALLBACKS,
    OUTBOX_SIZE,
    PUBLISH_BATCH,
    RETRY_DELAY_MAX,
    RETRY_DELAY_MIN,
    BasePubSubManager,
    default_logger,
)
from .manager import Manager

__all__ = ['CLOSE_TIMEOUT', 'DEGRADED', 'EMIT_TIMEOUT', 'HEALTHY', 'IDLE_TICK', 'LISTEN_READY_TIMEOUT',
           'MAX_REMOTE_CALLBACKS', 'OUTBOX_SIZE', 'PUBLISH_BATCH', 'RETRY_DELAY_MAX', 'RETRY_DELAY_MIN',
           'PubSubManager', 'default_logger']


class PubSubManager(BasePubSubManager, Manager):
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
    :param batch_size: messages published together as one broker message
        (one envelope, one confirm, one delivery, one ack), up to 1024.  The
        default 1 publishes every message on its own, as python-socketio
        does.  Above 1, only greensio workers of this version or later can
        read what this worker publishes: python-socketio workers, and older
        greensio ones, skip a batch (the latter log it), so raise it only on
        a channel where every worker runs this greensio.  Receiving needs no
        option: every greensio worker reads batches.
    """

    _run_flow = staticmethod(drive)

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._events: tuple[Any, Any, Any, Any] | None = None
        self._announce_event: Any = None
        self._relays: dict[tuple[str, str], Relay] = {}
        self._forwarded = 0  # requests of other workers being served

    def flush(self, timeout: float | None = CLOSE_TIMEOUT) -> bool:
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
        if self._closed:
            return True
        for relay in list(self._relays.values()):  # their other ends close their websockets
            relay.abort()
        if self._heartbeat_task is not None:  # the others stop counting this worker at once
            self._leaving = True
            leaving = self._heartbeat_due = self._heartbeat_message(leaving=True)
            self._wake_publisher()
            _wake, _room, stop, _ready = self._runtime()
            deadline = time.monotonic() + LEAVE_TIMEOUT
            while self._heartbeat_sent is not leaving and time.monotonic() < deadline:
                stop.wait(0.01)
        flushed = self.flush(timeout)
        self._mark_closed(flushed)
        wake, room, stop, _ready = self._runtime()
        stop.set()
        wake.set()
        room.set()
        if self._announce_event is not None:
            self._announce_event.set()
        for task in (self._publisher_task, self.thread, self._heartbeat_task):
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
            self._release_failed(exc)
        return flushed

    # -- python-socketio's manager interface --------------------------------------------

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            _wake, _room, _stop, ready = self._runtime()
            self.thread = self._spawn(self._listener_loop)
            ready.wait(LISTEN_READY_TIMEOUT)
            self._heartbeat_task = self._spawn(self._heartbeat_loop)
        self.logger.info('%s backend initialized.', self.name)

    def _listen_as_client(self, timeout: float) -> bool:
        """Listen without a server and without being a worker (``python -m greensio``).

        The manager can then send requests (``_start_request``,
        ``_emit_gathering``) and gather the workers' answers.  It sends no
        heartbeats, so no worker ever waits for it; its one heartbeat says
        hello and leaving at once, which makes every worker announce itself
        at once without counting this process.  False if the broker did not
        take the subscription within ``timeout`` seconds.
        """
        _wake, _room, _stop, ready = self._runtime()
        self.thread = self._spawn(self._listener_loop)
        if not ready.wait(timeout):
            return False
        self._heartbeat_due = self._heartbeat_message(hello=True, leaving=True)
        self._wake_publisher()
        return True

    def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,  # type: ignore[override]
             skip_sid: Any = None, callback: Callable[..., Any] | None = None, to: Any = None,
             **kwargs: Any) -> Any:
        route = self._route_emit(event, data, namespace, to or room, skip_sid, callback, bool(kwargs.get('ignore_queue')))
        if isinstance(route, int):  # delivered here only
            return route
        self._send(*route)
        return None

    def _emit_gathering(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, timeout: float,
                        ignore_queue: bool = False) -> cluster.Gathering:
        if ignore_queue:
            return super()._emit_gathering(event, data, namespace, room, skip_sid, timeout, ignore_queue)
        with self._sending(self._new_gathering(cluster.ACKS, timeout)) as gathering:
            self._send(*self._gathering_emit(gathering, event, data, namespace, room, skip_sid))
        return gathering

    def _start_request(self, op: str, namespace: str, timeout: float | None, **fields: Any) -> Any:
        with self._sending(None if timeout is None else self._new_gathering(cluster.REPLIES, timeout)) as gathering:
            self._send(self._request_message(gathering, op, namespace, **fields))
        return gathering

    def _spawn_server_handler(self, message: pubsub.RequestMessage) -> None:
        self.server.start_background_task(self._run_server_handler, message)

    def _spawn_forwarded(self, message: pubsub.RequestMessage) -> None:
        prefix = self.server.eio.sid_prefix
        if not prefix or not message.forward['sid'].startswith(prefix):
            return
        if self._forwarded >= MAX_FORWARDED:  # a flood from other workers: refused, not queued
            self._answer_forwarded(message, BUSY)
            return
        self._forwarded += 1
        self.server.start_background_task(self._serve_forwarded, message)

    def _serve_forwarded(self, message: pubsub.RequestMessage) -> None:
        try:
            request = message.forward
            body = request['body'] if isinstance(request['body'], bytes) else request['body'].encode()
            headers = {**request['headers'], 'content-length': str(len(body))}
            r = self.server.eio.handle_polling(request['method'], request['query'], headers, 'http',
                                               io.BytesIO(body).read)
        finally:
            self._forwarded -= 1
        if r is None or r is NotImplemented:  # a callable cors_allowed_origins needs the environ
            answer = ['400 BAD REQUEST', [['Content-Type', 'text/plain']], b'Bad Request']
        else:
            answer = [r.status_line, [list(h) for h in r.headers], r.body]
        self._answer_forwarded(message, answer)

    def _answer_forwarded(self, message: pubsub.RequestMessage, answer: list[Any]) -> None:
        self._send(self._messages.response(origin_host_id=message.host_id, request=message.request,
                                           forwarded=answer))

    def open_relay(self, owner: str, request: dict[str, Any]) -> Relay:
        """Relay a websocket this worker accepted to worker ``owner``, whose session it upgrades.

        ``request`` holds the upgrade's ``sid``, ``query`` and lower-case
        ``headers``.  The relay carries the client's messages to the owner
        and brings back the owner's frames, ready to write.
        """
        relay = Relay(self, owner, self._messages.request_id())
        self._relays[relay.peer, relay.id] = relay
        self._send(self._messages.relay(to=owner, relay=relay.id, open=request))
        return relay

    def _handle_relay(self, message: pubsub.RelayMessage) -> None:
        key = (message.sender, message.relay)
        relay = self._relays.get(key)
        if message.open is not None and relay is None:
            prefix = self.server.eio.sid_prefix if self.server is not None else ''
            if not prefix or not message.open['sid'].startswith(prefix) or len(self._relays) >= MAX_RELAYS:
                self._send(self._messages.relay(to=message.sender, relay=message.relay, close=True))
                return
            relay = self._relays[key] = Relay(self, message.sender, message.relay)
            self.server.start_background_task(self.server.eio.serve_relayed, message.open, relay)
        if relay is not None:
            relay.deliver(message.data, message.close)

    def forward(self, owner: str, request: dict[str, Any], timeout: float) -> list[Any] | None:
        """Have worker ``owner`` serve a long-polling ``request`` of its session; its answer, or None.

        ``request`` holds ``sid``, ``method``, ``query``, lower-case
        ``headers`` and ``body``; the answer is ``[status line, headers,
        body]``.  None when the owner died or did not answer within
        ``timeout`` seconds.
        """
        gathering = self._new_gathering(cluster.REPLIES, timeout)
        gathering.expected = {owner}
        with self._sending(gathering):
            self._send(self._request_message(gathering, pubsub.FORWARD, '/', forward=request))
        self.server._wait_gathering(gathering)
        return gathering.answers[0] if gathering.answers else None

    def _run_server_handler(self, message: pubsub.RequestMessage) -> None:
        drive(self._server_handler_flow(message))

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            self.server.sleep(delay)
            try:
                fn(*args)
            except Exception:
                self.logger.exception('%s: error sending answers', self.name)

        self.server.start_background_task(run)

    def _announce(self) -> None:
        if self._announce_event is not None:
            self._announce_event.set()

    def _heartbeat_loop(self) -> None:
        _wake, _room, stop, _ready = self._runtime()
        announce = self._announce_event = self.server.eio.create_event() if self.server else threading.Event()
        hello = True
        while not self._closed and not self._leaving:
            if self._heartbeat_due is None or hello:
                self._heartbeat_due = self._heartbeat_message(hello=hello)
                hello = False
                self._wake_publisher()
            announce.clear()
            announce.wait(self.heartbeat_interval)
            stop.wait(HEARTBEAT_MIN_GAP)  # many hellos at once: one heartbeat

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace):
            return self.is_connected(sid, namespace)  # ours: nothing to ask the other workers
        self._send(self._messages.disconnect(sid=sid, namespace=namespace or '/'))
        return False

    def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return self.basic_disconnect(sid, namespace)
        if self.server is not None and self.is_connected(sid, namespace):
            self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
            return None
        self._send(self._messages.disconnect(sid=sid, namespace=namespace))
        return None

    def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        route = self._route_room(pubsub.ENTER_ROOM, sid, namespace, room, eio_sid)
        if route is not None:
            self._send(*route)

    def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        route = self._route_room(pubsub.LEAVE_ROOM, sid, namespace, room)
        if route is not None:
            self._send(*route)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        self._send(*self._route_close_room(room, namespace))

    # -- backend seam ----------------------------------------------------------------

    def _publish(self, message: dict[str, Any]) -> Any:
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _listen(self) -> Iterator[Any]:
        raise NotImplementedError('This method must be implemented in a subclass.')

    def _publish_batch(self, batch: list[tuple[dict[str, Any], str]]) -> None:
        for message, _text in batch:
            self._publish(message)

    def _send_batch(self, batch: list[tuple[dict[str, Any], str]]) -> Any:
        """Publish like ``_publish_batch``, maybe without waiting for the broker's confirms.

        Returns a token for ``_is_confirmed``.  A backend whose broker confirms
        asynchronously (RabbitMQ) overrides the three, so that the next batch
        goes out while the broker still writes this one.
        """
        self._publish_batch(batch)

    def _is_confirmed(self, token: Any) -> bool:
        """Whether the broker confirmed what ``_send_batch`` returned ``token`` for, and all before it."""
        return True

    def _await_confirms(self, timeout: float) -> None:
        """Take the confirms the broker sent, waiting up to ``timeout`` for one; raise if they stay away too long."""

    def _heartbeat(self) -> bool:
        return False

    def _close(self) -> None:
        return None

    def _drop_publisher(self) -> None:
        """Forget a publisher connection that failed; the next publish connects again."""

    @contextlib.contextmanager
    def _publisher_guard(self) -> Iterator[None]:
        """A failure inside drops the publisher connection, then propagates."""
        try:
            yield
        except BaseException:
            self._drop_publisher()
            raise

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

    def _send(self, message: dict[str, Any], deliver_locally: Callable[[], Any] | None = None) -> None:
        text = pubsub.encode(message, self.json)  # a payload JSON cannot carry fails here, in the caller
        self._reserve()
        try:
            if deliver_locally is not None:
                deliver_locally()
        finally:
            self._commit(message, text)

    def _reserve(self) -> None:
        self._check_open()
        deadline = None
        while True:
            with self._lock:
                if self._has_room():
                    self._reserved += 1
                    return
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.emit_timeout
            remaining = deadline - now
            if remaining <= 0:
                raise self._refuse()
            _wake, room, _stop, _ready = self._runtime()
            room.clear()
            if not self._has_room():
                room.wait(remaining)

    def _wake_publisher(self) -> None:
        wake, _room, _stop, _ready = self._runtime()
        wake.set()
        if self._publisher_task is None:
            self._start_publisher()

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
        # published, not yet confirmed, oldest first: (the backend's token, outbox
        # messages, heartbeat); the messages are the first ``sent`` of the outbox
        in_flight: deque[tuple[Any, int, Any]] = deque()
        sent = 0
        while not self._closed:
            try:
                heartbeat = self._heartbeat_due
                if heartbeat is not None:
                    # ahead of the outbox, never queued: a late heartbeat is worthless
                    self._heartbeat_due = None
                    in_flight.append((self._send_batch([heartbeat]), 0, heartbeat))
                done = 0
                while in_flight and self._is_confirmed(in_flight[0][0]):
                    _token, count, beat = in_flight.popleft()
                    done += count
                    if beat is not None:
                        self._heartbeat_sent = beat
                if done:
                    sent -= done
                    delay = self.retry_delay_min
                    self._confirm(done)
                    room.set()
                if sent < len(outbox) and sent < MAX_IN_FLIGHT:
                    with self._lock:  # emits on OS threads append meanwhile: a deque must not change while copied
                        batch = list(islice(outbox, sent, sent + PUBLISH_BATCH))
                    in_flight.append((self._send_batch(self._wire(batch)), len(batch), None))
                    sent += len(batch)
                    continue
                if in_flight:
                    if sent < len(outbox):  # the window is full: wait for the broker
                        self._await_confirms(CONFIRM_TICK)
                        continue
                    # nothing new to publish: a new emit goes out at once, confirms are read meanwhile
                    wake.clear()
                    if sent >= len(outbox):
                        wake.wait(CONFIRM_TICK)
                    self._await_confirms(0)
                    continue
            except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                in_flight.clear()  # what was not confirmed is published again, in order
                sent = 0
                self._set_health(publisher=False, error=exc)
                stop.wait(delay)
                delay = self._backoff(delay)
                continue
            wake.clear()
            if not outbox and self._heartbeat_due is None:
                wake.wait(self.idle_tick)
            if not outbox and self._heartbeat_due is None:
                try:
                    if self._heartbeat():
                        self._set_health(publisher=True)
                except Exception as exc:  # noqa: BLE001 - broker clients raise anything on an outage
                    self._set_health(publisher=False, error=exc)
                    stop.wait(delay)
                    delay = self._backoff(delay)

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
                        self._listening_again()
                        ready.set()
                        continue
                    self._handle_raw(raw)
                else:
                    self._listen_ended()
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
                delay = self._backoff(delay)

    def _handle_raw(self, raw: Any) -> None:
        for message in self._accept(raw):
            try:
                self._handle_message(message)
            except Exception:
                self.logger.exception('%s: error handling a %s message', self.name, type(message).__name__)

    # -- acks across workers -----------------------------------------------------------------

    def _return_callback(self, host_id: str, sid: str, namespace: str, ack_id: int, *args: Any) -> None:
        if host_id == self.host_id:
            self.trigger_callback(sid, ack_id, list(args))
        else:
            self._send(self._messages.callback(origin_host_id=host_id, sid=sid, namespace=namespace,
                                               ack_id=ack_id, args=list(args)))


# Write-only managers run their publisher on a daemon thread: give it a
# chance to drain when the script ends, as python-socketio's synchronous
# publish did.
_atexit_managers: list[Any] = []


#: Long-polling requests other workers forward that one worker serves at once
#: (a waiting GET counts until it is answered); beyond, they are refused.
MAX_FORWARDED = 10_000
BUSY = ['503 SERVICE UNAVAILABLE', [['Content-Type', 'text/plain']], b'Service Unavailable']
#: Websockets one worker relays at once, as either end.
MAX_RELAYS = 10_000
#: Messages a relay holds for a reader that does not take them before it is closed.
MAX_RELAY_BACKLOG = 10_000


class Relay:
    """One end of a websocket relayed through the queue between two workers.

    It has a websocket transport's interface (``receive``, ``send``,
    ``settimeout``, ``close``), so the owner's Engine.IO server reads the
    client's messages from it and writes its frames to it as to a socket;
    the worker that accepted the websocket reads the owner's frames from it.
    The relay ends when either side closes it or the other worker is gone.
    """

    def __init__(self, manager: PubSubManager, peer: str, relay_id: str) -> None:
        self.manager = manager
        self.peer = peer
        self.id = relay_id
        self.inbox = manager.server.eio.create_queue()
        self.closed = False
        self.timeout: float | None = None

    def settimeout(self, seconds: float | None) -> None:
        self.timeout = seconds

    def send(self, item: str | bytes) -> None:
        if not self.closed:
            self.manager._send(self.manager._messages.relay(to=self.peer, relay=self.id, data=[item]))

    def receive(self) -> str | bytes | None:
        """The other side's next message; None once the relay has ended.  Raises TimeoutError."""
        manager = self.manager
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        empty = manager.server.eio.get_queue_empty_exception()
        while True:
            wait = manager._liveness_tick()
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                return self.inbox.get(timeout=wait)
            except empty:
                if self.peer not in manager.workers():
                    self.abort()
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError('nothing relayed in time') from None

    def deliver(self, items: list[Any], close: bool) -> None:
        """What the other side sent (from the listener)."""
        for item in items:
            self.inbox.put(item)
        if close or self.inbox.qsize() > MAX_RELAY_BACKLOG:
            self.abort(notify=not close)

    def close(self, code: int = 1000, reason: str = '') -> None:
        self.abort()

    def abort(self, notify: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        manager = self.manager
        manager._relays.pop((self.peer, self.id), None)
        self.inbox.put(None)
        if notify and not manager._closed:
            try:
                manager._send(manager._messages.relay(to=self.peer, relay=self.id, close=True))
            except Exception:  # noqa: BLE001 - a full outbox: the other end notices this worker's silence
                manager.logger.info('%s: could not tell %s that relay %s ended', manager.name, self.peer, self.id)


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
