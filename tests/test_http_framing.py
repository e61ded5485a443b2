"""A request whose body length is in doubt is answered and its connection closed.

When a request's framing is faulty (Content-Length and Transfer-Encoding
together, a duplicated or malformed Content-Length, a bad chunk, a body
shorter than announced) a proxy in front and the server may disagree on
where the request ends, and what one takes for body the other serves as a
second request: request smuggling (RFC 9112, section 6.3).  The server must
answer and close the connection, so nothing after the faulty request is ever
served.  Both deployments are checked: greensio's own server
(``greensio.make_server``) and the drop-in one, gevent's ``WSGIServer`` with
gevent-websocket's handler around ``greensio.WSGIApp``.
"""

from __future__ import annotations

import socket as socketlib
import time

import gevent
import pytest
import rawclient
from e2e_helpers import DEPLOYMENTS, start_server

import greensio

pytestmark = pytest.mark.timeout(30)

#: a second request hidden after the faulty one: served, it would open a session
SMUGGLED = b'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n'


class Deployment:
    def __init__(self, kind: str) -> None:
        self.sio = sio = greensio.Server()
        self.handled: list[str] = []
        sio.on('echo', lambda sid, data: self.handled.append(data))
        self.server = start_server(greensio.WSGIApp(sio), kind)
        self.port = self.server.server_port
        self.url = f'http://127.0.0.1:{self.port}'

    def session_path(self) -> bytes:
        """The polling path of a fresh, connected Socket.IO session."""
        session = rawclient.PollingSession(self.url)
        session.sio_connect()
        self.session = session
        return rawclient.eio_path(session.params).encode()

    def exchange(self, data: bytes, half_close: bool = False, timeout: float = 3.0) -> tuple[bytes, bool]:
        """Send ``data`` on a new connection; return what came back and whether the server hung up."""
        received = b''
        with socketlib.create_connection(('127.0.0.1', self.port), timeout=timeout) as sock:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socketlib.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    return received, False
                except ConnectionResetError:
                    return received, True
                if not chunk:
                    return received, True
                received += chunk
        return received, False


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request):
    d = Deployment(request.param)
    yield d
    d.server.stop(timeout=1)


def assert_refused_and_closed(received: bytes, closed: bool) -> None:
    assert received.startswith(b'HTTP/1.1 400 '), received
    assert received.count(b'HTTP/1.1 ') == 1, received  # nothing served after it
    assert closed, received


def post(path: bytes, headers: bytes, body: bytes) -> bytes:
    return b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\n' + headers + b'\r\n' + body


@pytest.mark.parametrize('live_session', [True, False], ids=['session', 'handshake'])
def test_content_length_with_chunked_is_refused_and_closed(deployment: Deployment, live_session: bool) -> None:
    path = deployment.session_path() if live_session else b'/socket.io/?EIO=4&transport=polling'
    body = b'0\r\n\r\n'
    request = post(path, b'Content-Length: %d\r\nTransfer-Encoding: chunked\r\n' % len(body), body)
    received, closed = deployment.exchange(request + SMUGGLED)
    assert_refused_and_closed(received, closed)


@pytest.mark.parametrize('headers', [
    b'Content-Length: 0\r\nTransfer-Encoding: gzip, chunked\r\n',  # chunked not alone: length unknown
    b'Content-Length: 0\r\nTransfer-Encoding: identity\r\n',
    b'Content-Length: +0\r\n',  # Python's int() takes these, a proxy may not
    b'Content-Length: 0_0\r\n',
], ids=['te-list', 'te-identity', 'cl-sign', 'cl-underscore'])
def test_faulty_framing_is_refused_and_closed(deployment: Deployment, headers: bytes) -> None:
    received, closed = deployment.exchange(post(deployment.session_path(), headers, b'') + SMUGGLED)
    assert_refused_and_closed(received, closed)
    assert deployment.handled == []


def test_transfer_encoding_in_http_1_0_is_refused_and_closed(deployment: Deployment) -> None:
    # HTTP/1.0 has no Transfer-Encoding: a recipient must treat the framing as faulty
    request = (b'POST ' + deployment.session_path() + b' HTTP/1.0\r\nConnection: keep-alive\r\n'
               b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    received, closed = deployment.exchange(request + SMUGGLED)
    assert_refused_and_closed(received, closed)


def test_a_bad_chunk_is_refused_and_closed(deployment: Deployment) -> None:
    request = post(deployment.session_path(), b'Transfer-Encoding: chunked\r\n', b'zz\r\n42["echo",1]\r\n0\r\n\r\n')
    received, closed = deployment.exchange(request + SMUGGLED)
    assert_refused_and_closed(received, closed)
    assert deployment.handled == []


def test_a_body_shorter_than_announced_is_refused_and_closed(deployment: Deployment) -> None:
    body = b'42["echo","cut"]'
    request = post(deployment.session_path(), b'Content-Length: %d\r\n' % (len(body) + 10), body)
    received, closed = deployment.exchange(request, half_close=True)
    assert_refused_and_closed(received, closed)
    gevent.sleep(0.05)
    assert deployment.handled == []  # the truncated payload was never decoded


# gevent's own header parsing keeps only the first of two Content-Length
# headers and hides the rest from the application; greensio's server sees both.
@pytest.mark.parametrize('lengths', [(b'12', b'0'), (b'0', b'0')], ids=['different', 'same'])
def test_a_duplicated_content_length_is_refused_and_closed(lengths: tuple[bytes, bytes]) -> None:
    d = Deployment('greensio')
    try:
        headers = b''.join(b'Content-Length: %s\r\n' % n for n in lengths)
        received, closed = d.exchange(post(d.session_path(), headers, b'') + SMUGGLED)
        assert_refused_and_closed(received, closed)
    finally:
        d.server.stop(timeout=1)


def test_good_requests_still_share_a_connection(deployment: Deployment) -> None:
    path = deployment.session_path()
    body = b'42["echo",1]'
    first = post(path, b'Content-Length: %d\r\n' % len(body), body)
    second = post(path, b'Content-Length: %d\r\nConnection: close\r\n' % len(body), body)
    received, closed = deployment.exchange(first + second)
    assert received.count(b'HTTP/1.1 200 ') == 2 and closed, received
