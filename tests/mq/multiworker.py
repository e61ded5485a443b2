"""Several gunicorn workers behind one address, and the clients that drive them.

The pieces of the several-worker tests (``test_multiworker.py``) and
benchmark (``tests/performance/bench_nosticky.py``):

- :func:`gunicorn_app`: gunicorn serving ``multiworker_app.py`` with N greensio
  workers on one port-0 socket, once every worker has booted (:func:`gunicorns`:
  several of them);
- :func:`nginx`: Debian's nginx in front of one or more of those, round-robin or
  ``ip_hash``, with its config, pid and logs in a temporary directory, on a socket
  bound here (port 0) that it inherits;
- :class:`Driver` and :func:`scenario`: ``tests/js/multiworker_driver.js`` (the
  official JS client) and an external emitter, a write-only ``KombuManager``.

Every process is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from demo_process import ROOT, gunicorn, listening_socket
from e2e_helpers import wait_until

import greensio

from .helpers import AMQP_URL, check_sequence, delete_exchange, unique_channel

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(ROOT, 'tests', 'js', 'multiworker_driver.js')
BOOTED = re.compile(r'Booting worker with pid: (\d+)')


def nginx_executable() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which('nginx') or shutil.which('nginx', path='/usr/sbin')


def gunicorn_app(workers: int, channel: str, **env: str) -> contextlib.AbstractContextManager[tuple[str, Any]]:
    """gunicorn with ``workers`` greensio workers serving ``multiworker_app``; yields ``(url, proc)``."""
    args = ['--worker-class', 'greensio.gunicorn.GeventWebSocketWorker', '--chdir', HERE,
            '--graceful-timeout', '1', 'multiworker_app:app']
    return gunicorn(args, workers, MULTIWORKER_CHANNEL=channel, MULTIWORKER_AMQP=AMQP_URL, **env)


@contextlib.contextmanager
def gunicorns(count: int, workers: int, channel: str, machines: bool = False) -> Iterator[list[tuple[str, Any]]]:
    """``count`` instances of :func:`gunicorn_app`, started and stopped side by side; yields their ``(url, proc)``.

    ``machines``: each instance as if on a machine of its own, whose workers
    cannot reach the others' sockets (a workers directory each): they share
    only the message queue.
    """
    with contextlib.ExitStack() as stack:
        dirs = [stack.enter_context(tempfile.TemporaryDirectory()) if machines else None for _ in range(count)]
        managers = [gunicorn_app(workers, channel, **({'GREENSIO_WORKERS_DIR': d} if d else {})) for d in dirs]
        yield from _side_by_side(managers)


def _side_by_side(managers: list[Any]) -> Iterator[list[tuple[str, Any]]]:
    starts = [gevent.spawn(manager.__enter__) for manager in managers]
    gevent.joinall(starts)
    try:
        yield [start.get() for start in starts]  # the first failure to start, if any, raised here
    finally:
        gevent.joinall([gevent.spawn(manager.__exit__, None, None, None)
                        for manager, start in zip(managers, starts) if start.successful()])


def booted_pids(proc: Any) -> list[int]:
    """The pid of every worker gunicorn has booted so far, replacements included, in order."""
    return [int(m[1]) for line in proc.output for m in [BOOTED.search(line)] if m]


NGINX_CONF = '''\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream app {{
        {balance}
        {servers}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_buffering off;
        }}
    }}
}}
'''


@contextlib.contextmanager
def nginx(upstreams: list[str], sticky: bool) -> Iterator[str]:
    """nginx on 127.0.0.1 in front of ``upstreams`` (base URLs); yields its URL.

    ``sticky``: ``ip_hash`` (a client address always reaches the same upstream;
    nginx hashes the first three octets of it), otherwise round-robin, so
    each request of one client may reach another upstream.
    """
    listener = listening_socket()
    port, fd = listener.getsockname()[1], listener.fileno()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as another user when started by root
        servers = '\n        '.join(f'server {url.split("://", 1)[1]};' for url in upstreams)
        conf = os.path.join(tmp, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, servers=servers, balance='ip_hash;' if sticky else ''))
        log = os.path.join(tmp, 'error.log')
        # NGINX=<fd>; hands nginx a listening socket instead of letting it bind one
        proc = subprocess.Popen([nginx_executable(), '-p', tmp, '-e', log, '-c', conf], pass_fds=(fd,),
                                env={'NGINX': f'{fd};'}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        listener.close()
        try:
            wait_until(lambda: proc.poll() is not None or 'start worker process' in read(log), 20, 'nginx to start')
            assert proc.poll() is None, f'nginx exited:\n{read(log)}'
            yield f'http://127.0.0.1:{port}'
        finally:
            if proc.poll() is None:
                proc.terminate()  # fast shutdown of the master and its worker
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def read(path: str) -> str:
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        return f.read()
    return ''


class Driver:
    """``multiworker_driver.js`` in node: options as keyword arguments, its JSON lines by phase."""

    def __init__(self, url: str, timeout: float = 120, **options: Any) -> None:
        args = []
        for key, value in options.items():
            args += [f'--{key.replace("_", "-")}', str(int(value) if isinstance(value, bool) else value)]
        self.proc = subprocess.Popen(['node', DRIVER, '--url', url, '--timeout', str(timeout), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=os.path.dirname(DRIVER))
        self.timeout = timeout
        self.phases: dict[str, dict] = {}
        self.stderr: list[str] = []
        self._readers = [gevent.spawn(self._read_stdout), gevent.spawn(self._read_stderr)]

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            self.phases[message['phase']] = message

    def _read_stderr(self) -> None:
        self.stderr.extend(self.proc.stderr)

    def phase(self, name: str, timeout: float | None = None) -> dict:
        """The line of phase ``name``, once the driver has printed it."""
        def printed() -> dict | None:
            if 'error' in self.phases:
                raise AssertionError(f'the driver failed: {self.phases["error"]["error"]}')
            if name not in self.phases and self.proc.poll() is not None:
                gevent.joinall(self._readers, timeout=2)
                if name not in self.phases:
                    raise AssertionError(f'the driver exited ({self.proc.returncode}) before "{name}":\n'
                                         + ''.join(self.stderr[-30:]))
            return self.phases.get(name)
        return wait_until(printed, timeout or self.timeout, f'the driver\'s "{name}" phase')

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.stdin.close()  # the driver disconnects its clients and exits, or has already
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        gevent.joinall(self._readers, timeout=2)


@contextlib.contextmanager
def channel() -> Iterator[str]:
    """A fresh RabbitMQ channel, its exchanges deleted afterwards."""
    name = unique_channel()
    try:
        yield name
    finally:
        delete_exchange(name)


def scenario(url: str, channel: str, external: int, on_halfway: Callable[[dict], None] | None = None,
             timeout: float = 60, **options: Any) -> dict:
    """Run the driver's scenario against ``url`` and publish ``external`` broadcasts when it asks.

    ``on_halfway(connected)`` runs once half of the echoes are answered, with the
    driver's "connected" line.  Returns the driver's "end" line, with ``connected``
    and ``echoed`` (its earlier lines) added.
    """
    emitter = greensio.KombuManager(AMQP_URL, channel=channel, write_only=True)
    driver = Driver(url, timeout=timeout, external=external, **options)
    try:
        connected = driver.phase('connected')
        if on_halfway is not None:
            driver.phase('halfway')
            on_halfway(connected)
        echoed = driver.phase('echoed')
        driver.send('go')
        for seq in range(external):
            emitter.emit('bcast', {'source': 'external', 'seq': seq})
        return {**driver.phase('end'), 'connected': connected, 'echoed': echoed}
    finally:
        driver.stop()
        emitter.close(timeout=2)


def lost_anything(client: dict, events: int, broadcasts: int, external: int) -> dict:
    """What a client of the scenario missed: empty when every ack and broadcast came, once each, in order."""
    missed = {key: client[key] for key in ('ack_failed', 'wrong', 'disconnects') if client[key]}
    if client['acked'] != events:
        missed['acked'] = client['acked']
    for source, count in (('client', broadcasts), ('external', external)):
        sequence = check_sequence(client['received'][source], count)
        missed.update({f'{source} {key}': n for key, n in sequence.items() if n})
    return missed


def workers_of(result: dict) -> set[int]:
    """The pids of the workers that owned the clients' sessions (first and last asked)."""
    return {pid for client in result['clients'] for pid in client['pids']}

