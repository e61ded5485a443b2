"""A gunicorn worker for greensio apps: gevent, websockets, TCP_NODELAY, gunicorn's access log.

Integration ring.  Run an app with::

    gunicorn -k greensio.gunicorn.GeventWebSocketWorker -w 1 module:app

gevent-websocket ships a worker of the same name, and it still runs under
current gunicorn; this one adds what greensio's own server does
(``serving.GreenHandler``): ``TCP_NODELAY`` on every connection, without which
each long-polling response waits ~40 ms for the client's delayed ACK, and
access-log lines through gunicorn's logger (``--access-logfile``) instead of
gevent-websocket's own.  The worker monkey-patches the process (gunicorn's
gevent worker does ``patch_all()``), which the message-queue managers need.

Any number of workers serve any client, long-polling included: a request
that reaches a worker other than its session's owner is passed to the owner
(``greensio.forwarding``); see the deployment docs.
"""

from __future__ import annotations

from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.http.wsgi import base_environ
from gunicorn.workers.ggevent import VERSION, GeventPyWSGIWorker, PyWSGIHandler

from . import forwarding
from .serving import REQUEST_BUFFER, GreenHandler

__all__ = ['GeventWebSocketWorker', 'GunicornHandler']


class GunicornHandler(GreenHandler, PyWSGIHandler):
    """greensio's websocket-capable handler, logging through gunicorn and giving gunicorn's environ keys."""

    def log_request(self) -> None:
        # a websocket's request "finishes" when the socket closes; gunicorn
        # logs it then, with its real duration, like any other request
        PyWSGIHandler.log_request(self)

    def log_direct(self, status: str, length: int) -> None:
        # a long-polling request answered without WSGI: gunicorn's line all the
        # same, from the request details its log format reads
        path, _, query = self.path.partition('?')
        client = self.client_address[0] if isinstance(self.client_address, tuple) else self.client_address
        self.environ = {'REMOTE_ADDR': client or '-', 'REQUEST_METHOD': self.command, 'RAW_URI': self.path,
                        'PATH_INFO': path, 'QUERY_STRING': query, 'SERVER_PROTOCOL': self.request_version,
                        'HTTP_USER_AGENT': self.headers.get('user-agent') or '-',
                        'HTTP_REFERER': self.headers.get('referer') or '-'}
        self.response_headers = []
        self.status = status
        self.response_length = length
        PyWSGIHandler.log_request(self)


class GeventWebSocketWorker(GeventPyWSGIWorker):
    """gunicorn's gevent pywsgi worker with greensio's websocket handler.

    Workers share sessions (``greensio.forwarding``): a request of a session
    another worker owns is passed to it, so any worker may receive any
    request and no balancer needs to be sticky.
    """

    wsgi_handler = GunicornHandler

    def init_process(self) -> None:
        self.peers = forwarding.enable()
        super().init_process()

    def run(self) -> None:
        if self.peers is None:
            super().run()
            return
        # connections the other workers hand over, served as this worker serves its own
        environ = base_environ(self.cfg)
        environ.update({'wsgi.multithread': True, 'SERVER_SOFTWARE': VERSION})
        public = self.server_class(self.sockets[0].getsockname(), application=self.wsgi, log=self.log,
                                   handler_class=self.wsgi_handler, environ=environ)
        public.update_environ()
        handovers = StreamServer(self.peers.listen(), forwarding.HandOvers(public, REQUEST_BUFFER),
                                 spawn=Pool(self.worker_connections))
        handovers.start()
        try:
            super().run()
        finally:
            handovers.close()
            self.peers.close()
