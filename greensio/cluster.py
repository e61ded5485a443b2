"""The cluster as one server: remote sockets and partial answers.

Shell ring.  What :meth:`Server.fetch_sockets` returns (``RemoteSocket``,
``AsyncRemoteSocket`` on the asyncio server) and what a request that did not
get every answer in time raises (``BroadcastTimeoutError``).  A remote
socket is a snapshot taken by the worker its client is connected to; its
methods go through the server, so they reach the client wherever it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from . import exceptions


class BroadcastTimeoutError(exceptions.TimeoutError):
    """Not every answer came before the timeout (or a worker died before sending them).

    A :class:`~greensio.exceptions.TimeoutError`, so code written for
    python-socketio's ``call()`` still catches it.

    :ivar answers: the answers that did come, in arrival order.
    :ivar missing: how many are missing: clients that were sent the event
        and did not answer (broadcast acks), or workers that did not answer
        (``fetch_sockets``, server-side emits).
    """

    def __init__(self, answers: list[Any], missing: int) -> None:
        super().__init__(f'{missing} answer(s) missing, {len(answers)} received')
        self.answers = answers
        self.missing = missing


def handshake(environ: dict[str, Any], auth: Any, issued: float) -> dict[str, Any]:
    """A client's handshake as a JSON object, as socket.io's ``socket.handshake``."""
    headers = {key[5:].lower().replace('_', '-'): value for key, value in environ.items()
               if key.startswith('HTTP_') and isinstance(value, str)}
    query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    return {
        'headers': headers,
        'query': query,
        'auth': auth if isinstance(auth, dict) else {},
        'address': environ.get('REMOTE_ADDR', ''),
        'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(issued)),
        'issued': int(issued * 1000),
    }


@dataclass(eq=False)
class RemoteSocket:
    """A client of any worker, as :meth:`Server.fetch_sockets` found it.

    ``rooms``, ``handshake`` (``headers``, ``query``, ``auth``, ``address``,
    ``time``, ``issued`` in ms) and ``data`` (the session keys the client's
    server shares, see ``Server.shared_session_keys``) are a snapshot; the
    methods act on the live client wherever it is connected.
    """

    server: Any = field(repr=False)
    sid: str
    namespace: str
    rooms: list[Any]
    handshake: dict[str, Any]
    data: dict[str, Any]

    @classmethod
    def from_description(cls, server: Any, description: dict[str, Any]) -> RemoteSocket:
        return cls(server, description['sid'], description['namespace'], list(description['rooms']),
                   description['handshake'], description['data'])

    def emit(self, event: str, data: Any = None, callback: Any = None) -> Any:
        return self.server.emit(event, data, to=self.sid, namespace=self.namespace, callback=callback)

    def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        return self.server.call(event, data, to=self.sid, namespace=self.namespace, timeout=timeout)

    def enter_room(self, room: Any) -> Any:
        return self.server.enter_room(self.sid, room, namespace=self.namespace)

    def leave_room(self, room: Any) -> Any:
        return self.server.leave_room(self.sid, room, namespace=self.namespace)

    def disconnect(self) -> Any:
        return self.server.disconnect(self.sid, namespace=self.namespace)


class AsyncRemoteSocket(RemoteSocket):
    """:class:`RemoteSocket` of the asyncio server: the methods are coroutines."""

    async def emit(self, event: str, data: Any = None, callback: Any = None) -> Any:
        return await self.server.emit(event, data, to=self.sid, namespace=self.namespace, callback=callback)

    async def call(self, event: str, data: Any = None, timeout: float | None = 60) -> Any:
        return await self.server.call(event, data, to=self.sid, namespace=self.namespace, timeout=timeout)

    async def enter_room(self, room: Any) -> Any:
        return await self.server.enter_room(self.sid, room, namespace=self.namespace)

    async def leave_room(self, room: Any) -> Any:
        return await self.server.leave_room(self.sid, room, namespace=self.namespace)

    async def disconnect(self) -> Any:
        return await self.server.disconnect(self.sid, namespace=self.namespace)
