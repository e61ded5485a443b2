"""Raw Engine.IO / Socket.IO clients for hostile and conformance tests.

Real clients refuse to send malformed input, so these helpers speak the wire
protocols by hand: HTTP long-polling over ``http.client`` (one fresh TCP
connection per request unless told otherwise), and a websocket client on a
plain socket that performs the RFC 6455 handshake itself and can then write
any bytes at all (a frame header declaring 1 GiB, unmasked frames, reserved
bits...).  Server frames are decoded here with a few lines of independent
code rather than greensio's own parser, so a parser bug cannot hide itself.

Every blocking call takes a timeout; nothing waits forever.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP = '0123456'
RECORD_SEP = '\x1e'
WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

DEFAULT_TIMEOUT = 5.0


# -- HTTP long-polling -----------------------------------------------------------


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode('utf-8')


def _split(base_url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(base_url)
    return parts.hostname or '127.0.0.1', parts.port or 80


def eio_path(params: dict[str, Any], path: str = '/socket.io/') -> str:
    return path + '?' + urllib.parse.urlencode(params)


def request(
    base_url: str,
    method: str,
    params: dict[str, Any],
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    path: str = '/socket.io/',
) -> HttpResult:
    """One HTTP request on its own connection; the connection is closed after."""
    host, port = _split(base_url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode('utf-8')
        hdrs = {'Content-Type': 'text/plain;charset=UTF-8'} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, eio_path(params, path), body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def get(base_url: str, params: dict[str, Any], **kwargs: Any) -> HttpResult:
    return request(base_url, 'GET', params, **kwargs)


def post(base_url: str, params: dict[str, Any], body: bytes | str, **kwargs: Any) -> HttpResult:
    return request(base_url, 'POST', params, body=body, **kwargs)


def encode_payload(packets: list[str]) -> str:
    """Engine.IO v4 polling payload: text packets joined by the record separator."""
    return RECORD_SEP.join(packets)


def decode_payload(text: str) -> list[str]:
    return text.split(RECORD_SEP) if text else []


def polling_handshake(base_url: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """Open an Engine.IO session over polling; return ``(sid, open_packet_fields)``."""
    r = get(base_url, {'EIO': 4, 'transport': 'polling', **extra})
    if r.status != 200:
        raise AssertionError(f'handshake failed: {r.status} {r.body!r}')
    first = decode_payload(r.text)[0]
    if first[:1] != EIO_OPEN:
        raise AssertionError(f'expected an OPEN packet, got {first!r}')
    fields = json.loads(first[1:])
    return fields['sid'], fields


class PollingSession:
    """An Engine.IO session driven by hand over HTTP long-polling."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sid, self.open = polling_handshake(base_url)

    @property
    def params(self) -> dict[str, Any]:
        return {'EIO': 4, 'transport': 'polling', 'sid': self.sid}

    def send(self, *packets: str | bytes, timeout: float = DEFAULT_TIMEOUT) -> HttpResult:
        """POST text packets (bytes are sent as they are: raw bodies for malformed input)."""
        if len(packets) == 1 and isinstance(packets[0], bytes):
            return post(self.base_url, self.params, packets[0], timeout=timeout)
        return post(self.base_url, self.params, encode_payload(list(packets)), timeout=timeout)  # type: ignore[arg-type]

    def poll(self, timeout: float = DEFAULT_TIMEOUT) -> HttpResult:
        return get(self.base_url, self.params, timeout=timeout)

    def poll_packets(self, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        r = self.poll(timeout)
        if r.status != 200:
            raise AssertionError(f'poll failed: {r.status} {r.body!r}')
        return decode_payload(r.text)

    def sio_connect(self, namespace: str = '/', timeout: float = DEFAULT_TIMEOUT) -> str:
        """Join a Socket.IO namespace; return the Socket.IO sid."""
        prefix = '' if namespace == '/' else namespace + ','
        assert self.send('40' + prefix).status == 200
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pkt in self.poll_packets(timeout):
                if pkt.startswith('40' + prefix):
                    return json.loads(pkt[2 + len(prefix) :])['sid']
                if pkt == EIO_PING:
                    self.send(EIO_PONG)
        raise AssertionError('no CONNECT answer')


# -- websocket ------------------------------------------------------------------


def build_frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    mask: bool = True,
    rsv: int = 0,
    declared_length: int | None = None,
) -> bytes:
    """Any websocket frame, valid or not; ``declared_length`` lies about the size."""
    n = len(payload) if declared_length is None else declared_length
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((b0, mask_bit | n))
    elif n < 65536:
        header = struct.pack('!BBH', b0, mask_bit | 126, n)
    else:
        header = struct.pack('!BBQ', b0, mask_bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


class ConnectionClosed(Exception):
    """The server ended the TCP connection."""


class RawWebSocket:
    """A websocket client on a plain TCP socket, with no opinion on validity."""

    def __init__(self, base_url: str, params: dict[str, Any], timeout: float = DEFAULT_TIMEOUT,
                 path: str = '/socket.io/') -> None:
        host, port = _split(base_url)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buf = bytearray()
        self.close_code: int | None = None
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f'GET {eio_path(params, path)} HTTP/1.1\r\n'
                f'Host: {host}:{port}\r\n'
                'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'
            ).encode()
        )
        head = self._read_until(b'\r\n\r\n')
        status_line, *header_lines = head.decode('latin-1').split('\r\n')
        if ' 101 ' not in status_line + ' ':
            raise AssertionError(f'websocket upgrade refused: {status_line}')
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(':', 1) for h in header_lines if ':' in h)}
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get('sec-websocket-accept') != expected:
            raise AssertionError('bad Sec-WebSocket-Accept')

    # -- reading ----------------------------------------------------------------

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError('websocket read timed out')
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError('websocket read timed out') from None
        except ConnectionResetError:
            data = b''
        if not data:
            raise ConnectionClosed()
        self._buf += data

    def _read_until(self, marker: bytes) -> bytes:
        deadline = time.monotonic() + self.timeout
        while marker not in self._buf:
            self._fill(deadline)
        end = self._buf.index(marker)
        head = bytes(self._buf[:end])
        del self._buf[: end + len(marker)]
        return head

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def recv_frame(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next frame as ``(opcode, payload)``; raises ConnectionClosed at EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        b0, b1 = self._read_exact(2, deadline)
        if b1 & 0x80:
            raise AssertionError('server frames must not be masked')
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack('!H', self._read_exact(2, deadline))
        elif n == 127:
            (n,) = struct.unpack('!Q', self._read_exact(8, deadline))
        payload = self._read_exact(n, deadline)
        if not b0 & 0x80:
            raise AssertionError('this helper does not expect fragmented server frames')
        return b0 & 0x0F, payload

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next data message (text as str); a close frame raises ConnectionClosed."""
        while True:
            opcode, payload = self.recv_frame(timeout)
            if opcode == OP_TEXT:
                return payload.decode('utf-8')
            if opcode == OP_BINARY:
                return payload
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else 1005
                raise ConnectionClosed()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> list[str | bytes]:
        """Read until the server ends the TCP connection; return messages seen meanwhile.

        Raises TimeoutError if the connection is still open after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        seen: list[str | bytes] = []
        while True:
            try:
                seen.append(self.recv(timeout=max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                break
        # after a close frame, the TCP stream itself must end too
        while True:
            try:
                self._fill(deadline)
                self._buf.clear()
            except ConnectionClosed:
                return seen

    # -- writing ----------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes, **kwargs: Any) -> None:
        self.sock.sendall(build_frame(opcode, payload, **kwargs))

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.send_frame(OP_TEXT, message.encode('utf-8'))
        else:
            self.send_frame(OP_BINARY, message)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RawSioClient(RawWebSocket):
    """A websocket-only Engine.IO + Socket.IO client that does the handshakes by hand.

    ``emit`` writes exactly what it is given after the Engine.IO ``4``, so
    tests can send any Socket.IO packet text.  PINGs are answered while
    reading (pass ``answer_pings=False`` to play a dead client).
    """

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT, answer_pings: bool = True,
                 sid: str | None = None) -> None:
        params: dict[str, Any] = {'EIO': 4, 'transport': 'websocket'}
        if sid is not None:
            params['sid'] = sid
        super().__init__(base_url, params, timeout)
        self.answer_pings = answer_pings
        self.open: dict[str, Any] | None = None
        if sid is None:
            first = super().recv()
            assert isinstance(first, str) and first[:1] == EIO_OPEN, first
            self.open = json.loads(first[1:])

    def recv(self, timeout: float | None = None) -> str | bytes:
        while True:
            msg = super().recv(timeout)
            if msg == EIO_PING and self.answer_pings:
                self.send(EIO_PONG)
                continue
            return msg

    def send_sio(self, text: str) -> None:
        self.send(EIO_MESSAGE + text)

    def recv_sio(self, timeout: float | None = None) -> str | bytes:
        """The next Socket.IO packet (text without the Engine.IO ``4``, or binary)."""
        msg = self.recv(timeout)
        if isinstance(msg, str):
            if msg[:1] != EIO_MESSAGE:
                raise AssertionError(f'expected an Engine.IO MESSAGE, got {msg!r}')
            return msg[1:]
        return msg

    def connect_namespace(self, namespace: str = '/', auth: Any = None) -> str:
        prefix = '' if namespace == '/' else namespace + ','
        self.send_sio('0' + prefix + (json.dumps(auth) if auth is not None else ''))
        answer = self.recv_sio()
        assert isinstance(answer, str) and answer.startswith('0' + prefix), answer
        return json.loads(answer[1 + len(prefix) :])['sid']


def connect_sio(base_url: str, namespace: str = '/', **kwargs: Any) -> tuple[RawSioClient, str]:
    client = RawSioClient(base_url, **kwargs)
    return client, client.connect_namespace(namespace)


def read_http_response(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    """Read a raw HTTP response's head from ``sock``: (status, bytes read so far)."""
    deadline = time.monotonic() + timeout
    data = b''
    while b'\r\n\r\n' not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b' ', 2)[1]), data


def wait_eof(sock: socket.socket, timeout: float) -> bool:
    """True once the peer ends the connection (EOF or reset) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def open_fds() -> int:
    """How many file descriptors this process holds (the server runs in-process)."""
    return len(os.listdir('/proc/self/fd'))


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def wait_until(predicate: Any, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return bool(value)
        time.sleep(interval)
