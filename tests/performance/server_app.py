"""Benchmark server: the same Socket.IO app on greensio or on python-socketio.

Run by bench.py (pinned to one core), one fresh process per measurement:

    python server_app.py --impl greensio|greensio+metrics|greensio+recovery|socketio --port P [--scenario NAME]

Both implementations get exactly the same app, the same Server options and the same
environment. The only difference allowed is how the WSGI app is served: python-socketio is
served the usual way (gevent pywsgi + gevent-websocket's WebSocketHandler); greensio owns its
websocket path, so its own serving helper is used when it has one (see ``serve_greensio``).
``greensio+metrics`` is greensio with its Prometheus metrics on (mounted at /metrics, as an
app would), to measure their cost against plain greensio in the same run;
``greensio+recovery`` is greensio with connection state recovery on, for the same purpose.

When listening, one JSON line is printed on stdout:
    {"ready": true, "port": P, "impl": ..., "serving": ..., "pid": ...}
Server CPU and RSS are read by the harness from /proc/<pid>/stat and /proc/<pid>/status.
"""

from gevent import monkey

monkey.patch_all()

import argparse
import importlib
import inspect
import json
import os
import resource
import socket
import sys
import time

import gevent
from gevent import pywsgi

HOST = '127.0.0.1'
READY_TIMEOUT_S = 15.0  # how long the server may take to start accepting connections
TICK_TEXT = 'tick payload: a short broadcast message'  # small, like a chat line


def raise_fd_limit() -> None:
    # The idle scenario holds thousands of sockets open.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def import_impl(impl: str):
    if impl.startswith('greensio'):
        return importlib.import_module('greensio')
    if impl == 'socketio':
        return importlib.import_module('socketio')
    raise SystemExit(f'unknown --impl {impl!r}')


def build_app(socketio, **options):
    sio = socketio.Server(
        async_mode='gevent',
        cors_allowed_origins='*',
        ping_interval=25,
        max_http_buffer_size=10_000_000,
        **options,
    )

    @sio.event
    def echo(sid, *args):
        # A tuple return value becomes the ack's argument list: the client gets its args back.
        return args

    @sio.event
    def bin_echo(sid, data):
        # Acked (not re-emitted) so the client runs a closed loop, same as `echo`.
        return data

    @sio.event
    def start_broadcast(sid, options):
        """Emit `tick` `count` times to every client of '/', one broadcast at a time.

        After each broadcast the handler yields (sleep(0)) so that broadcast is written out
        before the next is produced: this measures one fan-out after another, not a backlog
        of queued broadcasts. With ``burst`` it does not yield: all broadcasts are queued
        back to back, then written. Then `done` is broadcast.
        """
        count = int(options.get('count', 0))
        burst = bool(options.get('burst'))
        for i in range(count):
            sio.emit('tick', {'i': i, 'text': TICK_TEXT})
            if not burst:
                sio.sleep(0)
        sio.emit('done', count)

    return sio


def _accepts_host_port(func) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return 'host' in params and 'port' in params


def serve_greensio(greensio, app, host, port):
    """Serve `app` with greensio's own helper; returns (description, starter).

    Looked up at run time, first match wins (greensio is being written alongside):
      1. ``greensio.serve(app, host=, port=)`` or ``greensio.serving.serve(...)``;
      2. ``greensio.make_server(app, host=, port=)`` (or in ``greensio.serving``) returning a
         gevent server;
      3. ``greensio.run(app, host=, port=, log=None)`` (blocking);
      4. a pywsgi handler class ``greensio.serving.WebSocketHandler`` (or on ``greensio``);
      5. fallback: pywsgi + gevent-websocket, exactly as for python-socketio.
    ``BENCH_GREENSIO_SERVE=pywsgi`` forces the fallback.
    """
    if os.environ.get('BENCH_GREENSIO_SERVE') == 'pywsgi':
        return serve_pywsgi(app, host, port, note=' (forced by BENCH_GREENSIO_SERVE)')
    try:
        serving = importlib.import_module('greensio.serving')
    except ImportError:
        serving = None
    holders = [(m, n) for m, n in ((greensio, 'greensio'), (serving, 'greensio.serving')) if m]

    for mod, modname in holders:
        func = getattr(mod, 'serve', None)
        if callable(func) and _accepts_host_port(func):

            def start(func=func):
                result = func(app, host=host, port=port)
                # A helper that returns an unstarted server instead of blocking.
                if hasattr(result, 'serve_forever') and not getattr(result, 'started', True):
                    result.serve_forever()

            return f'{modname}.serve', start

    for mod, modname in holders:
        func = getattr(mod, 'make_server', None)
        if callable(func) and _accepts_host_port(func):
            return f'{modname}.make_server', lambda func=func: func(
                app, host=host, port=port).serve_forever()

    for mod, modname in holders:
        func = getattr(mod, 'run', None)
        if callable(func) and _accepts_host_port(func):
            return f'{modname}.run', lambda func=func: func(app, host=host, port=port, log=None)

    for mod, modname in holders:
        handler = getattr(mod, 'WebSocketHandler', None)
        if isinstance(handler, type):
            server = pywsgi.WSGIServer((host, port), app, handler_class=handler, log=None)
            return f'pywsgi+{modname}.WebSocketHandler', server.serve_forever

    return serve_pywsgi(app, host, port, note=' (fallback: greensio has no serving helper)')


def serve_pywsgi(app, host, port, note=''):
    from geventwebsocket.handler import WebSocketHandler

    server = pywsgi.WSGIServer((host, port), app, handler_class=WebSocketHandler, log=None)
    return 'pywsgi+geventwebsocket' + note, server.serve_forever


def wait_listening(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            gevent.sleep(0.02)
    return False


def gunicorn_app():
    """The app of a gunicorn worker (``BENCH_SERVE=gunicorn``): the impl comes from ``BENCH_IMPL``."""
    socketio = import_impl(os.environ['BENCH_IMPL'])
    return socketio.WSGIApp(build_app(socketio))


def serve_gunicorn(impl: str, port: int) -> int:
    """Both implementations on one gunicorn worker of gevent-websocket's class, python-socketio's documented way.

    gunicorn runs as a child (master + one worker); the harness counts the CPU of this whole process tree.
    """
    import subprocess

    worker = 'geventwebsocket.gunicorn.workers.GeventWebSocketWorker'
    proc = subprocess.Popen([sys.executable, '-m', 'gunicorn', '-k', worker, '-w', '1', '-b', f'{HOST}:{port}',
                             '--chdir', os.path.dirname(os.path.abspath(__file__)), 'server_app:gunicorn_app()'],
                            env={**os.environ, 'BENCH_IMPL': impl}, stdout=sys.stderr)
    try:
        if not wait_listening(HOST, port, READY_TIMEOUT_S):
            print(f'gunicorn did not listen on port {port}', file=sys.stderr)
            return 1
        print(json.dumps({'ready': True, 'port': port, 'impl': impl, 'serving': f'gunicorn -k {worker}',
                          'pid': os.getpid()}), flush=True)
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--impl', required=True, choices=['greensio', 'greensio+metrics', 'greensio+recovery', 'socketio'])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--scenario', default='', help='informational only (shown in logs)')
    args = parser.parse_args()

    raise_fd_limit()
    if os.environ.get('BENCH_SERVE') == 'gunicorn':
        return serve_gunicorn(args.impl, args.port)
    socketio = import_impl(args.impl)
    sio = build_app(socketio, **({'connection_state_recovery': True} if args.impl == 'greensio+recovery' else {}))
    app = socketio.WSGIApp(sio)
    if args.impl == 'greensio+metrics' or (
            args.impl == 'greensio' and os.environ.get('BENCH_GREENSIO_METRICS') == '1'):
        # greensio's cost with its Prometheus metrics on (mounted at /metrics, as an app would)
        from greensio.metrics import Metrics

        app = socketio.WSGIApp(sio, Metrics(sio).wsgi_app())

    if args.impl != 'socketio':
        serving, start = serve_greensio(socketio, app, HOST, args.port)
    else:
        serving, start = serve_pywsgi(app, HOST, args.port)

    server_greenlet = gevent.spawn(start)
    if not wait_listening(HOST, args.port, READY_TIMEOUT_S):
        print(f'server did not listen on port {args.port}', file=sys.stderr)
        if server_greenlet.dead and server_greenlet.exception is not None:
            print(repr(server_greenlet.exception), file=sys.stderr)
        return 1
    print(json.dumps({'ready': True, 'port': args.port, 'impl': args.impl,
                      'serving': serving, 'scenario': args.scenario, 'pid': os.getpid()}),
          flush=True)
    server_greenlet.join()  # the harness ends this process with a signal
    if server_greenlet.exception is not None:
        print(f'server stopped: {server_greenlet.exception!r}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
