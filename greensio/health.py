"""Liveness and readiness endpoints for load balancers and Kubernetes probes.

Integration ring.  Reads, at request time, the state the message-queue
managers keep anyway (``state``, ``outbox_length``, ``outbox_size``); it adds
nothing to the server's own work and needs no extra package.

- ``/healthz`` (liveness): 200 whenever the process answers HTTP.  A broker
  outage is not a reason to restart a worker: its outbox keeps messages and
  replays them once the broker is back.
- ``/readyz`` (readiness): 200 while the message queue is healthy and the
  outbox is below ``max_outbox``; 503 while the broker cannot be reached, and
  while the outbox it left behind is still draining.  A server with the
  in-memory manager is always ready.

Both answer a small JSON object: ``{"status": "ok"|"unavailable",
"message_queue": "healthy"|"degraded"|"none", "outbox": n}``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ['Health']

_STATUS_LINES = {200: '200 OK', 503: '503 Service Unavailable'}


class Health:
    """Health endpoints of a server, or of a manager alone (a write-only process).

    ::

        health = Health(sio)
        app = greensio.WSGIApp(sio, health.wsgi_app(flask_app))   # /healthz and /readyz
        health.serve(8081)                                         # or on a port of its own

    :param server: a :class:`~greensio.Server` or :class:`~greensio.AsyncServer`,
        or a client manager.
    :param max_outbox: readiness also needs fewer than this many messages
        waiting for the broker (default: half the outbox), so that a worker
        replaying a long outbox after an outage takes no new clients until it
        has caught up.
    """

    def __init__(self, server: Any, max_outbox: int | None = None) -> None:
        self.manager = getattr(server, 'manager', server)
        size = getattr(self.manager, 'outbox_size', None)
        if max_outbox is None:
            max_outbox = max(1, size // 2) if size else 1
        self.max_outbox = max_outbox

    def live(self) -> bool:
        """Always ``True``: answering at all is what liveness asks."""
        return True

    def report(self) -> dict[str, Any]:
        """What ``/readyz`` answers: ``ready`` (bool), ``message_queue`` and ``outbox``."""
        state = getattr(self.manager, 'state', None)
        outbox = getattr(self.manager, 'outbox_length', 0)
        ready = state in (None, 'healthy') and outbox < self.max_outbox
        return {'ready': ready, 'message_queue': state or 'none', 'outbox': outbox}

    def ready(self) -> bool:
        """``True`` while the message queue is healthy and the outbox is below ``max_outbox``."""
        return self.report()['ready']

    def _answer(self, path: str, live_path: str) -> tuple[int, bytes]:
        report = self.report()
        ok = True if path == live_path else report.pop('ready')
        report.pop('ready', None)
        body = {'status': 'ok' if ok else 'unavailable', **report}
        return (200 if ok else 503), json.dumps(body).encode()

    def wsgi_app(self, app: Callable | None = None, live_path: str = '/healthz',
                 ready_path: str = '/readyz') -> Callable:
        """A WSGI app answering the two paths and passing anything else to ``app`` (404 without)."""
        fallback = app or _not_found_wsgi

        def health(environ: dict, start_response: Callable) -> Any:
            path = environ.get('PATH_INFO', '')
            if path not in (live_path, ready_path):
                return fallback(environ, start_response)
            status, body = self._answer(path, live_path)
            start_response(_STATUS_LINES[status], [('Content-Type', 'application/json'),
                                                   ('Cache-Control', 'no-store'),
                                                   ('Content-Length', str(len(body)))])
            return [body]
        return health

    def asgi_app(self, app: Callable | None = None, live_path: str = '/healthz',
                 ready_path: str = '/readyz') -> Callable:
        """The ASGI twin of :meth:`wsgi_app`."""

        async def health(scope: dict, receive: Callable, send: Callable) -> None:
            path = scope.get('path', '') if scope['type'] == 'http' else None
            if path not in (live_path, ready_path):
                if app is not None:
                    await app(scope, receive, send)
                elif scope['type'] == 'http':
                    await send({'type': 'http.response.start', 'status': 404,
                                'headers': [(b'content-type', b'text/plain')]})
                    await send({'type': 'http.response.body', 'body': b'Not Found'})
                return
            status, body = self._answer(path, live_path)
            await send({'type': 'http.response.start', 'status': status,
                        'headers': [(b'content-type', b'application/json'), (b'cache-control', b'no-store')]})
            await send({'type': 'http.response.body', 'body': body})
        return health

    def serve(self, port: int, host: str = '127.0.0.1', app: Callable | None = None) -> WSGIServer:
        """Serve :meth:`wsgi_app` on a port of its own, like :meth:`greensio.metrics.Metrics.serve`."""
        return serve_wsgi(self.wsgi_app(app), port, host)


# -- small HTTP helpers, shared with greensio.metrics ---------------------------------------


def _not_found_wsgi(environ: dict, start_response: Callable) -> list[bytes]:
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'Not Found']


def _route_wsgi(routes: dict[str, Callable], app: Callable | None) -> Callable:
    fallback = app or _not_found_wsgi

    def route(environ: dict, start_response: Callable) -> Any:
        return routes.get(environ.get('PATH_INFO', ''), fallback)(environ, start_response)
    return route


def _route_asgi(routes: dict[str, Callable], app: Callable | None) -> Callable:
    async def route(scope: dict, receive: Callable, send: Callable) -> None:
        target = routes.get(scope.get('path', '')) if scope['type'] == 'http' else None
        if target is not None:
            await target(scope, receive, send)
        elif app is not None:
            await app(scope, receive, send)
        elif scope['type'] == 'http':
            await send({'type': 'http.response.start', 'status': 404,
                        'headers': [(b'content-type', b'text/plain')]})
            await send({'type': 'http.response.body', 'body': b'Not Found'})
    return route


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_wsgi(app: Callable, port: int, host: str = '127.0.0.1') -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread (a greenlet under gevent's monkey patching)."""
    httpd = make_server(host, port, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name=f'greensio-http-{httpd.server_port}', daemon=True)
    thread.start()
    return httpd
