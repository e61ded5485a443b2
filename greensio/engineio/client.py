"""The synchronous Engine.IO client (``engineio.Client``): requests and websocket-client around the core.

Shell ring.  ``greensio._core.eio_client.EngineClient`` decides; this module
moves bytes.  It uses the ``threading`` module, so it runs on green threads
once gevent has monkey-patched the process and on OS threads otherwise.

A connection has two threads.  The reader long-polls (one GET at a time) or
reads the websocket, feeds the core and hands messages to the ``message``
handler outside the lock; its read timeout is the heartbeat deadline the
core keeps, so a silent server is noticed at ``pingInterval + pingTimeout``
after its last PING, never later.  The writer sends what the core queued:
POST bodies batched by the server's ``maxPayload`` (and at most 16 packets,
which python-engineio servers require), or websocket messages.  The upgrade
probe runs inside ``connect()``, before either starts, as in python-engineio.
Whoever sees the connection end first (the reader, or ``disconnect()``)
reports it, once.
"""

from __future__ import annotations

import base64
import logging
import queue
import signal
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from .._core.eio_client import CLOSED, EngineClient
from .._core.eio_codec import CLOSE_PACKET, OutPacket
from .._core.handlers import call_trimmed
from . import exceptions
from .base_client import MIN_WAIT, BaseClient, Inbox

try:
    import requests
except ImportError:  # no 'client' extra: only the websocket transport works
    requests = None  # type: ignore[assignment]
try:
    import websocket
except ImportError:  # no 'client' extra: only long-polling works
    websocket = None  # type: ignore[assignment]

#: Long waits wake at least this often: CPython runs a signal handler only in the
#: main thread, and a SIGINT the kernel delivers to another thread cannot
#: interrupt the main thread's untimed lock wait, so Ctrl-C would go unseen.
SIGNAL_CHECK_SECONDS = 1.0
#: How long ``disconnect()`` waits for the connection's threads (a server that
#: keeps a long-polling GET after the CLOSE holds the reader until then).
JOIN_SECONDS = 10.0

# Clients with a connection; Ctrl-C disconnects them (handle_sigint).
_connected: set[Client] = set()
_previous_sigint: Any = None


def _sigint(signum: int, frame: Any) -> Any:
    for client in list(_connected):
        client.disconnect()
    if callable(_previous_sigint):
        return _previous_sigint(signum, frame)
    return signal.default_int_handler(signum, frame)


def wait_event(event: Any, timeout: float | None = None) -> bool:
    """``event.wait(timeout)`` in slices of ``SIGNAL_CHECK_SECONDS``; True once the event is set."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            step = SIGNAL_CHECK_SECONDS
        else:
            step = min(deadline - time.monotonic(), SIGNAL_CHECK_SECONDS)
            if step <= 0:
                return event.is_set()
        if event.wait(step):
            return True


class _Link:
    """One connection: its core and what the threads share, under one lock."""

    __slots__ = ('core', 'http', 'idle', 'inbox', 'lock', 'reader', 'url', 'wake', 'writer', 'ws', 'ws_out')

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.inbox = Inbox(self._woken)
        self.idle = True  # the writer has sent everything queued
        self.core: EngineClient = None  # type: ignore[assignment]
        self.ws: Any = None
        self.ws_out: list[OutPacket] = []  # websocket packets for the writer
        self.http: Any = None  # this connection's HTTP session: its threads outlive a disconnect(abort=True)
        self.url = ''  # the long-polling URL, with the session id
        self.reader: Any = None
        self.writer: Any = None

    def _woken(self) -> None:
        self.idle = False
        self.wake.notify_all()


class Client(BaseClient):
    """An Engine.IO client; drop-in for ``engineio.Client``.

    :param logger: ``True`` logs at INFO, ``False`` (default) only errors,
        or pass a :class:`logging.Logger`.
    :param json: an alternative JSON module for lists and dicts (process-wide).
    :param request_timeout: seconds for each HTTP request and the websocket's
        opening (default 5).
    :param http_session: a ``requests.Session`` (or a callable returning
        one) for proxies, certificates, cookies, authentication.
    :param ssl_verify: ``False`` accepts servers with self-signed certificates.
    :param handle_sigint: Ctrl-C disconnects every connected client, then
        runs the previous SIGINT handler (installed once, from the main thread).
    :param websocket_extra_options: keyword arguments for
        ``websocket.create_connection()``; they take precedence.
    :param timestamp_requests: add a ``t=`` cache buster to each request.
    """

    def __init__(self, logger: Any = False, json: Any = None, request_timeout: float = 5, http_session: Any = None,
                 ssl_verify: bool = True, handle_sigint: bool = True, websocket_extra_options: dict | None = None,
                 timestamp_requests: bool = True) -> None:
        global _previous_sigint
        if handle_sigint and _previous_sigint is None and threading.current_thread() is threading.main_thread():
            _previous_sigint = signal.signal(signal.SIGINT, _sigint)
        super().__init__(logger, json, request_timeout, http_session, ssl_verify, handle_sigint,
                         websocket_extra_options, timestamp_requests)
        self._link: _Link | None = None
        self._ended = threading.Event()  # set while no connection runs
        self._ended.set()

    # -- the public API (docstrings on BaseClient) ---------------------------------------------------

    def connect(self, url: str, headers: dict | None = None, transports: Any = None,
                engineio_path: str = 'engine.io') -> bool:
        if self.state != 'disconnected':
            raise ValueError('Client is not in a disconnected state')
        transports = self._valid_transports(transports)
        headers = dict(headers or {})
        link = _Link()
        link.core = core = self._new_core(transports, link.inbox)
        self._link = link
        self._ended.clear()
        try:
            if transports[0] == 'polling':
                self._open_polling(link, url, headers, engineio_path)
            else:
                self._open_websocket(link, url, headers, engineio_path)
            self.state = 'connected'
            _connected.add(self)
            try:
                self._trigger_event('connect', reraise=True)
            except Exception as exc:
                raise exceptions.ConnectionError(f'Connect handler failed: {exc}') from exc
            self._deliver(link.inbox.take())
            if core.upgrade_possible():
                self._upgrade(link, url, headers, engineio_path)
        except BaseException:
            self._teardown(link)
            raise
        link.writer = self.write_loop_task = self.start_background_task(self._write_loop, link)
        link.reader = self.read_loop_task = self.start_background_task(self._read_loop, link)
        return True

    def wait(self) -> None:
        wait_event(self._ended)

    def send(self, data: Any) -> None:
        link = self._link
        if link is None or self.state != 'connected':
            return
        packet = self._packet(data)
        with link.lock:
            if link.core.send(packet):
                link.ws_out.append(packet)
                link.wake.notify()

    def disconnect(self, abort: bool = False, reason: str | None = None) -> None:
        link = self._link
        if link is None:
            self._reset()
            return
        with link.lock:
            if not abort and link.writer is not None and link.core.transport == 'polling':
                # what is queued goes first, in POSTs of its own, as engine.io-client does: a
                # server may act on the CLOSE before the packets that share its payload
                deadline = time.monotonic() + self.request_timeout
                while not link.idle and self.state == 'connected' and time.monotonic() < deadline:
                    link.wake.wait(deadline - time.monotonic())
            mine = self.state == 'connected'
            if mine:
                self.state = 'disconnecting'
                link.core.close()  # polling: the writer POSTs the CLOSE; websocket: it writes it
                link.wake.notify_all()
        if not mine:
            if self.state == 'disconnected':
                self._reset()
            return
        self._trigger_event('disconnect', reason or self.reason.CLIENT_DISCONNECT)
        if not abort:
            me = threading.current_thread()
            for thread in (link.writer, link.reader):
                if thread is not None and thread is not me:
                    thread.join(JOIN_SECONDS)
        self._teardown(link)

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float = 0) -> None:
        time.sleep(seconds)

    def create_queue(self, *args: Any, **kwargs: Any) -> queue.Queue:
        return queue.Queue(*args, **kwargs)

    def get_queue_empty_exception(self) -> type[BaseException]:
        return queue.Empty

    def create_event(self, *args: Any, **kwargs: Any) -> threading.Event:
        return threading.Event(*args, **kwargs)

    # -- opening ------------------------------------------------------------------------------------

    def _session(self, link: _Link) -> Any:
        if link.http is None:
            if self.http is None:
                self.http = self.http_factory() if self.http_factory else requests.Session()
            link.http = self.http
        return link.http

    def _request(self, link: _Link, method: str, url: str, headers: dict | None = None, body: bytes | None = None,
                 timeout: float | None = None) -> Any:
        """A requests response, or the error as a string."""
        options: dict[str, Any] = {'headers': headers, 'data': body, 'timeout': timeout}
        if not self.ssl_verify:
            options['verify'] = False
        try:
            return self._session(link).request(method, url, **options)
        except requests.exceptions.RequestException as exc:
            self.logger.info('HTTP %s request to %s failed with error %s.', method, url, exc)
            return str(exc) or type(exc).__name__

    def _open_polling(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        if requests is None:
            raise exceptions.ConnectionError('long-polling needs the requests package')
        core = link.core
        self.base_url = self._url(core, url, engineio_path, 'polling')
        self.logger.info('Attempting polling connection to %s', self.base_url)
        r = self._request(link, 'GET', self.base_url + self._timestamp(), headers=headers,
                          timeout=self.request_timeout)
        if isinstance(r, str):
            raise exceptions.ConnectionError(r or 'Connection refused by the server')
        if not 200 <= r.status_code < 300:
            try:
                detail = r.json()
            except ValueError:
                detail = None
            raise self._handshake_refused(r.status_code, detail)
        with link.lock:
            self._accept(core, r.content, time.monotonic())
        self.base_url = link.url = self._url(core, url, engineio_path, 'polling')

    def _open_websocket(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        if websocket is None:
            raise exceptions.ConnectionError('the websocket transport needs the websocket-client package')
        core = link.core
        self.base_url = self._url(core, url, engineio_path, 'websocket')
        self.logger.info('Attempting WebSocket connection to %s', self.base_url)
        ws = self._websocket(link, self.base_url, headers)
        if ws is None:
            raise exceptions.ConnectionError('Connection error')
        link.ws = self.ws = ws
        try:
            answer = ws.recv()
        except (websocket.WebSocketException, OSError) as exc:
            raise exceptions.ConnectionError(f'Unexpected recv exception: {exc}') from None
        with link.lock:
            self._accept(core, answer, time.monotonic())

    def _websocket(self, link: _Link, url: str, headers: dict) -> Any:
        """A websocket-client connection with the HTTP session's cookies, auth, certificate and proxy."""
        headers = dict(headers)
        options: dict[str, Any] = {}
        cookies = None
        if link.http is None and (self.http is not None or self.http_factory):
            self._session(link)
        http = link.http
        if http is not None:
            parts = [f'{cookie.name}={cookie.value}' for cookie in http.cookies]
            for name in list(headers):
                if name.lower() == 'cookie':
                    parts.append(headers.pop(name))
                    break
            cookies = '; '.join(parts) or None
            if 'Authorization' not in headers and http.auth is not None:
                if not isinstance(http.auth, tuple):
                    raise ValueError('Only basic authentication is supported')
                basic = base64.b64encode(f'{http.auth[0]}:{http.auth[1]}'.encode()).decode()
                headers['Authorization'] = 'Basic ' + basic
            sslopt: dict[str, Any] = {}
            if isinstance(http.cert, tuple):
                sslopt.update(certfile=http.cert[0], keyfile=http.cert[1])
            elif http.cert:
                sslopt['certfile'] = http.cert
            if isinstance(http.verify, str):
                sslopt['ca_certs'] = http.verify
            elif not http.verify:
                self.ssl_verify = False
            if sslopt:
                options['sslopt'] = sslopt
            proxy = None
            if http.proxies:
                proxy = (http.proxies.get('ws', http.proxies.get('http')) if url.startswith('ws://')
                         else http.proxies.get('wss', http.proxies.get('https')))
            if proxy:
                parsed = urllib.parse.urlparse(proxy if '://' in proxy else 'scheme://' + proxy)
                options.update(http_proxy_host=parsed.hostname, http_proxy_port=parsed.port,
                               http_proxy_auth=((parsed.username, parsed.password)
                                                if parsed.username or parsed.password else None))
        if not self.ssl_verify:
            options.setdefault('sslopt', {})['cert_reqs'] = ssl.CERT_NONE
        extra = dict(self.websocket_extra_options)
        headers.update(extra.pop('header', {}))
        options.update(header=headers, cookie=cookies, enable_multithread=True, timeout=self.request_timeout)
        options.update(extra)  # the caller's options take precedence
        try:
            return websocket.create_connection(url + self._timestamp(), **options)
        except (ConnectionError, OSError, websocket.WebSocketException) as exc:
            self.logger.info('WebSocket connection to %s failed: %s', url, exc)
            return None

    def _upgrade(self, link: _Link, url: str, headers: dict, engineio_path: str) -> None:
        """The upgrade probe, before the reader and writer start: no GET or POST is in flight."""
        core = link.core
        ws_url = self._url(core, url, engineio_path, 'websocket')
        self.logger.info('Attempting WebSocket upgrade to %s', ws_url)
        ws = self._websocket(link, ws_url, headers)
        if ws is None:
            self.logger.warning('WebSocket upgrade failed: connection error')
            return
        try:
            with link.lock:
                probe = core.start_probe()
            ws.send(probe.message())
            reply = ws.recv()
            with link.lock:
                packets = core.finish_upgrade() if core.receive_probe(reply) and core.upgrade_ready else None
            if packets is None:
                self.logger.warning('WebSocket upgrade failed: no PONG packet')
                ws.close()
                return
            link.ws = self.ws = ws
            self.current_transport = 'websocket'
            for packet in packets:
                self._ws_write(ws, packet)
        except (websocket.WebSocketException, OSError) as exc:
            with link.lock:
                if core.transport == 'websocket':  # upgraded: the websocket is the connection now
                    core.transport_failed()
                else:  # the probe failed: carry on over long-polling
                    core.abort_probe()
            self.logger.warning('WebSocket upgrade failed: %s', exc)
            if link.ws is not ws:  # once upgraded, the reader owns it (and finds it broken)
                ws.shutdown()
            return
        self.logger.info('WebSocket upgrade was successful')

    # -- the reader ---------------------------------------------------------------------------------

    def _read_loop(self, link: _Link) -> None:
        try:
            if link.core.transport == 'websocket':
                self._read_websocket(link)
            else:
                self._read_polling(link)
        finally:
            with link.lock:
                link.core.transport_failed()  # a no-op unless the loop ended on its own
                link.wake.notify_all()  # the writer ends too
                mine = self._link is link and self.state == 'connected'
                if mine:
                    self.state = 'disconnecting'
            if link.writer is not threading.current_thread():
                link.writer.join(JOIN_SECONDS)
            if link.ws is not None:
                link.ws.shutdown()  # the reader owns the websocket: others only wake it
            if mine:
                self.logger.info('Engine.IO connection ended: %s', link.inbox.reason)
                self._trigger_event('disconnect', link.inbox.reason or self.reason.TRANSPORT_ERROR)
                self._teardown(link)
            self._close_http(link)

    def _read_polling(self, link: _Link) -> None:
        core = link.core
        while True:
            with link.lock:
                if not core.may_poll():
                    return
                core.poll_started()
                timeout = max(core.deadline - time.monotonic(), MIN_WAIT)
            r = self._request(link, 'GET', link.url + self._timestamp(), timeout=timeout)
            with link.lock:
                now = time.monotonic()
                if isinstance(r, str) or not 200 <= r.status_code < 300:
                    core.handle_deadline(now)
                    self.logger.warning('polling request failed: %s', r if isinstance(r, str) else r.status_code)
                    core.transport_failed()
                else:
                    binary = r.headers.get('Content-Type') == 'application/octet-stream'
                    core.receive_poll(r.content, now, binary=binary)
                messages = link.inbox.take()
            if messages:
                self._deliver(messages)

    def _read_websocket(self, link: _Link) -> None:
        core, ws, lock = link.core, link.ws, link.lock
        raw, handler = self._raw_messages, self.handlers.get('message')
        while core.state != CLOSED:
            try:
                ws.settimeout(max(core.deadline - time.monotonic(), MIN_WAIT))
                msg = ws.recv()
            except websocket.WebSocketTimeoutException:
                with lock:
                    core.handle_deadline(time.monotonic())
                continue
            except Exception as exc:  # noqa: BLE001 - websocket-client's errors, OSError, a socket closed under it
                if core.state != CLOSED:
                    self.logger.info('WebSocket connection was closed: %s', exc or type(exc).__name__)
                return
            if msg == '':  # websocket-client's answer to a close frame
                return
            with lock:
                data = core.receive_ws(msg, time.monotonic())
            if data is not None:
                if raw and handler is not None:
                    handler(data)
                else:
                    self._deliver([data])

    def _deliver(self, messages: list[str | bytes]) -> None:
        handler = self.handlers.get('message')
        if handler is None:
            return
        if self._raw_messages:
            for data in messages:
                handler(data)
            return
        for data in messages:  # python-engineio's way: a background task each
            self.start_background_task(self._trigger_event, 'message', self._user_data(data))

    # -- the writer ---------------------------------------------------------------------------------

    def _write_loop(self, link: _Link) -> None:
        core = link.core
        websocket_ = core.transport == 'websocket'  # fixed for the writer's life: upgrades happen before
        packets: list[OutPacket] = []
        body: str | None = None
        while True:
            with link.lock:
                while True:
                    if websocket_:
                        packets = core.take_ws_packets()
                        if link.ws_out:
                            packets += link.ws_out
                            link.ws_out = []
                        if packets or core.state == CLOSED:
                            break
                    else:
                        body = core.take_post_body()
                        if body is not None:
                            break
                        if core.state == CLOSED:
                            return
                        link.idle = True
                        link.wake.notify_all()  # a disconnect() waiting for the flush
                    link.wake.wait()
                closing = core.state == CLOSED
            if websocket_:
                if not self._write_websocket(link, packets, closing):
                    return
            elif body is not None:
                r = self._request(link, 'POST', link.url, body=body.encode('utf-8'),
                                  headers={'Content-Type': 'text/plain;charset=UTF-8'}, timeout=self.request_timeout)
                ok = not isinstance(r, str) and 200 <= r.status_code < 300
                if not ok and not closing:
                    self.logger.warning('polling POST failed: %s', r if isinstance(r, str) else r.status_code)
                with link.lock:
                    core.post_done(ok)

    def _write_websocket(self, link: _Link, packets: list[OutPacket], closing: bool) -> bool:
        """Write ``packets``; once the connection ended, the CLOSE too if it was ours, then wake the reader."""
        ws = link.ws
        try:
            for packet in packets:
                self._ws_write(ws, packet)
            if not closing:
                return True
            if link.inbox.reason == self.reason.CLIENT_DISCONNECT:
                self._ws_write(ws, CLOSE_PACKET)
                ws.send_close()
        except (websocket.WebSocketException, OSError) as exc:
            with link.lock:
                if link.core.state != CLOSED:
                    self.logger.warning('WebSocket write failed: %s', exc or type(exc).__name__)
                link.core.transport_failed()
        ws.abort()  # nothing more to read: the reader ends and closes it
        return False

    @staticmethod
    def _ws_write(ws: Any, packet: OutPacket) -> None:
        if packet.binary:
            ws.send_binary(packet.message())
        else:
            ws.send(packet.message())

    # -- handlers and the end ---------------------------------------------------------------------------

    def _trigger_event(self, event: str, *args: Any, reraise: bool = False) -> Any:
        handler = self.handlers.get(event)
        if handler is None:
            return None
        try:
            if event == 'disconnect':  # the reason is optional (legacy handlers take none)
                return call_trimmed(handler, args, 1)
            return handler(*args)
        except Exception:
            self.logger.exception('%s handler error', event)
            if reraise:
                raise
            return None

    def _teardown(self, link: _Link) -> None:
        """The connection is over: forget it (unless a new one started meanwhile)."""
        if link.reader is None:  # connect() failed: no reader owns them
            if link.ws is not None:
                link.ws.shutdown()
            self._close_http(link)
        if self._link is not link:
            return
        _connected.discard(self)
        if not self.external_http:
            self.http = None  # the next connection gets a new one; the reader closes this one
        self._link = None
        self.ws = None
        self._reset()
        self._ended.set()

    def _close_http(self, link: _Link) -> None:
        if link.http is not None and not self.external_http:
            link.http.close()
        link.http = None

    def _reset(self) -> None:
        super()._reset()
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug('Engine.IO client reset')
