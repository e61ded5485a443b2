"""Ctrl-C stops a greensio server with one line, no traceback, exit status 0.

Python's default SIGINT handler raised KeyboardInterrupt inside gevent's hub,
which printed it with a traceback through gevent's internals.  Each case
starts a real process (``greensio.run`` in a tiny script, the chat demo on
``greensio.flask.SocketIO.run``), waits for its "greensio serving on" line,
connects a client, sends SIGINT and reads everything the process wrote.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import gevent
import pytest
import rawclient
from demo_process import ROOT, child_env

pytestmark = pytest.mark.timeout(60)

STOPPED = 'greensio stopped (interrupted)'

RUN_SCRIPT = textwrap.dedent("""
    import greensio

    sio = greensio.Server()
    greensio.run(greensio.WSGIApp(sio), port=0)
    print('run() returned')
""")


def interrupt(cmd: list[str]) -> tuple[int, str]:
    """Start ``cmd``, SIGINT it once it serves a connected client; ``(exit status, output)``."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        with gevent.Timeout(20, AssertionError(f'{cmd} did not print its URL')):
            first = proc.stdout.readline()
        assert first.startswith('greensio serving on '), first
        client, _ = rawclient.connect_sio(first.split()[-1])  # a live websocket must not hold the exit
        try:
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=10)  # promptly
        finally:
            client.close()
        return proc.returncode, first + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def assert_clean_stop(status: int, output: str) -> None:
    assert status == 0, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
    assert output.count(STOPPED) == 1, output


def test_ctrl_c_stops_greensio_run_cleanly() -> None:
    status, output = interrupt([sys.executable, '-c', RUN_SCRIPT])
    assert_clean_stop(status, output)
    assert output.splitlines()[-2:] == [STOPPED, 'run() returned']  # run() returns: the program goes on


def test_ctrl_c_stops_the_chat_demo_cleanly() -> None:
    # examples.chat serves with greensio.flask.SocketIO.run, as `bash examples/demo.sh` does (it execs it)
    status, output = interrupt([sys.executable, '-m', 'examples.chat', '--port', '0'])
    assert_clean_stop(status, output)
    assert output.splitlines()[-1] == STOPPED
