"""Class-based namespaces for asyncio (``socketio.AsyncNamespace``, ``socketio.AsyncClientNamespace``).

Shell ring, asyncio twins of ``namespace.Namespace`` and
``namespace.ClientNamespace``: dispatch and the docstrings are
``BaseServerNamespace``'s and ``BaseClientNamespace``'s; the wrappers await.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..common.base_namespace import BaseClientNamespace, BaseServerNamespace
from .runtime import settle


class AsyncNamespace(BaseServerNamespace):
    """Base class for class-based namespaces of a :class:`greensio.AsyncServer`.

    Methods named ``on_<event>`` handle ``<event>`` and may be plain
    functions or coroutines: ``on_connect(self, sid, environ[, auth])``,
    ``on_disconnect(self, sid[, reason])`` and ``on_<event>(self, sid,
    *args)``; a return value becomes the ack.
    """

    def is_asyncio_based(self) -> bool:
        return True

    async def trigger_event(self, event: str, *args: Any) -> Any:
        return await settle(self._dispatch(event, args))

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Callable | None = None,
                   ignore_queue: bool = False, *, timeout: float | None = None) -> None:
        return await self.server.emit(event, data=data, to=to, room=room, skip_sid=skip_sid,
                                      namespace=namespace or self.namespace, callback=callback,
                                      ignore_queue=ignore_queue, timeout=timeout)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Callable | None = None,
                   ignore_queue: bool = False) -> None:
        return await self.server.send(data, to=to, room=room, skip_sid=skip_sid,
                                      namespace=namespace or self.namespace, callback=callback,
                                      ignore_queue=ignore_queue)

    async def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
                   namespace: str | None = None, timeout: float | None = None, ignore_queue: bool = False) -> Any:
        return await self.server.call(event, data=data, to=to, sid=sid,
                                      namespace=namespace or self.namespace, timeout=timeout,
                                      ignore_queue=ignore_queue)

    async def fetch_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                            timeout: float = 5) -> Any:
        return await self.server.fetch_sockets(to, namespace=namespace or self.namespace, skip=skip, timeout=timeout)

    async def sockets_join(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        return await self.server.sockets_join(room, to=to, namespace=namespace or self.namespace, skip=skip)

    async def sockets_leave(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        return await self.server.sockets_leave(room, to=to, namespace=namespace or self.namespace, skip=skip)

    async def disconnect_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                                 close: bool = False) -> Any:
        return await self.server.disconnect_sockets(to=to, namespace=namespace or self.namespace, skip=skip,
                                                    close=close)

    async def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        return await self.server.enter_room(sid, room, namespace=namespace or self.namespace)

    async def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        return await self.server.leave_room(sid, room, namespace=namespace or self.namespace)

    async def close_room(self, room: Any, namespace: str | None = None) -> None:
        return await self.server.close_room(room, namespace=namespace or self.namespace)

    async def get_session(self, sid: str, namespace: str | None = None) -> dict:
        return await self.server.get_session(sid, namespace=namespace or self.namespace)

    async def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        return await self.server.save_session(sid, session, namespace=namespace or self.namespace)

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        return await self.server.disconnect(sid, namespace=namespace or self.namespace)


class AsyncClientNamespace(BaseClientNamespace):
    """Base class for class-based namespaces of a :class:`greensio.AsyncClient`.

    Methods named ``on_<event>`` handle ``<event>`` and may be plain
    functions or coroutines: ``on_connect(self)``, ``on_connect_error(self,
    data)``, ``on_disconnect(self[, reason])`` and ``on_<event>(self,
    *args)``; a return value becomes the ack.
    """

    def is_asyncio_based(self) -> bool:
        return True

    async def trigger_event(self, event: str, *args: Any) -> Any:
        return await settle(self._dispatch(event, args))

    async def emit(self, event: str, data: Any = None, namespace: str | None = None,
                   callback: Callable | None = None) -> None:
        return await self.client.emit(event, data=data, namespace=namespace or self.namespace, callback=callback)

    async def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> None:
        return await self.client.send(data, namespace=namespace or self.namespace, callback=callback)

    async def call(self, event: str, data: Any = None, namespace: str | None = None,
                   timeout: float | None = None) -> Any:
        return await self.client.call(event, data=data, namespace=namespace or self.namespace, timeout=timeout)

    async def disconnect(self) -> None:
        return await self.client.disconnect()
