"""A code reloader for ``greensio.flask.SocketIO.run(use_reloader=True)``.

Integration ring.  The process the user started becomes a supervisor: it runs
the same command line again as a child and waits.  The child serves, and a
greenlet in it compares the modification times of every loaded module (plus
``extra_files``) once a second; on a change it stops the server and exits with
:data:`RESTART`, and the supervisor starts a fresh child.  Any other exit
status ends the supervisor with that status.

The child sees ``WERKZEUG_RUN_MAIN=true``, as under Werkzeug's reloader, so
apps that guard one-time start-up code with that variable keep working.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

#: The child's exit status that asks the supervisor for a fresh child.
RESTART = 3

#: Set in the child's environment; Werkzeug's name, which apps already test.
CHILD_FLAG = 'WERKZEUG_RUN_MAIN'

#: Seconds between two scans of the watched files.
DEFAULT_INTERVAL = 1.0

#: ``reloader_type`` values accepted; every one polls modification times.
RELOADER_TYPES = ('auto', 'stat', 'watchdog')


def is_child() -> bool:
    """Is this process the serving child of a supervisor?"""
    return os.environ.get(CHILD_FLAG) == 'true'


def supervise() -> int:
    """Run this program again as a child until it exits other than with :data:`RESTART`."""
    # sys.orig_argv is the exact command line, interpreter options and ``-m`` included
    command = [sys.executable, *sys.orig_argv[1:]]
    env = {**os.environ, CHILD_FLAG: 'true'}
    print(' * Restarting with stat', file=sys.stderr, flush=True)
    while True:
        child = subprocess.Popen(command, env=env)
        # Ctrl-C reaches the child (same process group), which stops quietly;
        # here it would only interrupt the wait.  Ignored after the start, so
        # the child does not inherit the ignoring.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            status = child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        if status != RESTART:
            # a child killed by a signal: the shell's convention, 128 + its number
            return 128 - status if status < 0 else status


def _watched(extra_files: Iterable[str], exclude_patterns: Iterable[str]) -> list[str]:
    files = set(extra_files)
    for module in list(sys.modules.values()):
        name = getattr(module, '__file__', None)
        if name and os.path.isfile(name):
            files.add(name)
    patterns = list(exclude_patterns)
    return [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]


def watch(on_change: Callable[[str], Any], extra_files: Iterable[str] = (),
          exclude_patterns: Iterable[str] = (), interval: float = DEFAULT_INTERVAL) -> Any:
    """Start a greenlet that calls ``on_change(path)`` once, when a watched file changes."""
    import gevent

    extra = list(extra_files or ())
    excluded = list(exclude_patterns or ())

    def mtimes() -> dict[str, float]:
        found = {}
        for name in _watched(extra, excluded):
            try:
                found[name] = os.stat(name).st_mtime
            except OSError:
                continue
        return found

    def loop() -> None:
        known = mtimes()
        while True:
            gevent.sleep(interval)
            for name, mtime in mtimes().items():
                if known.get(name, mtime) != mtime:
                    print(f' * Detected change in {name!r}, reloading', file=sys.stderr, flush=True)
                    on_change(name)
                    return
                known.setdefault(name, mtime)

    return gevent.spawn(loop)
