"""The README's demo command, ``bash examples/demo.sh``, starts the chat demo.

It runs only from the repository's own ``.venv`` (the one ``tests/run.sh``
makes), which the script reuses: it installs greensio there only if setup.py
changed since its last run, and runs ``npm ci`` in examples/chat if needed.
"""

import os
import subprocess
import sys
import urllib.request

import gevent
import pytest

try:
    from demo_process import ROOT, stop
except ImportError:  # pragma: no cover
    from tests.demo_process import ROOT, stop

VENV = os.path.join(ROOT, '.venv')

pytestmark = pytest.mark.skipif(os.path.realpath(sys.prefix) != os.path.realpath(VENV),
                                reason='the demo script uses the repository .venv; run the tests from it')


@pytest.mark.timeout(300)
def test_demo_script_serves_the_chat_page():
    env = {k: v for k, v in os.environ.items() if k != 'GREENSIO_SOCKETIO_JS'}  # the script's own npm install
    proc = subprocess.Popen(['bash', os.path.join(ROOT, 'examples', 'demo.sh'), '--port', '0'], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        with gevent.Timeout(240, AssertionError('the demo did not start')):
            for line in proc.stdout:
                seen.append(line)
                if line.startswith('greensio serving on '):
                    break
        assert seen and seen[-1].startswith('greensio serving on '), ''.join(seen)
        url = seen[-1].split()[-1]
        with urllib.request.urlopen(url + '/', timeout=5) as page:
            assert b'greensio chat' in page.read()
        with urllib.request.urlopen(url + '/socket.io.min.js', timeout=5) as client:
            assert client.status == 200 and len(client.read()) > 10_000
    finally:
        stop(proc)
