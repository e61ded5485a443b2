"""The in-memory client manager of the green server (``socketio.Manager``).

Shell ring, green twin: the methods that are coroutines on the asyncio side
(``async_manager.AsyncManager``) are plain calls here; the rest is
``base_manager.BaseManager``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base_manager import BaseManager

__all__ = ['BaseManager', 'Manager']


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
