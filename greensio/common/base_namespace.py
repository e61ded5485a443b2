"""What the class-based namespaces of both runtimes share, and their docstrings.

Shell ring, runtime-neutral.  A namespace routes event ``x`` to its method
``on_x`` and offers the server's (or client's) methods with ``namespace``
defaulting to its own; ``green.namespace`` and ``aio.async_namespace`` add
only how the calls are made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core.handlers import call_trimmed
from .twins import SharedDocs

#: Handlers whose last argument is optional (python-socketio accepts both forms).
_OPTIONAL_LAST_ARG = {'connect': 1, 'disconnect': 1}


class BaseNamespace(SharedDocs):
    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or '/'

    def is_asyncio_based(self) -> bool:
        """``True`` for the asyncio twins."""
        return False

    def _handler_for(self, event: str) -> Callable[..., Any] | None:
        return getattr(self, 'on_' + (event or ''), None)


class BaseServerNamespace(BaseNamespace):
    """What :class:`Namespace` and :class:`AsyncNamespace` share, and their docstrings."""

    def __init__(self, namespace: str | None = None) -> None:
        super().__init__(namespace)
        self.server: Any = None

    def _set_server(self, server: Any) -> None:
        self.server = server

    def _dispatch(self, event: str, args: tuple) -> Any:
        handler = self._handler_for(event)
        if handler is None:
            return None
        return call_trimmed(handler, args, _OPTIONAL_LAST_ARG.get(event, 0))

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Dispatch an event to its ``on_<event>`` method (override to customise).

        Unknown events are ignored (an ack, if requested, carries nothing).
        In an :class:`AsyncNamespace` the methods may be plain or coroutines.
        """
        raise NotImplementedError

    def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False,
             *, timeout: float | None = None) -> Any:
        """Emit an event; ``namespace`` defaults to this one (see :meth:`greensio.Server.emit`)."""
        raise NotImplementedError

    def fetch_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                      timeout: float = 5) -> Any:
        """The clients of this namespace on every worker (see :meth:`greensio.Server.fetch_sockets`)."""
        return self.server.fetch_sockets(to, namespace=namespace or self.namespace, skip=skip, timeout=timeout)

    def sockets_join(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        """See :meth:`greensio.Server.sockets_join`; ``namespace`` defaults to this one."""
        return self.server.sockets_join(room, to=to, namespace=namespace or self.namespace, skip=skip)

    def sockets_leave(self, room: Any, to: Any = None, namespace: str | None = None, skip: Any = None) -> Any:
        """See :meth:`greensio.Server.sockets_leave`; ``namespace`` defaults to this one."""
        return self.server.sockets_leave(room, to=to, namespace=namespace or self.namespace, skip=skip)

    def disconnect_sockets(self, to: Any = None, namespace: str | None = None, skip: Any = None,
                           close: bool = False) -> Any:
        """See :meth:`greensio.Server.disconnect_sockets`; ``namespace`` defaults to this one."""
        return self.server.disconnect_sockets(to=to, namespace=namespace or self.namespace, skip=skip, close=close)

    def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
             namespace: str | None = None, callback: Callable | None = None, ignore_queue: bool = False) -> Any:
        """Send a ``message`` event (see :meth:`greensio.Server.send`)."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, to: str | None = None, sid: str | None = None,
             namespace: str | None = None, timeout: float | None = None, ignore_queue: bool = False) -> Any:
        """Emit to one client and wait for its ack (see :meth:`greensio.Server.call`).

        ``timeout=None``, the default here as in python-socketio, waits for ever.
        """
        raise NotImplementedError

    def enter_room(self, sid: str, room: Any, namespace: str | None = None) -> Any:
        """Put a client in a room."""
        raise NotImplementedError

    def leave_room(self, sid: str, room: Any, namespace: str | None = None) -> Any:
        """Take a client out of a room."""
        raise NotImplementedError

    def close_room(self, room: Any, namespace: str | None = None) -> Any:
        """Take every client out of a room."""
        raise NotImplementedError

    def get_session(self, sid: str, namespace: str | None = None) -> Any:
        """The user session of a client (a dict)."""
        raise NotImplementedError

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> Any:
        """Replace the user session of a client."""
        raise NotImplementedError

    def session(self, sid: str, namespace: str | None = None) -> Any:
        """A context manager that reads and saves the session (``async with`` in an :class:`AsyncNamespace`)."""
        return self.server.session(sid, namespace=namespace or self.namespace)

    def disconnect(self, sid: str, namespace: str | None = None) -> Any:
        """Disconnect a client from this namespace."""
        raise NotImplementedError

    def rooms(self, sid: str, namespace: str | None = None) -> list:
        """Rooms the client is in, including the room named by its sid."""
        return self.server.rooms(sid, namespace=namespace or self.namespace)


class BaseClientNamespace(BaseNamespace):
    """What :class:`ClientNamespace` and :class:`AsyncClientNamespace` share, and their docstrings."""

    def __init__(self, namespace: str | None = None) -> None:
        super().__init__(namespace)
        self.client: Any = None

    def _set_client(self, client: Any) -> None:
        self.client = client

    def _dispatch(self, event: str, args: tuple) -> Any:
        handler = self._handler_for(event)
        if handler is None:
            return None
        return call_trimmed(handler, args, 1 if event == 'disconnect' else 0)

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Dispatch an event to its ``on_<event>`` method (override to customise)."""
        raise NotImplementedError

    def emit(self, event: str, data: Any = None, namespace: str | None = None, callback: Callable | None = None) -> Any:
        """Emit an event to the server; see :meth:`greensio.Client.emit`."""
        raise NotImplementedError

    def send(self, data: Any, namespace: str | None = None, callback: Callable | None = None) -> Any:
        """Send a ``message`` event."""
        raise NotImplementedError

    def call(self, event: str, data: Any = None, namespace: str | None = None, timeout: float | None = None) -> Any:
        """Emit and wait for the server's ack; ``timeout=None`` waits for ever (python-socketio's default here)."""
        raise NotImplementedError

    def disconnect(self) -> Any:
        """Disconnect the whole client from the server."""
        raise NotImplementedError

