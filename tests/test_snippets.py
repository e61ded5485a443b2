"""The snippets of README.md and docs/ run as written.

Every Python snippet compiles.  The quick starts (README.md and
docs/quickstart.rst) are written to files under the names they give
(``<!-- file: app.py -->`` in Markdown, ``:caption: app.py`` in
reStructuredText), with ``node_modules`` from the test suite's npm install;
``app.py`` is started, serves its page and the browser client, and
``client.py`` gets its ack from it.  The Flask page's app answers an event.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import urllib.request
from typing import NamedTuple

import gevent
import pytest
from demo_process import ROOT, stop

JS_MODULES = os.path.join(ROOT, 'tests', 'js', 'node_modules')


class Snippet(NamedTuple):
    source: str  # 'README.md:12'
    language: str
    name: str | None  # the file name the text gives it
    code: str


def markdown_snippets(path: str) -> list[Snippet]:
    text = pathlib.Path(path).read_text()
    found = []
    for match in re.finditer(r'(?:<!-- file: (\S+) -->\n)?```(\w*)\n(.*?)```', text, re.DOTALL):
        line = text.count('\n', 0, match.start()) + 1
        found.append(Snippet(f'{os.path.relpath(path, ROOT)}:{line}', match[2], match[1], match[3]))
    return found


def rst_snippets(path: str) -> list[Snippet]:
    lines = pathlib.Path(path).read_text().split('\n')
    found = []
    for i, line in enumerate(lines):
        head = re.match(r'\.\. code-block:: (\w+)$', line)
        if not head:
            continue
        j, name = i + 1, None
        while j < len(lines) and lines[j].strip().startswith(':'):
            option = re.match(r'\s+:caption: (\S+)', lines[j])
            name = option[1] if option else name
            j += 1
        body = []
        for text in lines[j:]:
            if text and not text.startswith('    '):
                break
            body.append(text[4:])
        found.append(Snippet(f'{os.path.relpath(path, ROOT)}:{i + 1}', head[1], name, '\n'.join(body).strip() + '\n'))
    return found


def all_snippets() -> list[Snippet]:
    docs = os.path.join(ROOT, 'docs')
    found = markdown_snippets(os.path.join(ROOT, 'README.md'))
    for name in sorted(os.listdir(docs)):
        if name.endswith('.rst'):
            found += rst_snippets(os.path.join(docs, name))
    return found


PYTHON = [s for s in all_snippets() if s.language == 'python']


def test_the_docs_have_snippets():
    names = {(s.source.split(':')[0], s.name) for s in all_snippets() if s.name}
    for doc in ('README.md', 'docs/quickstart.rst'):
        assert {(doc, 'app.py'), (doc, 'index.html'), (doc, 'client.py')} <= names, doc
    assert len(PYTHON) >= 15


@pytest.mark.parametrize('snippet', PYTHON, ids=[s.source for s in PYTHON])
def test_python_snippet_compiles(snippet):
    compile(snippet.code, snippet.source, 'exec')


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return response.read()


@pytest.mark.timeout(60)
@pytest.mark.parametrize('doc', ['README.md', 'docs/quickstart.rst'])
def test_quick_start_serves_its_page_and_answers(doc, tmp_path):
    if not os.path.isdir(JS_MODULES):
        pytest.skip('npm packages not installed (bash tests/run.sh installs them)')
    files = {s.name: s.code for s in all_snippets() if s.source.startswith(doc + ':') and s.name}
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    os.symlink(JS_MODULES, tmp_path / 'node_modules')
    assert 'port=5000' in files['app.py'] and '5000' in files['client.py']
    (tmp_path / 'app.py').write_text(files['app.py'].replace('port=5000', 'port=0'))
    env = {**os.environ, 'PYTHONPATH': ROOT, 'PYTHONUNBUFFERED': '1'}
    server = subprocess.Popen([sys.executable, 'app.py'], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with gevent.Timeout(20, AssertionError('app.py did not start')):
            line = server.stdout.readline()
        assert line.startswith('greensio serving on '), line + stop(server)
        url = line.split()[-1]
        assert _get(url + '/').decode() == files['index.html']
        assert len(_get(url + '/socket.io.min.js')) > 10_000
        port = url.rsplit(':', 1)[1]
        client = subprocess.run([sys.executable, '-c', files['client.py'].replace('5000', port)], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=30, check=False)
        assert client.returncode == 0 and client.stdout.strip() == 'ok', client.stdout + client.stderr
    finally:
        output = stop(server)
    assert 'connected ' in output and 'Traceback' not in output, output


def test_flask_page_app_answers():
    snippet = next(s for s in PYTHON if s.source.startswith('docs/flask.rst') and 'SocketIO(app)' in s.code)
    scope = {'__name__': 'flask_snippet'}
    exec(compile(snippet.code, snippet.source, 'exec'), scope)  # noqa: S102 - the docs' own code is the subject
    app, socketio = scope['app'], scope['socketio']
    http = app.test_client()
    assert http.get('/login/ada').data == b'hello ada'
    alice = socketio.test_client(app, flask_test_client=http)
    bob = socketio.test_client(app)
    assert alice.emit('say', 'hi', callback=True) == 'sent'
    assert bob.get_received() == [{'name': 'said', 'args': [{'from': 'ada', 'text': 'hi'}], 'namespace': '/'}]
    assert alice.get_received() == []
