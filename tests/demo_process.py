"""Start the chat demo (or gunicorn serving it) as a child process for tests.

The child writes its URL on stdout (``python -m examples.chat --port 0``) or
inherits a listening socket bound here on port 0 (gunicorn ``--bind
fd://N``), so no test guesses a free port.  Children are stopped by PID.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import gevent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSER_DIR = os.path.join(ROOT, 'tests', 'browser')
BROWSER_SOCKETIO_JS = os.path.join(BROWSER_DIR, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js')
JS_SOCKETIO_JS = os.path.join(ROOT, 'tests', 'js', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js')
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')


def browser_skip_reason(needed: str, package: str) -> str | None:
    """Why a browser test cannot run here (None when it can): Chromium, node,
    playwright-core and ``needed``, a file of the npm ``package`` in tests/browser."""
    if not os.access(CHROMIUM, os.X_OK):
        return f'no Chromium at {CHROMIUM}: apt-get install -y chromium'
    if not shutil.which('node'):
        return 'node is not installed'
    if not os.path.isdir(os.path.join(BROWSER_DIR, 'node_modules', 'playwright-core')) or not os.path.isfile(needed):
        return f'run "npm ci" in tests/browser (playwright-core, {package})'
    return None


def child_env(**extra):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, env.get('PYTHONPATH')]))
    env['PYTHONUNBUFFERED'] = '1'
    if 'GREENSIO_SOCKETIO_JS' not in env:
        for candidate in (BROWSER_SOCKETIO_JS, JS_SOCKETIO_JS):
            if os.path.isfile(candidate):
                env['GREENSIO_SOCKETIO_JS'] = candidate
                break
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ''


@contextlib.contextmanager
def chat_demo(timeout=20, **env):
    """``python -m examples.chat --port 0``; yields ``(base_url, proc)``."""
    proc = subprocess.Popen([sys.executable, '-m', 'examples.chat', '--port', '0'], cwd=ROOT,
                            env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with gevent.Timeout(timeout, AssertionError('the chat demo did not print its URL')):
            line = proc.stdout.readline()
        assert line.startswith('greensio serving on '), line + stop(proc)
        yield line.split()[-1], proc
    finally:
        stop(proc)


def _control_socket_args(tmpdir):
    """gunicorn 27+ opens a control socket at one fixed path; give each test its own."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == 'control_socket' for setting in KNOWN_SETTINGS):
        return ['--control-socket', os.path.join(tmpdir, 'gunicorn.ctl')]
    return []


def gunicorn_chat(workers=1, worker_class=None, timeout=30, **env):
    """gunicorn with examples/chat/gunicorn.conf.py on an inherited port-0 socket; yields ``(url, proc)``."""
    args = ['-c', os.path.join(ROOT, 'examples', 'chat', 'gunicorn.conf.py')]
    if worker_class:
        args += ['--worker-class', worker_class]
    return gunicorn(args, workers, timeout, **env)


def listening_socket():
    """A socket listening on 127.0.0.1, port 0, for a child to inherit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', 0))
    listener.listen(128)
    return listener


@contextlib.contextmanager
def gunicorn(args, workers=1, timeout=30, **env):
    """gunicorn ``args`` with ``workers`` workers on an inherited port-0 socket, once every
    worker has booted; yields ``(url, proc)``.  ``proc.output`` is the list of its log
    lines so far, kept up to date; ``proc.log`` all of it once gunicorn has stopped."""
    with tempfile.TemporaryDirectory() as tmpdir, _gunicorn(args, workers, timeout, tmpdir, env) as r:
        yield r


@contextlib.contextmanager
def _gunicorn(args, workers, timeout, tmpdir, env):
    listener = listening_socket()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    cmd = [sys.executable, '-m', 'gunicorn', *args, '--bind', f'fd://{fd}', '--workers', str(workers),
           *_control_socket_args(tmpdir)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(**env), pass_fds=(fd,), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    listener.close()  # the child holds it now
    output = proc.output = []
    drain = None
    try:
        # gunicorn logs "Booting worker with pid: N" once per worker
        booted = 0
        with gevent.Timeout(timeout, AssertionError('gunicorn workers did not boot')):
            while booted < workers:
                line = proc.stdout.readline()
                if not line:
                    raise AssertionError('gunicorn exited:\n' + ''.join(output))
                output.append(line)
                booted += 'Booting worker with pid' in line
        drain = gevent.spawn(_drain, proc, output)
        yield f'http://127.0.0.1:{port}', proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if drain is not None:
            drain.join(timeout=5)
        proc.stdout.close()
        proc.log = ''.join(output)


def _drain(proc, output):
    for line in proc.stdout:
        output.append(line)
