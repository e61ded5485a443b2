"""Drive the official JavaScript ``socket.io-client`` from Python tests.

``JSClient`` starts ``node tests/js/client_driver.js`` and talks to it with
newline-delimited JSON (see the driver for the wire protocol).  All messages
coming from the driver are buffered in arrival order; ``wait_for`` scans that
buffer and *consumes* the first match, so waiting twice for the same kind of
message returns two successive messages.

Binary values travel as ``{"$bin": "<base64>"}``; ``emit`` converts ``bytes``
automatically and every received message is decoded back to ``bytes``.

Works both in a gevent-monkey-patched process (the reader thread, the queue
and the subprocess pipes all become cooperative) and unpatched.

Typical use::

    with JSClient() as js:
        js.connect(url, transports=['websocket'])
        js.wait_for('connect')
        assert js.call('echo', b'\\x00\\x01') == [b'\\x00\\x01']

Driver protocol (one JSON object per line):

commands (stdin) -- every command may carry ``"id"``; ``"sock"`` defaults to
``"default"``:
    connect      {url, opts}           io(url, opts); replaces an existing sock
    emit         {event, args, ack, timeout_ms?, volatile?, compress?}
    emit_many    {event, count, ack}   emit(event, i) for i in range(count)
    ack_mode     {mode: echo|none|delay, delay_ms?, args?}
    disconnect   {}                    socket.disconnect()
    reconnect    {}                    socket.connect() after a disconnect
    close_engine {}                    socket.io.engine.close()
    state        {}                    -> {"type":"state",...}
    exit         {}

messages (stdout) -- each also has ``"t"`` (ms since driver start):
    ready            {pid, node}
    done             {id}                          command issued
    error            {id, cmd, message}            command failed
    fatal            {message, stack}              uncaught exception in node
    connect          {sock, id, transport}
    connect_error    {sock, message, data}
    disconnect       {sock, reason, description?}
    upgrade          {sock, transport}
    reconnect        {sock, attempt}
    reconnect_attempt/reconnect_failed {sock, ...}
    event            {sock, event, args, ack_requested?}
    ack              {id, args, index?}            (index only for emit_many)
    acks_done        {id, count}                   emit_many with ack
    ack_timeout      {id, message}
    state            {id, sock, connected, active, sid, engine_sid, transport}
"""
import base64
import contextlib
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(HERE, 'js')
DRIVER = os.path.join(JS_DIR, 'client_driver.js')

_EOF = object()


# ------------------------------------------------------------------ helpers

def to_js(value):
    """Convert a Python value for the driver: bytes -> {"$bin": b64}."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {'$bin': base64.b64encode(bytes(value)).decode('ascii')}
    if isinstance(value, (list, tuple)):
        return [to_js(v) for v in value]
    if isinstance(value, dict):
        return {k: to_js(v) for k, v in value.items()}
    return value


def from_js(value):
    """Convert a value from the driver: {"$bin": b64} -> bytes."""
    if isinstance(value, list):
        return [from_js(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get('$bin'), str):
            return base64.b64decode(value['$bin'])
        return {k: from_js(v) for k, v in value.items()}
    return value


def node_executable():
    return shutil.which('node')


def node_available():
    """True when node and the installed npm packages are usable."""
    return bool(node_executable()) and os.path.isdir(
        os.path.join(JS_DIR, 'node_modules', 'socket.io-client'))


def skip_reason():
    if not node_executable():
        return 'node is not installed'
    if not node_available():
        return 'run "npm ci" in tests/js to install socket.io-client'
    return None


# ------------------------------------------------------------------ client

class JSClient:
    """A socket.io-client (node) process controlled from Python."""

    def __init__(self, start_timeout=10, env=None):
        reason = skip_reason()
        if reason:
            raise RuntimeError(reason)
        self._ids = itertools.count(1)
        self._queue = queue.Queue()
        self.messages = []        # every message received, in order
        self._consumed = set()    # indexes of messages returned by wait_for
        self._eof = False
        self._closed = False
        self._stderr = tempfile.TemporaryFile(mode='w+b')  # noqa: SIM115 - lives as long as the process
        proc_env = dict(os.environ)
        proc_env.pop('DEBUG', None)   # the debug module would spam stderr
        if env:
            proc_env.update(env)
        self.proc = subprocess.Popen(
            [node_executable(), DRIVER], cwd=JS_DIR, env=proc_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            # buffered: an unbuffered readline reads one byte per syscall,
            # which made a 1 MB message take about a second to read
            stderr=self._stderr, bufsize=-1)
        self._reader = threading.Thread(target=self._read_loop,
                                        name='jsclient-reader', daemon=True)
        self._reader.start()
        try:
            self.ready = self.wait_for('ready', timeout=start_timeout)
        except BaseException:
            self.close()
            raise

    # -- context manager -------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing ----------------------------------------------------------

    def _read_loop(self):
        stdout = self.proc.stdout
        try:
            for line in iter(stdout.readline, b''):
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = from_js(json.loads(line.decode('utf-8')))
                except ValueError:
                    msg = {'type': 'garbage',
                           'line': line.decode('utf-8', 'replace')}
                self._queue.put(msg)
        except (OSError, ValueError):
            pass
        finally:
            self._queue.put(_EOF)

    def _pump(self, timeout=None):
        """Move messages from the reader queue into ``self.messages``.

        Blocks up to ``timeout`` seconds for at least one message (None =
        don't block).  Returns False once the driver's stdout is closed.
        """
        try:
            if timeout is None:
                item = self._queue.get_nowait()
            else:
                item = self._queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return not self._eof
        while True:
            if item is _EOF:
                self._eof = True
            else:
                self.messages.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return not self._eof

    def stderr_text(self):
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            return self._stderr.read().decode('utf-8', 'replace')
        except (OSError, ValueError):
            return ''

    def describe(self, last=60):
        msgs = self.messages[-last:]
        lines = [f'messages seen ({len(self.messages)} total, last {len(msgs)}):']
        lines += ['  ' + _short(m) for m in msgs]
        err = self.stderr_text().strip()
        if err:
            lines.append('node stderr:\n' + err[-4000:])
        if self.proc.poll() is not None:
            lines.append(f'node exited with code {self.proc.returncode}')
        return '\n'.join(lines)

    def send(self, cmd, **fields):
        """Send a raw command; returns its id."""
        if self._closed:
            raise RuntimeError('JSClient is closed')
        msg = dict(fields)
        msg['cmd'] = cmd
        if msg.get('id') is None:
            msg['id'] = next(self._ids)
        data = (json.dumps(msg) + '\n').encode('utf-8')
        try:
            # a raw (unbuffered) pipe write may stop after one pipe buffer
            # (64 KiB); loop so a big command is never cut short
            view = memoryview(data)
            while view:
                written = self.proc.stdin.write(view)
                view = view[written or 0:]
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise AssertionError(f'cannot write to node driver: {exc}\n{self.describe()}')
        return msg['id']

    def command(self, cmd, timeout=10, **fields):
        """Send a command and wait until the driver has issued it."""
        cid = self.send(cmd, **fields)
        msg = self.wait_for(
            lambda m: m.get('id') == cid and m['type'] in ('done', 'error'),
            timeout=timeout)
        if msg['type'] == 'error':
            raise AssertionError('driver command {!r} failed: {}\n{}'.format(
                cmd, msg.get('message'), self.describe()))
        return cid

    # -- matching ----------------------------------------------------------

    @staticmethod
    def _matcher(predicate_or_type, match):
        if predicate_or_type is None:
            pred = None
        elif callable(predicate_or_type):
            pred = predicate_or_type
        else:
            kind = predicate_or_type

            def pred(m):
                return m.get('type') == kind

        def matches(m):
            if pred is not None and not pred(m):
                return False
            for k, v in match.items():
                if k not in m or m[k] != v:
                    return False
            return True
        return matches

    def find(self, predicate_or_type=None, consume=False, **match):
        """Return the first buffered (unconsumed) match or None."""
        self._pump()
        matches = self._matcher(predicate_or_type, match)
        for i, m in enumerate(self.messages):
            if i not in self._consumed and matches(m):
                if consume:
                    self._consumed.add(i)
                return m
        return None

    def find_all(self, predicate_or_type=None, **match):
        self._pump()
        matches = self._matcher(predicate_or_type, match)
        return [m for m in self.messages if matches(m)]

    def wait_for(self, predicate_or_type=None, timeout=10, consume=True,
                 **match):
        """Wait for a message matching a type name or predicate and fields.

        Scans the buffered messages in order, skipping those already returned
        by an earlier ``wait_for``; the match is consumed (unless
        ``consume=False``).  A ``fatal`` message from the driver fails
        immediately, as does the driver exiting.  On timeout raises
        AssertionError listing the messages seen so far.
        """
        matches = self._matcher(predicate_or_type, match)
        deadline = time.monotonic() + timeout
        scanned = 0
        while True:
            for i in range(scanned, len(self.messages)):
                m = self.messages[i]
                if i in self._consumed:
                    continue
                if matches(m):
                    if consume:
                        self._consumed.add(i)
                    return m
                if m.get('type') == 'fatal':
                    raise AssertionError('node driver fatal error: {}\n{}'.format(
                        m.get('message'), self.describe()))
            scanned = len(self.messages)
            if self._eof:
                raise AssertionError(
                    f'node driver exited while waiting for {_describe_wait(predicate_or_type, match)}\n{self.describe()}')
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError('timed out after {}s waiting for {}\n{}'.format(timeout, _describe_wait(
                                         predicate_or_type, match),
                                         self.describe()))
            self._pump(timeout=remaining)

    # -- socket.io API -----------------------------------------------------

    def connect(self, url, sock='default', wait=False, opts=None,
                timeout_s=10, **kwopts):
        """``io(url, opts)`` as socket ``sock``; opts are passed through.

        Socket.IO options go either as keyword arguments or in ``opts`` (use
        ``opts`` for names clashing with this method's own arguments).  With
        ``wait=True`` waits for the ``connect`` or ``connect_error`` message
        for this sock and returns it; otherwise returns the command id.
        """
        all_opts = dict(opts or {})
        all_opts.update(kwopts)
        cid = self.command('connect', url=url, sock=sock,
                           opts=to_js(all_opts))
        if not wait:
            return cid
        return self.wait_for(
            lambda m: m.get('sock') == sock
            and m['type'] in ('connect', 'connect_error'), timeout=timeout_s)

    def emit(self, event, *args, sock='default', ack=False, timeout_ms=None,
             **extra):
        """Emit from the client; returns the command id (ack messages carry
        the same id).  ``extra`` may hold ``volatile=True``/``compress=False``.
        """
        fields = dict(sock=sock, event=event, args=to_js(list(args)),
                      ack=bool(ack), **extra)
        if timeout_ms is not None:
            fields['timeout_ms'] = timeout_ms
        return self.command('emit', **fields)

    def call(self, event, *args, sock='default', timeout=10, timeout_ms=None):
        """Emit with an ack and return the ack arguments (a list)."""
        cid = self.emit(event, *args, sock=sock, ack=True,
                        timeout_ms=timeout_ms)
        msg = self.wait_ack(cid, timeout=timeout)
        if msg['type'] == 'ack_timeout':
            raise AssertionError(f'ack timeout for {event!r}\n{self.describe()}')
        return msg['args']

    def wait_ack(self, cid, timeout=10):
        """Wait for the ``ack`` (or ``ack_timeout``) message of an emit."""
        return self.wait_for(
            lambda m: m.get('id') == cid
            and m['type'] in ('ack', 'ack_timeout'), timeout=timeout)

    def emit_many(self, event, count, sock='default', ack=False):
        return self.command('emit_many', sock=sock, event=event,
                            count=count, ack=bool(ack))

    def ack_mode(self, mode='echo', sock='default', delay_ms=0, args=None):
        """How server->client acks are answered: 'echo' (default: ack with
        the received args), 'none' (never ack) or 'delay' (echo after
        ``delay_ms``).  ``args`` replaces the echoed args."""
        fields = {'sock': sock, 'mode': mode, 'delay_ms': delay_ms}
        if args is not None:
            fields['args'] = to_js(list(args))
        return self.command('ack_mode', **fields)

    def disconnect(self, sock='default'):
        return self.command('disconnect', sock=sock)

    def reconnect(self, sock='default'):
        return self.command('reconnect', sock=sock)

    def close_engine(self, sock='default'):
        return self.command('close_engine', sock=sock)

    def state(self, sock='default'):
        cid = self.send('state', sock=sock)
        msg = self.wait_for(
            lambda m: m.get('id') == cid and m['type'] in ('state', 'error'))
        if msg['type'] == 'error':
            raise AssertionError(msg['message'])
        self.wait_for('done', id=cid)
        return msg

    def wait_event(self, event, sock='default', timeout=10):
        """Wait for (and consume) a server->client event; returns the msg."""
        return self.wait_for('event', timeout=timeout, sock=sock, event=event)

    def events(self, sock='default', event=None):
        """All events received so far on ``sock`` (consumed or not)."""
        match = {'sock': sock}
        if event is not None:
            match['event'] = event
        return self.find_all('event', **match)

    # -- shutdown ----------------------------------------------------------

    def close(self, timeout=5):
        if self._closed:
            return
        self._closed = True
        try:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.write(b'{"cmd":"exit"}\n')
                    self.proc.stdin.flush()
                except (OSError, ValueError):
                    pass
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
            self._reader.join(timeout)
            self._pump()
        finally:
            try:
                self.proc.stdout.close()
            except (OSError, ValueError):
                pass
            self._stderr.close()

    @property
    def returncode(self):
        return self.proc.poll()


@contextlib.contextmanager
def jsclients(**kwargs):
    """Factory for fixtures: yields ``make()`` creating JSClients that are
    all closed on exit::

        @pytest.fixture
        def make_js():
            with jsclients() as make:
                yield make
    """
    clients = []

    def make():
        c = JSClient(**kwargs)
        clients.append(c)
        return c
    try:
        yield make
    finally:
        for c in clients:
            c.close()


def _describe_wait(predicate_or_type, match):
    what = getattr(predicate_or_type, '__name__', predicate_or_type)
    if match:
        return f'{what!r} {match!r}'
    return repr(what)


def _short(m, limit=300):
    s = json.dumps(to_js(m), default=repr)
    return s if len(s) <= limit else s[:limit] + '...'
