"""ASGI (uvicorn, hypercorn, daphne) for the asyncio Engine.IO server.

Integration ring: the ASGI messages of one request, behind the driver seam
described in ``async_drivers``.  A refused websocket gets its HTTP answer
where the server offers the ``websocket.http.response`` extension (uvicorn
does), else a close before the handshake (HTTP 403).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..._core.eio_http import Response
from . import CLOSE_NORMAL, wsgi_environ


async def translate(server: Any, scope: dict, receive: Any, send: Any) -> AsgiRequest | None:
    return AsgiRequest(scope, receive, send)


def _headers(response: Response) -> list[tuple[bytes, bytes]]:
    headers = [(name.encode('latin-1'), value.encode('latin-1')) for name, value in response.headers]
    if response.close_connection:
        headers.append((b'connection', b'close'))
    return headers


class AsgiRequest:
    __slots__ = ('_environ', 'headers', 'method', 'path', 'query', 'receive', 'scheme', 'scope', 'send',
                 'websocket')

    def __init__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.websocket = scope['type'] == 'websocket'
        self.method = 'GET' if self.websocket else scope['method']
        self.path = scope['path']
        self.query = scope.get('query_string', b'').decode('latin-1')
        headers: dict[str, str] = {}
        for name, value in scope['headers']:
            key = name.decode('latin-1').lower()
            text = value.decode('latin-1')
            headers[key] = f'{headers[key]},{text}' if key in headers else text
        self.headers = headers
        scheme = scope.get('scheme', 'http')
        self.scheme = 'https' if scheme in ('https', 'wss') else 'http'
        self._environ: dict | None = None

    def environ(self) -> dict:
        if self._environ is None:
            self._environ = wsgi_environ(
                self.method, self.path, self.query, self.headers.items(), self.scheme, 'asgi', self.scope.get('client'),
                **{'asgi.receive': self.receive, 'asgi.send': self.send, 'asgi.scope': self.scope})
        return self._environ

    async def read_body(self, limit: int) -> bytes:
        body = b''
        while True:
            event = await self.receive()
            if event['type'] != 'http.request':
                raise ConnectionError('the client went away inside its request body')
            if len(body) < limit:
                body += event.get('body', b'')
            if not event.get('more_body'):
                return body[:limit]
            if len(body) >= limit:
                return body[:limit]

    async def respond(self, response: Response) -> None:
        await self.send({'type': 'http.response.start', 'status': response.status, 'headers': _headers(response)})
        await self.send({'type': 'http.response.body', 'body': response.body})

    async def accept_websocket(self, headers: list[tuple[str, str]]) -> AsgiWebSocket | None:
        event = await self.receive()
        if event['type'] != 'websocket.connect':
            return None
        encoded = [(name.encode('latin-1'), value.encode('latin-1')) for name, value in headers]
        await self.send({'type': 'websocket.accept', 'headers': encoded})
        return AsgiWebSocket(self.receive, self.send)

    async def refuse_websocket(self, response: Response) -> None:
        event = await self.receive()
        if event['type'] != 'websocket.connect':
            return
        if 'websocket.http.response' in self.scope.get('extensions', {}):
            await self.send({'type': 'websocket.http.response.start', 'status': response.status,
                             'headers': _headers(response)})
            await self.send({'type': 'websocket.http.response.body', 'body': response.body})
        else:
            await self.send({'type': 'websocket.close', 'code': 1008})

    def result(self) -> None:
        return None


class AsgiWebSocket:
    __slots__ = ('_closed', '_receive', '_send')

    def __init__(self, receive: Any, send: Any) -> None:
        self._receive, self._send = receive, send
        self._closed = False

    async def receive(self) -> str | bytes | None:
        event = await self._receive()
        if event['type'] != 'websocket.receive':
            self._closed = True
            return None
        text = event.get('text')
        return text if text is not None else event.get('bytes')

    async def send(self, message: str | bytes) -> None:
        if type(message) is str:
            await self._send({'type': 'websocket.send', 'text': message})
        else:
            await self._send({'type': 'websocket.send', 'bytes': message})

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self._send({'type': 'websocket.close', 'code': code})
