"""Long-polling requests served straight from greensio's server keep the WSGI path's HTTP semantics.

greensio.serving answers polling GET/POST for an existing session without
building a WSGI environ (the Engine.IO core decides them as it decides WSGI
requests); these tests pin the parts of the response that path writes
itself: CORS headers, compression, keep-alive, errors, and that an Origin
gets the full check (a refused one: 403, the spec's "Forbidden").
"""

import gzip
import http.client
import json
import re
import socket as socketlib

import pytest
import rawclient

import greensio

pytestmark = pytest.mark.timeout(30)


def _server(**options):
    sio = greensio.Server(**options)
    sio.on('echo', lambda sid, data: data)
    sio.on('big', lambda sid: sio.emit('big', 'x' * 4000, to=sid))
    return sio


def _connected_session(url):
    session = rawclient.PollingSession(url)
    session.sio_connect()
    return session


def test_cors_any_origin_and_credentials(serve):
    url = serve(_server(cors_allowed_origins='*'))
    session = _connected_session(url)
    r = rawclient.post(url, session.params, '42["echo",1]', headers={'Origin': 'http://elsewhere.example'})
    assert (r.status, r.text) == (200, 'ok')
    assert r.headers['access-control-allow-origin'] == 'http://elsewhere.example'
    assert r.headers['access-control-allow-credentials'] == 'true'
    assert 'date' in r.headers and r.headers['content-length'] == '2'


def ordinary_path(sio):
    """The query strings of the requests that take the WSGI path (the direct path skips it)."""
    seen = []
    handle = sio.eio.handle_request

    def recording(environ, start_response):
        seen.append(environ.get('QUERY_STRING', ''))
        return handle(environ, start_response)

    sio.eio.handle_request = recording
    return seen


@pytest.mark.parametrize('allowed', ['http://good.example', ['http://other.example', 'http://good.example']])
def test_origin_allow_list_is_checked_on_the_fast_path(serve, allowed):
    sio = _server(cors_allowed_origins=allowed)
    url = serve(sio)
    session = _connected_session(url)
    ordinary = ordinary_path(sio)
    good = rawclient.post(url, session.params, '42["echo",1]', headers={'Origin': 'http://good.example'})
    assert good.status == 200
    assert good.headers['access-control-allow-origin'] == 'http://good.example'
    assert ordinary == []  # an allowed origin is served by the fast path
    bad = rawclient.post(url, session.params, '42["echo",2]', headers={'Origin': 'http://evil.example'})
    assert bad.status == 403 and 'access-control-allow-origin' not in bad.headers
    assert ordinary == []  # refused on the direct path too


def test_same_origin_default_on_the_fast_path(serve):
    sio = _server()  # cors_allowed_origins=None: only the server's own origin
    url = serve(sio)
    session = _connected_session(url)
    ordinary = ordinary_path(sio)
    host = url.split('://', 1)[1]
    own = rawclient.post(url, session.params, '42["echo",1]', headers={'Origin': url})
    assert own.status == 200 and own.headers['access-control-allow-origin'] == url
    assert ordinary == []
    for origin, headers in [('http://evil.example', {}), ('https://' + host, {}),
                            (url, {'X-Forwarded-Host': 'proxy.example'})]:  # engineio weighs proxy headers
        r = rawclient.post(url, session.params, '42["echo",2]', headers={'Origin': origin, **headers})
        assert r.status == (200 if headers else 403), origin
    assert ordinary == []


def test_a_callable_allow_list_takes_the_wsgi_path(serve):
    sio = _server(cors_allowed_origins=lambda origin: origin == 'http://good.example')
    url = serve(sio)
    session = _connected_session(url)
    ordinary = ordinary_path(sio)
    assert rawclient.post(url, session.params, '42["echo",1]', headers={'Origin': 'http://good.example'}).status == 200
    assert rawclient.post(url, session.params, '42["echo",2]', headers={'Origin': 'http://evil.example'}).status == 403
    assert len(ordinary) == 2  # the callable may take the environ


def test_cors_disabled_sends_no_cors_headers(serve):
    url = serve(_server(cors_allowed_origins=[]))
    session = _connected_session(url)
    r = rawclient.post(url, session.params, '42["echo",1]', headers={'Origin': 'http://any.example'})
    assert r.status == 200
    assert not [h for h in r.headers if h.startswith('access-control')]


def test_large_poll_response_is_compressed(serve):
    url = serve(_server())
    session = _connected_session(url)
    session.send('42["big"]')
    r = rawclient.get(url, session.params, headers={'Accept-Encoding': 'gzip'})
    assert r.status == 200 and r.headers['content-encoding'] == 'gzip'
    assert gzip.decompress(r.body).decode() == '42["big","' + 'x' * 4000 + '"]'


def test_keep_alive_and_connection_close(serve):
    url = serve(_server())
    session = _connected_session(url)
    port = url.rsplit(':', 1)[1]
    conn = http.client.HTTPConnection('127.0.0.1', int(port), timeout=5)
    try:
        path = rawclient.eio_path(session.params)
        for n in range(3):  # several requests on one kept-alive connection
            conn.request('POST', path, body=f'42{n}["echo",{n}]')
            assert conn.getresponse().read() == b'ok'
            conn.request('GET', path)
            assert conn.getresponse().read().decode() == f'43{n}[{n}]'
        conn.request('POST', path, body='42["echo",9]', headers={'Connection': 'close'})
        response = conn.getresponse()
        assert response.getheader('connection') == 'close' and response.read() == b'ok'
        assert conn.sock is None or conn.sock.recv(1) == b''  # the server hung up
    finally:
        conn.close()


def test_malformed_post_closes_the_session(serve):
    url = serve(_server())
    session = _connected_session(url)
    r = rawclient.post(url, session.params, b'\xff\xfe not utf-8')
    assert r.status == 400 and json.loads(r.body)['code'] == 3  # the spec's "Bad request"
    assert rawclient.get(url, session.params).status == 400


def test_an_origin_with_a_carriage_return_is_never_echoed(serve):
    url = serve(_server(cors_allowed_origins='*'))
    session = _connected_session(url)
    port = int(url.rsplit(':', 1)[1])
    with socketlib.create_connection(('127.0.0.1', port), timeout=5) as sock:
        path = rawclient.eio_path(session.params)
        body = b'42["echo",1]'
        sock.sendall(b'POST ' + path.encode() + b' HTTP/1.1\r\nHost: x\r\nOrigin: http://a\rInjected: 1\r\n'
                     b'Content-Length: ' + str(len(body)).encode() + b'\r\nConnection: close\r\n\r\n' + body)
        response = b''
        while chunk := sock.recv(65536):
            response += chunk
    head = response.split(b'\r\n\r\n')[0]
    assert not [line for line in re.split(rb'[\r\n]+', head) if line.startswith(b'Injected')], head


def test_access_log_goes_to_the_servers_log_and_only_there(capfd):
    import io

    import gevent

    log = io.StringIO()
    server = greensio.make_server(greensio.WSGIApp(_server()), '127.0.0.1', 0, log=log)
    quiet = greensio.make_server(greensio.WSGIApp(_server()), '127.0.0.1', 0)  # log=None: no access log
    server.start()
    quiet.start()
    try:
        for srv in (server, quiet):
            session = _connected_session(f'http://127.0.0.1:{srv.server_port}')
            session.send('42["echo",1]')  # served by the fast path
        gevent.sleep(0.05)
    finally:
        server.stop(timeout=1)
        quiet.stop(timeout=1)
    lines = log.getvalue().splitlines()
    # the handshake (ordinary path), the namespace connect and the event (fast path)
    assert len(lines) >= 3 and all('"GET /socket.io/' in line or '"POST /socket.io/' in line for line in lines)
    assert any('POST /socket.io/?EIO=4&transport=polling&sid=' in line and ' 200 2 ' in line for line in lines)
    assert 'socket.io' not in capfd.readouterr().err  # nothing reached stderr from either server


@pytest.fixture
def short_idle():
    """A server that closes connections idle (or slow to send a request head) for 0.5 s."""
    sio = _server()
    server = greensio.make_server(greensio.WSGIApp(sio), '127.0.0.1', 0, idle_timeout=0.5)
    server.start()
    yield sio, f'http://127.0.0.1:{server.server_port}', server.server_port
    server.stop(timeout=1)


def test_idle_and_trickling_connections_are_closed(short_idle):
    _, url, port = short_idle
    session = _connected_session(url)
    silent = socketlib.create_connection(('127.0.0.1', port), timeout=5)
    half_head = socketlib.create_connection(('127.0.0.1', port), timeout=5)
    half_head.sendall(b'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n')
    half_body = socketlib.create_connection(('127.0.0.1', port), timeout=5)
    half_body.sendall(b'POST ' + rawclient.eio_path(session.params).encode()
                      + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n42["echo",1]')
    try:
        for sock in (silent, half_head, half_body):
            assert rawclient.wait_eof(sock, timeout=3)
    finally:
        for sock in (silent, half_head, half_body):
            sock.close()
    # the session whose POST stalled is still there, and well
    assert session.send('421["echo",2]').status == 200
    assert session.poll_packets() == ['431[2]']


def test_connections_in_use_are_not_cut_by_the_idle_timeout(short_idle):
    import gevent

    sio, url, port = short_idle
    # a kept-alive polling connection: the long poll waits longer than the idle timeout
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    session = _connected_session(url)
    path = rawclient.eio_path(session.params)
    try:
        conn.request('GET', path)
        gevent.sleep(0.8)  # nothing to send yet: the server holds the poll
        sio.emit('late', 'news')
        assert conn.getresponse().read().decode() == '42["late","news"]'
        conn.request('POST', path, body='42["echo",3]')
        assert conn.getresponse().read() == b'ok'
    finally:
        conn.close()
    # a websocket stays open while idle (the heartbeat watches it, not the idle timeout)
    client, _ = rawclient.connect_sio(url)
    try:
        gevent.sleep(0.8)
        client.send_sio('21["echo","still here"]')
        assert client.recv_sio() == '31["still here"]'
    finally:
        client.close()


# -- the drop-in deployment: gevent's pywsgi with gevent-websocket's handler ------------------------


@pytest.fixture
def pywsgi_serve():
    """``pywsgi.WSGIServer(..., handler_class=geventwebsocket.handler.WebSocketHandler)``, python-socketio's way."""
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    servers = []

    def start(app):
        server = pywsgi.WSGIServer(('127.0.0.1', 0), app, handler_class=WebSocketHandler, log=None)
        server.start()
        servers.append(server)
        return server.server_port

    yield start
    for server in servers:
        server.stop(timeout=1)


def _other_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'other ' + environ['PATH_INFO'].encode()]


def test_pywsgi_keeps_serving_polling_on_the_connection_and_hands_back_the_rest(pywsgi_serve):
    sio = _server()
    port = pywsgi_serve(greensio.WSGIApp(sio, _other_app))
    session = _connected_session(f'http://127.0.0.1:{port}')
    ordinary = ordinary_path(sio)
    path = rawclient.eio_path(session.params)
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        for round_ in range(2):
            for n in range(3):
                conn.request('POST', path, body=f'42{n}["echo",{n}]')
                response = conn.getresponse()
                assert response.read() == b'ok' and response.getheader('content-length') == '2'
                conn.request('GET', path)
                assert conn.getresponse().read().decode() == f'43{n}[{n}]'
            # the first polling request of the connection took the WSGI path, the others did not
            assert len(ordinary) == round_ + 1
            # another URL on the same connection reaches the application
            conn.request('GET', '/elsewhere')
            assert conn.getresponse().read() == b'other /elsewhere'
        conn.request('POST', path, body='42["echo",8]')
        assert conn.getresponse().read() == b'ok'
        conn.request('POST', path, body='42["echo",9]', headers={'Connection': 'close'})
        response = conn.getresponse()
        assert response.getheader('connection') == 'close' and response.read() == b'ok'
        assert conn.sock is None or conn.sock.recv(1) == b''  # the server hung up
    finally:
        conn.close()


def _response(sock):
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def test_pywsgi_kept_connection_reads_split_heads_and_refuses_like_the_wsgi_path(pywsgi_serve):
    sio = _server(cors_allowed_origins=lambda origin: origin == 'http://good.example', max_http_buffer_size=100)
    port = pywsgi_serve(greensio.WSGIApp(sio))
    session = _connected_session(f'http://127.0.0.1:{port}')
    ordinary = ordinary_path(sio)
    path = rawclient.eio_path(session.params).encode()
    with socketlib.create_connection(('127.0.0.1', port), timeout=5) as sock:
        sock.sendall(b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n421["echo",1]')
        assert _response(sock) == (200, b'ok')
        # a head that comes in two pieces is read whole
        sock.sendall(b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\n')
        sock.sendall(b'Content-Length: 13\r\n\r\n422["echo",2]')
        assert _response(sock) == (200, b'ok')
        # a callable allow-list sees each request's environ
        sock.sendall(b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n'
                     b'Content-Length: 13\r\n\r\n423["echo",3]')
        assert _response(sock)[0] == 403
        assert len(ordinary) == 3
    with socketlib.create_connection(('127.0.0.1', port), timeout=5) as sock:
        sock.sendall(b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n424["echo",4]')
        assert _response(sock) == (200, b'ok')
        assert session.poll_packets() == ['431[1]', '432[2]', '434[4]']
        # a body over max_http_buffer_size is not read: the connection ends after the refusal
        sock.sendall(b'POST ' + path + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n42')
        assert _response(sock)[0] == 413
        assert rawclient.wait_eof(sock, timeout=3)
        assert len(ordinary) == 5  # the first POST and the poll (its own connection) only


def test_pywsgi_own_handler_logs_the_requests_it_did_not_see():
    import io

    import gevent
    from gevent import pywsgi

    log = io.StringIO()
    sio = _server()
    server = pywsgi.WSGIServer(('127.0.0.1', 0), greensio.WSGIApp(sio), log=log)  # pywsgi's handler: polling only
    server.start()
    try:
        session = _connected_session(f'http://127.0.0.1:{server.server_port}')
        ordinary = ordinary_path(sio)
        conn = http.client.HTTPConnection('127.0.0.1', server.server_port, timeout=5)
        path = rawclient.eio_path(session.params)
        for n in range(3):
            conn.request('POST', path, body=f'42{n}["echo",{n}]')
            assert conn.getresponse().read() == b'ok'
        conn.close()
        gevent.sleep(0.05)  # pywsgi logs the first request once the connection is handed back, here closed
        assert len(ordinary) == 1
    finally:
        server.stop(timeout=1)
    posts = [line for line in log.getvalue().splitlines() if '"POST /socket.io/?EIO=4&transport=polling&sid=' in line]
    assert len(posts) == 4, posts  # the namespace connect, and the three events
    assert len([line for line in posts if ' 200 2 ' in line]) == 2, posts  # pywsgi counts the head in its own


def test_pywsgi_connections_get_tcp_nodelay():
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    accepted = []

    class Recording(WebSocketHandler):
        def handle(self):
            accepted.append(self.socket)
            super().handle()

    server = pywsgi.WSGIServer(('127.0.0.1', 0), greensio.WSGIApp(_server()), handler_class=Recording, log=None)
    server.start()
    try:
        session = _connected_session(f'http://127.0.0.1:{server.server_port}')
        conn = http.client.HTTPConnection('127.0.0.1', server.server_port, timeout=5)
        conn.request('POST', rawclient.eio_path(session.params), body='421["echo",1]')
        assert conn.getresponse().read() == b'ok'
        # pywsgi writes a head and its body in two sends: without TCP_NODELAY the body waits for a delayed ACK
        assert accepted[-1].getsockopt(socketlib.IPPROTO_TCP, socketlib.TCP_NODELAY) == 1
        conn.close()
    finally:
        server.stop(timeout=1)
