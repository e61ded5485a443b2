"""The in-memory client manager (python-socketio's ``Manager`` interface).

Shell ring.  Storage and lookups live in ``_core.rooms.RoomRegistry``;
``BaseManager`` adds python-socketio's method names and the broadcast (the
packet is encoded once and the same Engine.IO packets go to every
recipient), shared with ``AsyncManager``.  ``Manager`` is the green twin:
the methods that are coroutines on the asyncio side are plain calls here.
The message-queue managers subclass it and override only what crosses workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._core import packet as pk
from ._core.payload import to_args
from ._core.rooms import RoomRegistry
from ._twins import SharedDocs

default_logger = logging.getLogger('greensio')


class BaseManager(SharedDocs):
    """Tracks clients and rooms of one server process and delivers emits."""

    name = 'memory'

    def __init__(self) -> None:
        self.logger = default_logger
        self.server: Any = None
        self._registry = RoomRegistry(self._generate_sid)

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
                    callback: Callable[..., Any] | None = None, to: Any = None) -> int:
        # Sending only queues packets, in both twins, so the delivery loop is
        # plain code that the green and the asyncio manager share.
        room = to or room
        server = self.server
        recovery = server._recovery
        if recovery is not None and callback is None:
            # logged even with no client to send it to: a disconnected one may come back for it
            payload = recovery.record(namespace, room, skip_sid, [event, *to_args(data)], time.monotonic())
        elif namespace not in self._registry.rooms:
            return 0
        else:
            payload = [event, *to_args(data)]
        skip = set(skip_sid) if isinstance(skip_sid, (list, tuple, set)) else {skip_sid}
        send = server._send_eio_packet
        delivered = 0
        if callback is None:
            packets = server._encode(pk.EVENT, namespace, payload)
            for sid, eio_sid in self.get_participants(namespace, room):
                if sid not in skip:
                    for eio_pkt in packets:
                        send(eio_sid, eio_pkt)
                    delivered += 1
            return delivered
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid not in skip:
                ack_id = self._generate_ack_id(sid, callback)
                server._send_packet(eio_sid, server.packet_class(pk.EVENT, payload, namespace, ack_id))
                delivered += 1
        return delivered

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


class Manager(BaseManager):
    """The in-memory client manager of the green :class:`greensio.Server` (the default)."""

    def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        return self._registry.pre_connect(eio_sid, namespace)

    def connect(self, sid: str, namespace: str) -> str | None:
        if self.is_pre_connected(sid, namespace):
            return self._confirm_connect(sid, namespace)
        # an Engine.IO sid (the convention before python-socketio 5.18): registered first
        return self._confirm_connect(self.pre_connect(sid, namespace), namespace)

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        return self.is_connected(sid, namespace)

    def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        self.basic_disconnect(sid, namespace)

    def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        self.basic_enter_room(sid, namespace, room, eio_sid)

    def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self.basic_leave_room(sid, namespace, room)

    def close_room(self, room: Any, namespace: str) -> None:
        self.basic_close_room(room, namespace)

    def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
             callback: Callable[..., Any] | None = None, to: Any = None, **kwargs: Any) -> int:
        return self._emit_local(event, data, namespace, room, skip_sid, callback, to)

    def trigger_callback(self, sid: str, id: int, data: list[Any]) -> None:
        callback = self._pop_callback(sid, id)
        if callback is not None:
            callback(*data)
