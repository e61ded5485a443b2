"""Class-based namespaces for the green server (``socketio.Namespace``).

Shell ring.  A ``Namespace`` routes event ``x`` to its method ``on_x`` and
offers the server's methods with ``namespace`` defaulting to its own.  The
docstrings live on ``BaseServerNamespace``, shared with ``AsyncNamespace``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..common.base_namespace import BaseClientNamespace, BaseServerNamespace


class Namespace(BaseServerNamespace):
    """Base class for class-based namespaces of a :class:`greensio.Server`.

    Methods named ``on_<event>`` handle ``<event>``: ``on_connect(self, sid,
    environ[, auth])``, ``on_disconnect(self, sid[, reason])`` and
    ``on_<event>(self, sid, *args)``; a return value becomes the ack.
    """

    def trigger_event(self, event: str, *args: Any) -> Any:
        return self._dispatch(event, args)

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False,
             *, timeout: float | None = None) -> None:
        return self.server.emit(event, data=data, to=to, room=room, skip_sid=skip_sid,
                                namespace=namespace or self.namespace, callback=callback,
                                ignore_queue=ignore_queue, timeout=timeout)

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> None:
        return self.server.send(data, to=to, room=room, skip_sid=skip_sid,
                                namespace=namespace or self.namespace, callback=callback,
                                ignore_queue=ignore_queue)

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = None, ignore_queue: bool = False) -> Any:
        return self.server.call(event, data=data, to=to, sid=sid,
                                namespace=namespace or self.namespace, timeout=timeout,
                                ignore_queue=ignore_queue)

    def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        return self.server.enter_room(sid, room, namespace=namespace or self.namespace)

    def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> None:
        return self.server.leave_room(sid, room, namespace=namespace or self.namespace)

    def close_room(self, room: Any, namespace: str | None = None) -> None:
        return self.server.close_room(room, namespace=namespace or self.namespace)

    def get_session(self, sid: str, namespace: str | None = None) -> dict:
        return self.server.get_session(sid, namespace=namespace or self.namespace)

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        return self.server.save_session(sid, session, namespace=namespace or self.namespace)

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        return self.server.disconnect(sid, namespace=namespace or self.namespace)


class ClientNamespace(BaseClientNamespace):
    """Base class for class-based namespaces of a :class:`greensio.Client`.

    Methods named ``on_<event>`` handle ``<event>``: ``on_connect(self)``,
    ``on_connect_error(self, data)``, ``on_disconnect(self[, reason])`` and
    ``on_<event>(self, *args)``; a return value becomes the ack.  The
    client's methods are offered with ``namespace`` defaulting to this one.
    """

    def trigger_event(self, event: str, *args: Any) -> Any:
        return self._dispatch(event, args)

    def emit(self, event: str, data: Any = None, namespace: str | None = None,
             callback: Callable | None = None) -> None:
        return self.client.emit(event, data=data, namespace=namespace or self.namespace, callback=callback)

    def send(self, data: Any, room: Any = None, namespace: str | None = None,
             callback: Callable | None = None) -> None:
        """Send a ``message`` event (``room`` is accepted and ignored, as in python-socketio)."""
        return self.client.send(data, namespace=namespace or self.namespace, callback=callback)

    def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = None) -> Any:
        return self.client.call(event, data=data, namespace=namespace or self.namespace, timeout=timeout)

    def disconnect(self) -> None:
        return self.client.disconnect()
