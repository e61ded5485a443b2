"""Shared pieces of the end-to-end tests against the JS socket.io-client.

The tests run a greensio ``Server`` in this (gevent-patched) process and drive
``socket.io-client`` 4.8 in node through ``tests/jsclient.py``.  Helpers here
wait on conditions with a deadline instead of sleeping for a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler
from jsclient import JSClient, skip_reason

import greensio

#: Skip marker for modules that need node and the npm packages.
needs_node = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or '')

#: How a greensio app is served: on greensio's own server, or on gevent's
#: pywsgi with gevent-websocket's handler, as python-socketio documents.
DEPLOYMENTS = ['greensio', 'pywsgi']


def start_server(app: Any, deployment: str) -> pywsgi.WSGIServer:
    """A started server for ``app`` on 127.0.0.1, port 0, of one of :data:`DEPLOYMENTS`."""
    if deployment == 'greensio':
        server = greensio.make_server(app, '127.0.0.1', 0)
    else:
        server = pywsgi.WSGIServer(('127.0.0.1', 0), app, handler_class=WebSocketHandler, log=None)
    server.start()
    return server


#: Fast reconnection for tests that drop the transport on purpose.
FAST_RECONNECT = {'reconnectionDelay': 50, 'reconnectionDelayMax': 100}


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = 'condition') -> Any:
    """Poll ``predicate`` (yielding to other greenlets) until it is truthy.

    Returns the truthy value; fails the test after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        gevent.sleep(0.005)


def fence(js: JSClient, sock: str, sio: Any, sid: str, namespace: str = '/') -> None:
    """Emit a ``fence`` event to ``sid`` and wait for it on ``sock``.

    Events to one client arrive in order, so anything sent to that client
    before the fence has arrived once the fence has: this is how a test
    proves that an event was *not* delivered, without sleeping.
    """
    token = f'fence-{time.monotonic_ns()}'
    sio.emit('fence', token, to=sid, namespace=namespace)
    js.wait_for('event', sock=sock, event='fence', args=[token])
