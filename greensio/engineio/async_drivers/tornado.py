"""tornado for the asyncio Engine.IO server: ``get_tornado_handler(eio)``.

Integration ring.  The handler is a ``tornado.websocket.WebSocketHandler``
subclass using tornado's documented hooks (``get``, ``open``,
``on_message``, ``on_close``, ``check_origin``).  Every request, the
websocket ones too, is routed by the Engine.IO core first: a refused
websocket (a second one for a session, a bad Origin) gets its HTTP answer
before any handshake.  tornado's ``get`` runs the websocket's frame loop
until the connection ends, so the handshake runs in its own task and the
request's ``get`` serves the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import tornado.websocket

from ..._core.eio_http import Response
from . import CLOSE_NORMAL, wsgi_environ


def get_tornado_handler(engineio_server: Any) -> type[tornado.websocket.WebSocketHandler]:
    """A tornado request handler class serving ``engineio_server``; route its path to it."""

    class Handler(tornado.websocket.WebSocketHandler):
        def initialize(self) -> None:
            self.eio_messages: asyncio.Queue = asyncio.Queue()
            self.eio_opened: asyncio.Future | None = None
            self.eio_handshake: asyncio.Future | None = None

        async def get(self, *args: Any, **kwargs: Any) -> None:
            await engineio_server.handle_request(self)
            if self.eio_handshake is not None:
                await self.eio_handshake  # tornado's frame loop, over once the websocket closed

        async def post(self, *args: Any, **kwargs: Any) -> None:
            await engineio_server.handle_request(self)

        put = delete = patch = head = options = post

        async def eio_accept(self) -> bool:
            """Run tornado's websocket handshake; True once the websocket is open."""
            self.eio_opened = asyncio.get_running_loop().create_future()
            self.eio_handshake = asyncio.ensure_future(super().get(*self.path_args, **self.path_kwargs))
            await asyncio.wait([self.eio_opened, self.eio_handshake], return_when=asyncio.FIRST_COMPLETED)
            return self.eio_opened.done()

        def open(self, *args: Any, **kwargs: Any) -> None:
            if self.eio_opened is not None and not self.eio_opened.done():
                self.eio_opened.set_result(None)

        def on_message(self, message: str | bytes) -> None:
            self.eio_messages.put_nowait(message)

        def on_close(self) -> None:
            self.eio_messages.put_nowait(None)

        def check_origin(self, origin: str) -> bool:
            return True  # the Engine.IO core has checked the Origin (cors_allowed_origins)

        def get_compression_options(self) -> dict:
            return {}  # permessage-deflate, as python-engineio's handler offers

    return Handler


async def translate(server: Any, handler: Any) -> TornadoRequest:
    return TornadoRequest(server, handler)


class TornadoRequest:
    __slots__ = ('_environ', 'handler', 'headers', 'method', 'path', 'query', 'scheme', 'server', 'websocket')

    def __init__(self, server: Any, handler: Any) -> None:
        self.server, self.handler = server, handler
        request = handler.request
        self.method = request.method
        self.path = request.path
        self.query = request.query or ''
        self.headers = request.headers  # case-insensitive
        self.scheme = 'https' if request.protocol == 'https' else 'http'
        self.websocket = (request.headers.get('upgrade') or '').lower() == 'websocket'
        self._environ: dict | None = None

    def environ(self) -> dict:
        if self._environ is None:
            request = self.handler.request
            self._environ = wsgi_environ(self.method, self.path, self.query, self.headers.get_all(), self.scheme,
                                         'tornado', (request.remote_ip, 0), **{'tornado.handler': self.handler})
        return self._environ

    async def read_body(self, limit: int) -> bytes:
        return self.handler.request.body[:limit]  # tornado read it whole (its max_body_size bounds it)

    async def respond(self, response: Response) -> None:
        handler = self.handler
        handler.set_status(response.status)
        for name, value in response.headers:
            handler.set_header(name, value)
        if response.close_connection:
            handler.set_header('Connection', 'close')
        handler.write(response.body)
        await handler.finish()

    async def accept_websocket(self, headers: list[tuple[str, str]]) -> TornadoWebSocket | None:
        if not await self.handler.eio_accept():
            return None
        return TornadoWebSocket(self.handler)

    async def refuse_websocket(self, response: Response) -> None:
        await self.respond(response)

    def result(self) -> None:
        return None


class TornadoWebSocket:
    __slots__ = ('handler',)

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def receive(self) -> str | bytes | None:
        return await self.handler.eio_messages.get()

    async def send(self, message: str | bytes) -> None:
        await self.handler.write_message(message, binary=type(message) is not str)

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        with contextlib.suppress(Exception):
            self.handler.close(code)
