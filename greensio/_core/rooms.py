"""Who is connected where: namespaces, sids, rooms and pending acks.

Data model (python-socketio's, so custom managers keep working):
``rooms[namespace][room] = {sid: eio_sid}``; the room ``None`` holds every
client of the namespace and every client is also in the room named by its
sid.  Two indexes keep every operation O(rooms of one client) or
O(recipients): ``sid_rooms[namespace][sid]`` and ``eio_to_sid[namespace]``.

A client registered by ``pre_connect`` is pre-connected (in its rooms, not
yet ``is_connected``) until ``confirm_connect``, python-socketio 5.18's two
steps; ``connect`` registers a connected client in one step.
"""

import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, cast

Room = Hashable


class RoomRegistry:
    def __init__(self, generate_id: Callable[[], str]) -> None:
        self._generate_id = generate_id
        self.rooms: dict[str, dict[Room, dict[str, str]]] = {}
        self.sid_rooms: dict[str, dict[str, set[Room]]] = {}
        self.eio_to_sid: dict[str, dict[str, str]] = {}
        self.pending_connect: dict[str, set[str]] = {}
        self.pending_disconnect: dict[str, set[str]] = {}
        self.callbacks: dict[str, dict[int, Callable[..., Any]]] = {}
        self._ack_ids: dict[str, Iterator[int]] = {}

    # -- connections ----------------------------------------------------------

    def connect(self, eio_sid: str, namespace: str, sid: str | None = None) -> str | None:
        """Register a client in a namespace (under a new sid unless given); None if that eio_sid is in it already."""
        if eio_sid in self.eio_to_sid.get(namespace, ()):
            return None
        sid = sid or self._generate_id()
        self.eio_to_sid.setdefault(namespace, {})[eio_sid] = sid
        self.enter_room(sid, namespace, None, eio_sid)
        self.enter_room(sid, namespace, sid, eio_sid)
        return sid

    def pre_connect(self, eio_sid: str, namespace: str, sid: str | None = None) -> str | None:
        """Register a pre-connected client; None if that eio_sid is in the namespace already."""
        sid = self.connect(eio_sid, namespace, sid)
        if sid is not None:
            self.pending_connect.setdefault(namespace, set()).add(sid)
        return sid

    def confirm_connect(self, sid: str, namespace: str) -> None:
        """A pre-connected client becomes connected."""
        _discard(self.pending_connect, namespace, sid)

    def is_pre_connected(self, sid: str, namespace: str) -> bool:
        return sid in self.pending_connect.get(namespace, ()) and sid in self.sid_rooms.get(namespace, ())

    def is_connected(self, sid: str, namespace: str) -> bool:
        if sid in self.pending_disconnect.get(namespace, ()) or sid in self.pending_connect.get(namespace, ()):
            return False
        return sid in self.sid_rooms.get(namespace, ())

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str | None:
        return self.eio_to_sid.get(namespace, {}).get(eio_sid)

    def eio_sid_from_sid(self, sid: str, namespace: str) -> str | None:
        members = self.rooms.get(namespace, {}).get(sid)
        return members.get(sid) if members else None

    def pre_disconnect(self, sid: str, namespace: str) -> str | None:
        self.pending_disconnect.setdefault(namespace, set()).add(sid)
        return self.eio_sid_from_sid(sid, namespace)

    def disconnect(self, sid: str, namespace: str) -> None:
        eio_sid = self.eio_sid_from_sid(sid, namespace)
        for room in list(self.sid_rooms.get(namespace, {}).get(sid, ())):
            self.leave_room(sid, namespace, room)
        if eio_sid is not None:
            by_eio = self.eio_to_sid.get(namespace, {})
            if by_eio.get(eio_sid) == sid:
                del by_eio[eio_sid]
                if not by_eio:
                    del self.eio_to_sid[namespace]
        _discard(self.pending_connect, namespace, sid)
        _discard(self.pending_disconnect, namespace, sid)
        self.callbacks.pop(sid, None)
        self._ack_ids.pop(sid, None)

    # -- rooms ----------------------------------------------------------------

    def is_sid_room(self, namespace: str, room: Room) -> bool:
        """Whether ``room`` is the private room of a client (named by its sid)."""
        return room in self.rooms.get(namespace, {}).get(None, ())

    def enter_room(self, sid: str, namespace: str, room: Room, eio_sid: str | None = None) -> None:
        if eio_sid is None:
            eio_sid = self.eio_sid_from_sid(sid, namespace)
            if eio_sid is None:
                raise ValueError('sid is not connected to requested namespace')
        if room != sid and self.is_sid_room(namespace, room):
            # whoever joined it would receive that client's private messages
            raise ValueError('cannot enter a sid room')
        self.rooms.setdefault(namespace, {}).setdefault(room, {})[sid] = eio_sid
        self.sid_rooms.setdefault(namespace, {}).setdefault(sid, set()).add(room)

    def leave_room(self, sid: str, namespace: str, room: Room) -> None:
        ns_rooms = self.rooms.get(namespace)
        if ns_rooms is None or room not in ns_rooms:
            return
        members = ns_rooms[room]
        members.pop(sid, None)
        if not members:
            del ns_rooms[room]
            if not ns_rooms:
                del self.rooms[namespace]
        joined = self.sid_rooms.get(namespace, {}).get(sid)
        if joined is not None:
            joined.discard(room)
            if not joined:
                del self.sid_rooms[namespace][sid]
                if not self.sid_rooms[namespace]:
                    del self.sid_rooms[namespace]

    def close_room(self, room: Room, namespace: str) -> None:
        for sid in list(self.rooms.get(namespace, {}).get(room, ())):
            self.leave_room(sid, namespace, room)

    def get_rooms(self, sid: str, namespace: str) -> list[Room]:
        return [r for r in self.sid_rooms.get(namespace, {}).get(sid, ()) if r is not None]

    def get_participants(self, namespace: str, room: Room | Iterable[Room] | None) -> Iterator[tuple[str, str]]:
        """Yield ``(sid, eio_sid)`` for each recipient once, skipping pending disconnects."""
        ns_rooms = self.rooms.get(namespace)
        if not ns_rooms:
            return
        pending = self.pending_disconnect.get(namespace, ())
        if isinstance(room, (list, tuple, set, frozenset)):
            seen: set[str] = set()
            for r in room:
                for sid, eio_sid in list(ns_rooms.get(r, {}).items()):
                    if sid not in seen and sid not in pending:
                        seen.add(sid)
                        yield sid, eio_sid
            return
        for sid, eio_sid in list(ns_rooms.get(cast(Room, room), {}).items()):
            if sid not in pending:
                yield sid, eio_sid

    # -- acks -----------------------------------------------------------------

    def add_callback(self, sid: str, callback: Callable[..., Any]) -> int:
        """Register an ack callback; ids are per-sid counters from 1."""
        counter = self._ack_ids.get(sid)
        if counter is None:
            counter = self._ack_ids[sid] = itertools.count(1)
        ack_id = next(counter)
        self.callbacks.setdefault(sid, {})[ack_id] = callback
        return ack_id

    def discard_callback(self, sid: str, callback: Callable[..., Any]) -> None:
        """Forget a callback nobody waits for any more (a ``call()`` that timed out)."""
        callbacks = self.callbacks.get(sid)
        if callbacks:
            for ack_id in [i for i, fn in callbacks.items() if fn is callback]:
                del callbacks[ack_id]

    def pop_callback(self, sid: str, ack_id: int) -> Callable[..., Any] | None:
        callbacks = self.callbacks.get(sid)
        return callbacks.pop(ack_id, None) if callbacks else None


def _discard(pending: dict[str, set[str]], namespace: str, sid: str) -> None:
    """Take ``sid`` out of a pending set, dropping the namespace's set once empty."""
    sids = pending.get(namespace)
    if sids is not None:
        sids.discard(sid)
        if not sids:
            del pending[namespace]
