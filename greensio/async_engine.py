"""Engine.IO for the asyncio server: python-engineio's ``AsyncServer``, corrected.

Shell ring, the asyncio twin of ``engine.py``.  python-engineio carries the
transports here (ASGI under uvicorn in greensio's tests; greensio's own
websocket read/write path is gevent-only).  ``AsyncEngineServer`` and
``AsyncGreenSocket`` fix the same Engine.IO v4 defects that ``engine.py``
fixes on the green side, with the same pure helpers (``_core.eio``):

- a sub-second ``ping_interval`` was advertised as 0 (``eio.handshake``);
- a POST was answered ``OK`` instead of ``ok``; JSONP bodies escaped only
  double quotes (``eio.ok_response``);
- a POST of more than 16 packets was dropped while the server answered OK;
  a malformed POST was answered OK and the session kept (``eio.decode_payload``,
  and the session ends);
- a request without ``transport`` was taken for polling;
- an oversize POST was answered 400 only after reading the body (a chunked
  one was buffered whole); it is answered 413 from the headers and the
  connection dropped;
- the client's UPGRADE packet was answered with a stray NOOP, and so was a
  probe when no poll was pending;
- a second concurrent polling GET was left waiting (the spec ends the session);
- closing a session waited for its queue to drain (for ever when nobody
  polled), left a pending poll waiting, and a websocket closed by the
  server stayed open until its writer timed out;
- a peer silent past the heartbeat was reported as ``transport close``
  rather than ``ping timeout``.

Incoming websocket messages larger than ``max_http_buffer_size`` close the
connection, but the ASGI server has read them by then: give uvicorn
``ws_max_size`` (at most ``max_http_buffer_size``) to refuse them from the
frame header.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import logging
import time
import urllib.parse
from typing import Any

import engineio
from engineio import async_socket
from engineio import exceptions as eio_exc

from ._core import eio
from ._core.eio import CLOSE, MESSAGE, NOOP, OPEN, PING, PONG
from ._core.websocket import CLOSE_TOO_BIG
from .engine import OutPacket

logger = logging.getLogger('greensio.engine')


class _MessageTooBig(Exception):
    pass


class AsyncGreenSocket(async_socket.AsyncSocket):
    """One Engine.IO connection of the asyncio server."""

    def __init__(self, server: AsyncEngineServer, sid: str) -> None:
        super().__init__(server, sid)
        self.server: AsyncEngineServer = server
        self._polling = False  # a GET is waiting for packets
        self._websocket: Any = None  # set while a websocket carries the session
        self._heartbeat_holds = 0  # readers of this peer the server has paused
        self._held_ping: asyncio.TimerHandle | None = None

    def hold_heartbeat(self, held: bool) -> None:
        """Say that the server stops (``True``) or resumes reading this peer (as ``GreenSocket``'s)."""
        self._heartbeat_holds += 1 if held else -1
        if held and self._heartbeat_holds == 1:
            self._held_ping = asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_held)
        elif not self._heartbeat_holds:
            if self._held_ping is not None:
                self._held_ping.cancel()
                self._held_ping = None
            if self.last_ping:
                self.last_ping = time.time()

    def _ping_held(self) -> None:
        # the peer's PONGs may be unread: without pings it would time the server out
        if self._heartbeat_holds and not self.closed:
            self.send_nowait(OutPacket(PING))
            self._held_ping = asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_held)

    async def check_ping_timeout(self) -> bool:
        # held: the peer's PONG may be waiting, unread, behind its other packets
        if self._heartbeat_holds and not self.closed:
            return True
        return await super().check_ping_timeout()

    def send_nowait(self, pkt: Any) -> None:
        """Queue a packet without awaiting (the queue is unbounded: ``put`` never waits)."""
        if not self.closed:
            self.queue.put_nowait(pkt)

    async def receive(self, pkt: Any) -> None:
        await self.receive_packet(pkt.packet_type, pkt.data)

    async def receive_packet(self, packet_type: int, data: str | bytes) -> None:
        if packet_type == MESSAGE:
            await self.server.message_handler(self.sid, data)
        elif packet_type == PONG:
            self.schedule_ping()
        elif packet_type == CLOSE:
            await self.close(wait=False, abort=True, reason=self.server.reason.CLIENT_DISCONNECT)
        # UPGRADE: nothing to answer (python-engineio sent a stray NOOP);
        # PING/NOOP from a v4 client carry no meaning: ignored

    async def handle_get_request(self, environ: dict) -> Any:
        connections = [s.strip() for s in environ.get('HTTP_CONNECTION', '').lower().split(',')]
        if 'upgrade' in connections and environ.get('HTTP_UPGRADE', '').lower() == 'websocket':
            return await self._upgrade_websocket(environ)
        if self.upgrading or self.upgraded:
            return [OutPacket(NOOP)]
        if self._polling:
            # spec: a second concurrent GET is an error that ends the session
            self.server.logger.warning('%s: overlapping polling GET, closing session', self.sid)
            await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise eio_exc.EngineIOError('overlapping GET')
        self._polling = True
        try:
            return await self.poll()
        except eio_exc.QueueEmpty:
            await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise
        finally:
            self._polling = False

    async def handle_post_request(self, environ: dict) -> None:
        limit = self.server.max_http_buffer_size
        body = await environ['wsgi.input'].read(limit + 1)  # bounded even when chunked
        if len(body) > limit:
            raise eio_exc.ContentTooLongError()
        try:
            packets = eio.decode_payload(body.decode('utf-8'))
        except (ValueError, UnicodeDecodeError) as exc:
            self.server.logger.warning('%s: malformed polling payload (%s), closing session', self.sid, exc)
            raise eio_exc.EngineIOError(str(exc)) from None
        for packet_type, data in packets:
            if self.closed:
                break
            await self.receive_packet(packet_type, data)

    async def close(self, wait: bool = True, abort: bool = False, reason: str | None = None) -> None:
        # never wait for the queue to drain: nobody may be polling
        await super().close(wait=False, abort=abort, reason=reason)
        # release a waiting poll (python-engineio's asyncio socket left it
        # waiting for ping_interval + ping_timeout) or the websocket writer,
        # which sends what is queued, then closes the websocket
        self.queue.put_nowait(None)

    async def _websocket_handler(self, ws: Any) -> None:
        """The websocket transport: upgrade handshake, then a reader here and a writer task."""
        server = self.server
        limit = server.max_http_buffer_size

        async def next_message() -> str | bytes | None:
            data = await ws.wait()
            if data is not None and len(data) > limit:
                raise _MessageTooBig()
            return data

        if self.connected and not await self._probe(ws, next_message):
            server.logger.info('%s: websocket upgrade failed', self.sid)
            return
        self.connected = self.upgraded = True
        self._websocket = ws
        writer = asyncio.ensure_future(self._write_loop(ws))
        reason = server.reason.TRANSPORT_CLOSE
        try:
            reason = await self._read_loop(next_message) or reason
        finally:
            self.queue.put_nowait(None)
            await writer
            self._websocket = None
            await self.close(wait=False, abort=True, reason=reason)

    async def _probe(self, ws: Any, next_message: Any) -> bool:
        """The polling → websocket upgrade handshake (2probe / 3probe / 5)."""
        self.upgrading = True
        try:
            if await next_message() != '2probe':
                return False
            await ws.send('3probe')
            if self._polling:
                # release the pending poll; with none pending a queued NOOP
                # would reach the websocket as a stray packet after the upgrade
                self.queue.put_nowait(OutPacket(NOOP))
            return await next_message() == '5'
        except (OSError, _MessageTooBig):
            return False
        finally:
            self.upgrading = False

    async def _read_loop(self, next_message: Any) -> str | None:
        """Read until the peer goes; returns the disconnect reason when it is not a transport close."""
        server = self.server
        timeout = server.ping_interval + server.ping_timeout
        while not self.closed:
            try:
                msg = await asyncio.wait_for(next_message(), timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - not the builtin before Python 3.11
                # silent past ping interval + timeout: python-socketio reports
                # a dead peer as a ping timeout, not as a transport close
                return server.reason.PING_TIMEOUT
            except _MessageTooBig:
                server.logger.warning('%s: websocket message too big, closing', self.sid)
                await _close_websocket(self._websocket, CLOSE_TOO_BIG)
                return server.reason.TRANSPORT_ERROR
            except OSError:
                return None
            if msg is None:
                return None
            try:
                if isinstance(msg, str):
                    if msg[:1] == '4':
                        await server.message_handler(self.sid, msg[1:])
                    elif msg and msg[0] in '123456':
                        await self.receive_packet(int(msg[0]), msg[1:])
                    else:
                        server.logger.warning('%s: invalid Engine.IO packet, closing', self.sid)
                        return server.reason.TRANSPORT_ERROR
                else:
                    await server.message_handler(self.sid, msg)
            except Exception:
                server.logger.exception('%s: message handler error', self.sid)
        return None

    async def _write_loop(self, ws: Any) -> None:
        try:
            while True:
                try:
                    packets = await self.poll()
                except eio_exc.QueueEmpty:
                    break
                if not packets:  # None queued: the session is over
                    break
                for pkt in packets:
                    await ws.send(pkt.encode())
        except Exception:  # noqa: BLE001, S110 - the peer went away mid-write; the reader sees it too
            pass
        # a raise here would make the handler skip closing the session
        with contextlib.suppress(Exception):  # closed already: by the peer, or by the reader with a code
            await ws.close()


class AsyncEngineServer(engineio.AsyncServer):
    """python-engineio's asyncio server with greensio's corrections (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs['async_handlers'] = False  # Socket.IO dispatches handlers itself
        self.mode_detected = kwargs.get('async_mode') is None and not args
        if self.mode_detected:
            # python-engineio's detection picks 'sanic' even when sanic is not
            # installed (its driver module imports anyway): detect by the
            # frameworks themselves, in python-engineio's order
            kwargs['async_mode'] = detect_async_mode()
        super().__init__(*args, **kwargs)
        self.message_handler: Any = None
        self._set_driver(self._async)

    def _set_driver(self, driver: dict) -> None:
        # translate the request once, here, so the spec checks see it first;
        # python-engineio then gets the translated environ as is
        self._translate_request = driver['translate_request']
        self._async = dict(driver, translate_request=_already_translated)

    def switch_async_mode(self, mode: str) -> None:
        """Serve through another asyncio integration than the detected one (before serving).

        ``ASGIApp`` does this for a server created without ``async_mode``
        when aiohttp (detected first, as in python-socketio) is installed too.
        """
        self._set_driver(importlib.import_module('engineio.async_drivers.' + mode)._async)
        self.async_mode = mode

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        if self.async_mode == 'asgi':
            scope = args[0]
            if scope['type'] == 'http' and scope.get('method') == 'POST':
                # from the headers, before anything awaits the body
                length = _asgi_content_length(scope)
                if length is not None and length > self.max_http_buffer_size:
                    environ = {'REQUEST_METHOD': 'POST', 'asgi.scope': scope, 'asgi.send': args[2]}
                    return await self._too_large(scope.get('query_string', b'').decode('latin-1'), environ)
        environ = self._translate_request(*args, **kwargs)
        if inspect.isawaitable(environ):
            environ = await environ
        if not environ:  # the client went away before its request arrived
            return None
        method = environ.get('REQUEST_METHOD')
        if method in ('GET', 'POST'):
            query_string = environ.get('QUERY_STRING', '')
            if not eio.has_transport(query_string):
                return await self._make_response(self._bad_request('Transport unknown'), environ)
            length = _content_length(environ.get('CONTENT_LENGTH'))
            if method == 'POST' and length is not None and length > self.max_http_buffer_size:
                return await self._too_large(query_string, environ)
        return await super().handle_request(environ)

    async def _too_large(self, query_string: str, environ: dict) -> Any:
        """Answer an oversize POST at once, end its session and drop the TCP connection."""
        sid = urllib.parse.parse_qs(query_string).get('sid', [None])[0]
        socket = self.sockets.get(sid)
        if socket is not None:
            self.logger.warning('%s: polling POST over maxPayload, closing session', sid)
            await socket.close(wait=False, reason=self.reason.TRANSPORT_ERROR)
            self.sockets.pop(sid, None)
        response = {'status': '413 Payload Too Large', 'response': b'Payload Too Large',
                    'headers': [('Content-Type', 'text/plain'), ('Connection', 'close')]}
        return await self._make_response(response, environ)

    async def disconnect(self, sid: str | None = None) -> None:
        sockets = [self.sockets.get(sid)] if sid is not None else list(self.sockets.values())
        for s in sockets:
            if s is not None:
                await s.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
                self.sockets.pop(s.sid, None)

    def _ok(self, packets: list | None = None, headers: list | None = None, jsonp_index: int | None = None) -> dict:
        encoded = None if packets is None else [p.encode(b64=True) for p in packets]
        return eio.ok_response(encoded, headers, jsonp_index)

    async def _handle_connect(self, environ: dict, transport: str, jsonp_index: int | None = None) -> Any:
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        s = AsyncGreenSocket(self, sid)
        self.sockets[sid] = s
        s.send_nowait(OutPacket(OPEN, eio.handshake(
            sid, self._upgrades(sid, transport), self.ping_interval, self.ping_interval_grace_period,
            self.ping_timeout, self.max_http_buffer_size)))
        ret = await self._trigger_event('connect', sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            self.logger.warning('Application rejected connection')
            return self._unauthorized(ret or None)
        s.schedule_ping()
        if transport == 'websocket':
            ret = await s.handle_get_request(environ)
            if s.closed:
                self.sockets.pop(sid, None)
            return ret
        s.connected = True
        attributes = eio.cookie_attributes(self.cookie)
        headers = [('Set-Cookie', self._generate_sid_cookie(sid, attributes))] if attributes else None
        try:
            return self._ok(await s.poll(), headers=headers, jsonp_index=jsonp_index)
        except eio_exc.QueueEmpty:
            return self._bad_request()


def detect_async_mode() -> str:
    """The first of python-engineio's asyncio modes whose web framework is installed."""
    for mode in ('aiohttp', 'sanic', 'tornado'):
        if importlib.util.find_spec(mode) is not None:
            return mode
    return 'asgi'


async def _close_websocket(ws: Any, code: int) -> None:
    """Close with a status code where the driver allows it (python-engineio's ASGI one does not)."""
    send = getattr(ws, 'asgi_send', None)
    if send is None:
        await ws.close()
        return
    try:
        await send({'type': 'websocket.close', 'code': code})
    except Exception:  # noqa: BLE001, S110 - already closed
        pass


def _already_translated(environ: dict) -> dict:
    return environ


def _asgi_content_length(scope: dict) -> int | None:
    for name, value in scope.get('headers', ()):
        if name.lower() == b'content-length':
            return _content_length(value)
    return None


def _content_length(value: Any) -> int | None:
    """A peer's Content-Length, or None when absent or not a number (the body read stays bounded)."""
    try:
        return int(value) if value else None
    except ValueError:
        return None
