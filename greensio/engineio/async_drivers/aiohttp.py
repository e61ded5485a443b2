"""aiohttp for the asyncio Engine.IO server (``eio.attach(app)``).

Integration ring: an ``aiohttp.web.Request`` behind the driver seam
described in ``async_drivers``.  Every HTTP method is routed to the server,
so the ones Engine.IO does not use get the spec's 400 rather than
aiohttp's 405.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType, web

from ..._core.eio_http import Response
from . import CLOSE_NORMAL, wsgi_environ


def create_route(app: web.Application, engineio_server: Any, engineio_endpoint: str) -> None:
    app.router.add_route('*', engineio_endpoint, engineio_server.handle_request)


async def translate(server: Any, request: web.Request) -> AiohttpRequest:
    return AiohttpRequest(server, request)


def _response(response: Response) -> web.Response:
    answer = web.Response(body=response.body, status=response.status, headers=response.headers)
    if response.close_connection:
        answer.force_close()
    return answer


class AiohttpRequest:
    __slots__ = ('_environ', '_result', 'headers', 'method', 'path', 'query', 'request', 'scheme', 'server',
                 'websocket')

    def __init__(self, server: Any, request: web.Request) -> None:
        self.server, self.request = server, request
        self.method = request.method
        self.path = request.path
        self.query = request.query_string or ''
        self.headers = request.headers  # case-insensitive: get('origin') finds Origin
        self.scheme = 'https' if request.secure else 'http'
        self.websocket = (request.headers.get('upgrade') or '').lower() == 'websocket'
        self._environ: dict | None = None
        self._result: Any = None

    def environ(self) -> dict:
        if self._environ is None:
            peer = self.request.transport.get_extra_info('peername') if self.request.transport else None
            self._environ = wsgi_environ(self.method, self.path, self.query, self.headers.items(), self.scheme,
                                         'aiohttp', peer, **{'aiohttp.request': self.request})
        return self._environ

    async def read_body(self, limit: int) -> bytes:
        content = self.request.content
        body = b''
        while len(body) < limit:
            chunk = await content.read(limit - len(body))
            if not chunk:
                break
            body += chunk
        return body

    async def respond(self, response: Response) -> web.Response:
        return _response(response)

    async def accept_websocket(self, headers: list[tuple[str, str]]) -> AiohttpWebSocket:
        # aiohttp refuses an oversize message from its frame header (close code 1009)
        ws = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size)
        for name, value in headers:
            ws.headers.add(name, value)
        await ws.prepare(self.request)
        self._result = ws
        return AiohttpWebSocket(ws)

    async def refuse_websocket(self, response: Response) -> web.Response:
        return _response(response)

    def result(self) -> Any:
        return self._result


class AiohttpWebSocket:
    __slots__ = ('ws',)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def receive(self) -> str | bytes | None:
        msg = await self.ws.receive()
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            return msg.data
        return None

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        await self.ws.close(code=code)
