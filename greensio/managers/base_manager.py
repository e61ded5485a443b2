"""What both in-memory client managers share (python-socketio's ``Manager`` interface).

Shell ring, runtime-neutral.  Storage and lookups live in
``_core.rooms.RoomRegistry``; ``BaseManager`` adds python-socketio's method
names and the broadcast (the packet is encoded once and the same Engine.IO
packets go to every recipient).  ``manager.Manager`` (green) and
``async_manager.AsyncManager`` only add the methods that are coroutines on
the asyncio side; the message-queue managers subclass those and override
only what crosses workers.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .._core import cluster
from .._core import packet as pk
from .._core.payload import from_args, to_args
from .._core.rooms import RoomRegistry
from ..common.twins import SharedDocs

default_logger = logging.getLogger('greensio')

#: A flow step: a callable and its arguments (``_twins.drive`` runs it).
Flow = Iterator[tuple[Any, ...]]


def _names(target: Any) -> list[Any]:
    """A ``skip_sid``/``to`` target as a list of names."""
    if target is None:
        return []
    return list(target) if isinstance(target, (list, tuple, set, frozenset)) else [target]


def _answer(gathering: cluster.Gathering, worker: str, *args: Any) -> None:
    """A local client's ack of a broadcast that collects acks."""
    gathering.answer(worker, from_args(list(args)))


class BaseManager(SharedDocs):
    """Tracks clients and rooms of one server process and delivers emits."""

    name = 'memory'
    #: This worker's name in cluster answers (a queue manager's host id).
    _worker_id = 'local'
    #: Whether other workers share this server's clients (a queue manager):
    #: a recoverable session may then be saved on another worker.
    _cluster = False

    def __init__(self) -> None:
        self.logger = default_logger
        self.server: Any = None
        self._registry = RoomRegistry(self._generate_sid)
        self._gatherings: dict[str, cluster.Gathering] = {}  # request id -> its answers so far
        #: request id -> (the ack callback, the local recipients) of a broadcast that collects acks
        self._silent_candidates: dict[str, tuple[Callable[..., Any], list[str]]] = {}
        self._requests = 0

    # python-socketio exposes these dicts; custom managers read them
    @property
    def rooms(self) -> dict:
        return self._registry.rooms

    @property
    def callbacks(self) -> dict:
        return self._registry.callbacks

    @property
    def pending_connect(self) -> dict:
        return self._registry.pending_connect

    @property
    def pending_disconnect(self) -> dict:
        return self._registry.pending_disconnect

    def _generate_sid(self) -> str:
        return self.server.eio.generate_id()

    def set_server(self, server: Any) -> None:
        """Called by the server it serves, from its constructor."""
        self.server = server
        if getattr(server, 'logger', None) is not None:
            self.logger = server.logger

    def initialize(self) -> None:
        """Called once, before the server handles its first connection."""

    # -- clients --------------------------------------------------------------

    def get_namespaces(self) -> Iterator[str]:
        """The namespaces that have clients."""
        return iter(list(self._registry.rooms))

    def get_participants(self, namespace: str, room: Any) -> Iterator[tuple[str, str]]:
        """``(sid, eio_sid)`` of each local client in a room, a list of rooms (each once) or, for ``None``, the namespace."""
        return self._registry.get_participants(namespace, room)

    def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """Register a client in a namespace as pre-connected: its new sid, or None if already there.

        A pre-connected client is in its rooms but not yet :meth:`is_connected`;
        :meth:`connect` completes the connection.
        """
        raise NotImplementedError

    def connect(self, sid: str, namespace: str) -> str | None:
        """Mark a pre-connected client as connected; returns its sid.

        Given the Engine.IO sid of a client that is not pre-connected (the
        calling convention before python-socketio 5.18), registers it with
        :meth:`pre_connect` first, so it is connected in one step; None if that
        Engine.IO connection is in the namespace already.
        """
        raise NotImplementedError

    def basic_restore(self, eio_sid: str, namespace: str, sid: str, rooms: Iterable[Any]) -> str | None:
        """Pre-connect a client under the sid and in the rooms of a session it recovers (storage only).

        None if that Engine.IO connection is in the namespace already.
        """
        if self._registry.pre_connect(eio_sid, namespace, sid) is None:
            return None
        for room in rooms:
            self._registry.enter_room(sid, namespace, room, eio_sid)
        return sid

    def _confirm_connect(self, sid: str | None, namespace: str) -> str | None:
        if sid is not None:
            self._registry.confirm_connect(sid, namespace)
        return sid

    def is_pre_connected(self, sid: str, namespace: str) -> bool:
        """Registered by :meth:`pre_connect` and not connected yet."""
        return self._registry.is_pre_connected(sid, namespace)

    def is_connected(self, sid: str, namespace: str) -> bool:
        """Connected (not only pre-connected) and not being disconnected."""
        return self._registry.is_connected(sid, namespace)

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        """The sid of an Engine.IO connection in a namespace."""
        return self._registry.sid_from_eio_sid(eio_sid, namespace)

    def eio_sid_from_sid(self, sid: str, namespace: str) -> str | None:
        """The Engine.IO sid of a client."""
        return self._registry.eio_sid_from_sid(sid, namespace)

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        """Whether the server should disconnect ``sid`` itself (a pub/sub manager may forward it)."""
        raise NotImplementedError

    def pre_disconnect(self, sid: str, namespace: str) -> str | None:
        """Mark a client as being disconnected; returns its Engine.IO sid."""
        return self._registry.pre_disconnect(sid, namespace)

    def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a client: its rooms and pending acks."""
        raise NotImplementedError

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Forget a client (storage only, nothing crosses workers)."""
        self._registry.disconnect(sid, namespace)

    # -- rooms ----------------------------------------------------------------

    def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        """Put a client in a room."""
        raise NotImplementedError

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        """Put a client in a room (storage only)."""
        self._registry.enter_room(sid, namespace, room, eio_sid)

    def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Take a client out of a room."""
        raise NotImplementedError

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """Take a client out of a room (storage only)."""
        self._registry.leave_room(sid, namespace, room)

    def close_room(self, room: Any, namespace: str) -> None:
        """Take every client out of a room."""
        raise NotImplementedError

    def basic_close_room(self, room: Any, namespace: str) -> None:
        """Empty a room (storage only)."""
        self._registry.close_room(room, namespace)

    def is_sid_room(self, namespace: str, room: Any) -> bool:
        """Whether ``room`` is a local client's own room, which no other client may enter."""
        return self._registry.is_sid_room(namespace, room)

    def get_rooms(self, sid: str, namespace: str) -> list:
        """The rooms of a client, including the room named by its sid."""
        return self._registry.get_rooms(sid, namespace)

    # -- delivery ---------------------------------------------------------------

    def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Callable[..., Any] | None = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Deliver to local clients; return how many got it."""
        raise NotImplementedError

    def _emit_local(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                    callback: Callable[..., Any] | None = None, to: Any = None, msg_id: str | None = None) -> int:
        # Sending only queues packets, in both twins, so the delivery loop is
        # plain code that the green and the asyncio manager share.  ``msg_id``
        # names the queue message of the emit, which a worker taking over a
        # recoverable session from another one matches against that one's log.
        room = to or room
        server = self.server
        recovery = server._recovery
        if recovery is not None and callback is None:
            now = time.monotonic()
            if msg_id is not None and recovery.expecting:
                # clients taken over from another worker that had it in their replay
                replayed = recovery.already_replayed(msg_id, now)
                if replayed:
                    skip_sid = [*_names(skip_sid), *replayed]
            # logged even with no client to send it to: a disconnected one may come back for it
            payload = recovery.record(namespace, room, skip_sid, [event, *to_args(data)], now, msg_id)
        elif namespace not in self._registry.rooms:
            return 0
        else:
            payload = [event, *to_args(data)]
        skip = self._skipped(namespace, skip_sid)
        delivered = 0
        if callback is None:
            send = server._send_eio_packets
            packets = server._encode(pk.EVENT, namespace, payload)
            for sid, eio_sid in self.get_participants(namespace, room):
                if sid not in skip:
                    send(eio_sid, packets)
                    delivered += 1
        else:
            for sid, eio_sid in self.get_participants(namespace, room):
                if sid not in skip:
                    ack_id = self._generate_ack_id(sid, callback)
                    server._send_packet(eio_sid, server.packet_class(pk.EVENT, payload, namespace, ack_id))
                    delivered += 1
        if server._metrics is not None:
            # the packets, the same for every recipient, are counted here once (_send_packet counted the acked ones)
            server._metrics.emitted(namespace, delivered, () if callback else packets)
        return delivered

    # -- the cluster as one server: the local half -----------------------------------

    def workers(self) -> list[str]:
        """The ids of the live workers sharing this server's clients, this one first.

        The in-memory manager is a cluster of one: ``['local']``.
        """
        return [self._worker_id]

    def _expected_workers(self) -> list[str]:
        """The other workers a request waits for (none without a queue)."""
        return []

    def _skipped(self, namespace: str, skip: Any) -> set[str]:
        """The local sids a ``skip``/``skip_sid`` excludes: sids, and every member of rooms named there."""
        if skip is None:
            return set()
        names = skip if isinstance(skip, (list, tuple, set)) else [skip]
        skipped = set(names)  # a sid that is not (yet) in the registry is still skipped
        skipped.update(sid for sid, _ in self._registry.get_participants(namespace, list(names)))
        return skipped

    def _selected(self, namespace: str, to: Any, skip: Any) -> list[tuple[str, str]]:
        """``(sid, eio_sid)`` of the local clients in ``to`` (every one for None) and not in ``skip``."""
        skipped = self._skipped(namespace, skip)
        return [(sid, eio_sid) for sid, eio_sid in self.get_participants(namespace, to) if sid not in skipped]

    def _describe_socket(self, sid: str, namespace: str, eio_sid: str) -> dict[str, Any]:
        """A local client as a JSON object, for ``fetch_sockets``."""
        from ..cluster import handshake

        server = self.server
        shake = server._handshakes.get(sid)
        if not isinstance(shake, dict):  # (auth, connect time) until first described: it never changes
            shake = handshake(server.environ.get(eio_sid) or {}, *(shake or (None, 0.0)))
            if sid in server._handshakes:
                server._handshakes[sid] = shake
        conn = server._connections.get(eio_sid)
        session = conn.sessions.get(namespace, {}) if conn is not None else {}
        data = {}
        for key in server.shared_session_keys:
            if key in session:
                try:
                    _json.dumps(session[key])
                except (TypeError, ValueError):
                    self.logger.warning('session key %r of %s is not JSON: not shared', key, sid)
                    continue
                data[key] = session[key]
        rooms = [room for room in self.get_rooms(sid, namespace) if isinstance(room, (str, int))]
        return {'sid': sid, 'namespace': namespace, 'rooms': rooms, 'handshake': shake, 'data': data}

    def _local_sockets(self, namespace: str, to: Any, skip: Any) -> list[dict[str, Any]]:
        return [self._describe_socket(sid, namespace, eio_sid) for sid, eio_sid in self._selected(namespace, to, skip)
                if self.is_connected(sid, namespace)]

    def _local_room_change(self, join: bool, namespace: str, room: Any, to: Any, skip: Any) -> None:
        rooms = room if isinstance(room, (list, tuple)) else [room]
        for sid, eio_sid in self._selected(namespace, to, skip):
            for name in rooms:
                if join:
                    self.basic_enter_room(sid, namespace, name, eio_sid)
                else:
                    self.basic_leave_room(sid, namespace, name)

    def _local_disconnects(self, namespace: str, to: Any, skip: Any, close: bool) -> Flow:
        """Disconnect the local clients selected (a flow: disconnecting runs handlers)."""
        for sid, eio_sid in self._selected(namespace, to, skip):
            if close:
                yield (self.server.eio.disconnect, eio_sid)
            elif self.is_connected(sid, namespace):
                yield (self.server.disconnect, sid, namespace, True)

    def _new_gathering(self, kind: str, timeout: float, local_only: bool = False) -> cluster.Gathering:
        self._requests += 1
        request = f'{self._worker_id}.g{self._requests}'
        expected = [] if local_only else self._expected_workers()
        gathering = cluster.Gathering(request, kind, expected, time.monotonic() + timeout)
        self._gatherings[request] = gathering
        return gathering

    def _gather_locally(self, gathering: cluster.Gathering, event: str, data: Any, namespace: str, room: Any,
                        skip_sid: Any) -> None:
        """Deliver a broadcast that collects acks to the local clients, and count them."""
        answer = functools.partial(_answer, gathering, self._worker_id)
        count, recipients = self._emit_collecting(event, data, namespace, room, skip_sid, answer)
        self._silent_candidates[gathering.request] = (answer, recipients)
        gathering.count(self._worker_id, count, isinstance(room, str) and self.is_connected(room, namespace))

    def _emit_collecting(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any,
                         callback: Callable[..., Any]) -> tuple[int, list[str]]:
        """Emit with an ack ``callback`` per client; the count and the sids it went to."""
        recipients = [sid for sid, _ in self._selected(namespace, room, skip_sid)]
        return self._emit_local(event, data, namespace, room, skip_sid, callback), recipients

    def _forget_answers(self, recipients: list[str], callback: Callable[..., Any]) -> None:
        """Drop the ack callbacks of clients that never answered (they would stay until they disconnect)."""
        for sid in recipients:
            self._registry.discard_callback(sid, callback)

    def _emit_gathering(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, timeout: float,
                        ignore_queue: bool = False) -> Any:
        """Start a broadcast that collects every ack; returns its gathering (awaitable on a queue's asyncio twin)."""
        gathering = self._new_gathering(cluster.ACKS, timeout, local_only=True)
        self._gather_locally(gathering, event, data, namespace, room, skip_sid)
        return gathering

    def _start_request(self, op: str, namespace: str, timeout: float | None, **fields: Any) -> Any:
        """Ask the other workers to apply ``op`` to their clients; a gathering for their answers when
        ``timeout`` is given (awaitable on a queue's asyncio twin).  Without a queue there is nobody to ask."""
        return None if timeout is None else self._new_gathering(cluster.REPLIES, timeout, local_only=True)

    def _liveness_tick(self) -> float:
        """How often a waiter checks that the workers it waits for are alive."""
        return 3600.0

    def _settle(self, gathering: cluster.Gathering) -> bool:
        """Whether the waiter of ``gathering`` is done (finished, or past its deadline)."""
        return gathering.finished or gathering.expired(time.monotonic())

    def _waits(self, gathering: cluster.Gathering) -> Iterator[float]:
        """How long the waiter of ``gathering`` sleeps each time (woken early by ``on_change``) until it
        is settled; then the gathering is forgotten.  Bounded: every wait ends by the deadline."""
        try:
            while not self._settle(gathering):
                yield min(max(gathering.deadline - time.monotonic(), 0.0), self._liveness_tick())
        finally:
            self._end_gathering(gathering)

    def _end_gathering(self, gathering: cluster.Gathering) -> None:
        self._gatherings.pop(gathering.request, None)
        gathering.on_change = None
        local = self._silent_candidates.pop(gathering.request, None)
        if local is not None and gathering.answered.get(self._worker_id, 0) < gathering.counts.get(self._worker_id, 0):
            self._forget_answers(local[1], local[0])

    def _room_has_members(self, namespace: str, room: Any) -> bool:
        return any(True for _ in self.get_participants(namespace, room))

    def _generate_ack_id(self, sid: str, callback: Callable[..., Any]) -> int:
        return self._registry.add_callback(sid, callback)

    def discard_callback(self, sid: str, callback: Callable[..., Any]) -> None:
        """Forget an ack callback nobody waits for any more (a ``call()`` that timed out).

        Without this a client that never acks would keep one entry per
        timed-out call until it disconnects.
        """
        self._registry.discard_callback(sid, callback)

    def trigger_callback(self, sid: str, id: int, data: list[Any]) -> Any:
        """Run the ack callback ``id`` of ``sid`` with the client's ack arguments."""
        raise NotImplementedError

    def _pop_callback(self, sid: str, id: int) -> Callable[..., Any] | None:
        callback = self._registry.pop_callback(sid, id)
        if callback is None:
            self.logger.warning('Unknown callback received, ignoring.')
        return callback

