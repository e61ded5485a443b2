# ruff: noqa: N999 - gunicorn's conventional file name
"""gunicorn settings for the chat demo.

From the repository root::

    gunicorn -c examples/chat/gunicorn.conf.py                 # one worker, in-memory manager
    GREENSIO_MESSAGE_QUEUE=amqp://guest:guest@127.0.0.1:5672// \\
        gunicorn -c examples/chat/gunicorn.conf.py -w 2      # two workers on RabbitMQ

Several workers share one listening socket, so the kernel, not a load
balancer, picks the worker for each TCP connection: the requests of one
long-polling client land on different workers, and greensio's worker passes
each to the worker that owns the session (see the deployment docs).
``CHAT_TRANSPORTS=polling`` makes the page poll only.
"""

# gunicorn loads this file first, before it imports the worker class (and
# with it greensio, python-engineio and, through its client, requests and
# ssl): patching here, not in the worker after the fork, keeps those imports
# green and silences gevent's "Monkey-patching ssl after ssl has already been
# imported" warning, which is real for handlers that call HTTPS services.
from gevent import monkey

monkey.patch_all()

import os

wsgi_app = 'examples.chat.app:app'
worker_class = 'greensio.gunicorn.GeventWebSocketWorker'
bind = os.environ.get('CHAT_BIND', '127.0.0.1:5000')
workers = int(os.environ.get('WEB_CONCURRENCY', '1'))
# one greenlet per connection: idle websockets are cheap, allow plenty
worker_connections = 2000
# a websocket is one long request; gunicorn's timeout watches worker
# liveness (the heartbeat file), not request length, on gevent workers
timeout = 30
graceful_timeout = 5
accesslog = os.environ.get('CHAT_ACCESS_LOG') or None
loglevel = 'info'


def on_starting(server):
    """Refuse a setup that cannot work: several workers need a message queue."""
    if server.cfg.workers > 1 and not os.environ.get('GREENSIO_MESSAGE_QUEUE'):
        raise SystemExit('chat demo: with more than one worker set GREENSIO_MESSAGE_QUEUE '
                         '(e.g. amqp://guest:guest@127.0.0.1:5672//) so broadcasts reach every worker')
