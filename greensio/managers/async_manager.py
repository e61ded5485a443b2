"""The in-memory client manager of the asyncio server (``socketio.AsyncManager``).

Shell ring, asyncio twin of ``manager.Manager``: the storage, lookups and
the broadcast loop are ``BaseManager``'s (sending only queues packets, so
nothing there needs to await); what python-socketio makes a coroutine is
a coroutine here, and ack callbacks may be coroutine functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .base_manager import BaseManager


class AsyncManager(BaseManager):
    """The in-memory client manager of :class:`greensio.AsyncServer` (the default)."""

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        return self._registry.pre_connect(eio_sid, namespace)

    async def connect(self, sid: str, namespace: str) -> str | None:
        if self.is_pre_connected(sid, namespace):
            return self._confirm_connect(sid, namespace)
        # an Engine.IO sid (the convention before python-socketio 5.18): registered first
        return self._confirm_connect(await self.pre_connect(sid, namespace), namespace)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        return self.is_connected(sid, namespace)

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        self.basic_disconnect(sid, namespace)

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        self.basic_enter_room(sid, namespace, room, eio_sid)

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self.basic_leave_room(sid, namespace, room)

    async def close_room(self, room: Any, namespace: str) -> None:
        self.basic_close_room(room, namespace)

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Callable[..., Any] | None = None, to: Any = None, **kwargs: Any) -> int:
        return self._emit_local(event, data, namespace, room, skip_sid, callback, to)

    async def trigger_callback(self, sid: str, id: int, data: list[Any]) -> None:
        callback = self._pop_callback(sid, id)
        if callback is not None:
            result = callback(*data)
            if inspect.isawaitable(result):
                await result
