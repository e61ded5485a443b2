"""The app of the several-worker tests and benchmark, served by gunicorn.

Every worker of every gunicorn instance shares one RabbitMQ channel
(``MULTIWORKER_CHANNEL``, unique per test, on ``MULTIWORKER_AMQP``).
Events, all acknowledged:

- ``whoami``: the pid of the worker that runs the handler, the one that owns the session
- ``echo``: its argument back
- ``broadcast``: sends its argument as ``bcast`` to every client of every worker
"""

import os

import greensio

AMQP_URL = os.environ.get('MULTIWORKER_AMQP', 'amqp://guest:guest@127.0.0.1:5672//')

# a client whose worker died notices within the ping timeout: short ones, so the tests need not wait long
sio = greensio.Server(client_manager=greensio.KombuManager(AMQP_URL, channel=os.environ['MULTIWORKER_CHANNEL']),
                      ping_interval=3, ping_timeout=3)
app = greensio.WSGIApp(sio)


@sio.on('whoami')
def whoami(sid):
    return os.getpid()


@sio.on('echo')
def echo(sid, data):
    return data


@sio.on('broadcast')
def broadcast(sid, data):
    sio.emit('bcast', data)
    return True
