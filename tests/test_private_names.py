"""No module of greensio uses a private name of another library, nor subclasses one's class, unless listed here.

A private name (``obj._name``, ``from lib import _name``) of gevent,
gevent-websocket, python-engineio, werkzeug... may change in any release
of that library without notice; a subclass of a third-party class silently
depends on how that class calls its own methods.  The scan is static
(``ast``): an attribute ``_name`` counts as greensio's own when greensio
defines that name somewhere (a function, a class, an assignment, a slot),
anything else is another library's.  Each exception below says why it
cannot be avoided; a new one fails the test until it is listed, and a
listed one that disappears fails it too, so the list stays true.  A
subclass must not override a private name of its base either.

Not caught by the scan, and kept on purpose: attributes without an
underscore that their library does not document.  gevent-websocket's
``environ['wsgi.websocket'].handler`` (its pywsgi handler's ``socket`` and
``rfile``) hands the upgraded connection over to greensio's websocket
transport; pywsgi's ``environ['wsgi.input']`` gives its connection's reader
(``rfile``, for TCP_NODELAY once per connection) and, for a refused body,
``content_length``/``position``/``chunked_input`` so that pywsgi does not
read a body nobody wants before closing.  A long-polling answer's WSGI result
(``engineio.direct.KeptAlive``) reaches pywsgi's handler as
``start_response.__self__`` and reads its ``application``, ``result``,
``headers_sent``, ``rfile``, ``socket``, ``server.log`` and
``client_address``, and sets ``close_connection``, to go on serving the
connection's next polling requests.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / 'greensio'

#: (module, private name) -> why greensio must read it
ALLOWED_PRIVATE: dict[tuple[str, str], str] = {
    ('greensio/flask_testing.py', '_add_cookies_to_wsgi'):
        "the Flask test client's cookies reach the Socket.IO connect environ only this way (werkzeug has no "
        "public call for it; Flask-SocketIO's test client, whose API this one matches, uses the same)",
}
#: (module, class, private name of its third-party base it overrides) -> why
ALLOWED_OVERRIDES: dict[tuple[str, str, str], str] = {}
#: Documented public names that start with an underscore (namedtuple's API).
PUBLIC_UNDERSCORED = {'_replace', '_asdict', '_fields', '_make', '_field_defaults'}

#: (module, class, third-party base) -> why the subclass is needed
ALLOWED_SUBCLASSES: dict[tuple[str, str, str], str] = {
    ('greensio/serving.py', 'GreenHandler', 'geventwebsocket.handler.WebSocketHandler'):
        "greensio's own server is pywsgi with gevent-websocket's upgrade; the handler adds TCP_NODELAY, a "
        'lighter header parser and long-polling answered from the parsed request, through public hooks only '
        '(handle, read_requestline, read_request, get_environ, handle_one_response, run_application, '
        'log_request)',
    ('greensio/gunicorn.py', 'GunicornHandler', 'gunicorn.workers.ggevent.PyWSGIHandler'):
        "gunicorn's access log and environ keys for greensio's handler (gunicorn's documented worker "
        'extension: a handler class)',
    ('greensio/gunicorn.py', 'GeventWebSocketWorker', 'gunicorn.workers.ggevent.GeventPyWSGIWorker'):
        "a gunicorn worker is a subclass of one of gunicorn's workers, naming its handler in wsgi_handler "
        '(the documented way)',
    ('greensio/flask.py', '_EventContext', 'flask.ctx.RequestContext'):
        "a Socket.IO event runs in a Flask request context, as with Flask-SocketIO; the subclass overrides "
        "only Flask's documented match_request hook",
    ('greensio/flask.py', '_ManagedSession', 'flask.sessions.SessionMixin'):
        "SessionMixin is Flask's documented interface for a session object (a mixin, no behaviour overridden)",
    ('greensio/engineio/async_drivers/tornado.py', 'Handler', 'tornado.websocket.WebSocketHandler'):
        "tornado serves a path only through a subclass of its request handler (its documented way); the "
        'subclass implements the public get/open/on_message/on_close hooks',
}


def _modules() -> list[pathlib.Path]:
    return sorted(ROOT.rglob('*.py'))


def _rel(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT.parent))


def _greensio_names(trees: dict[pathlib.Path, ast.AST]) -> set[str]:
    """Every name greensio itself defines: functions, classes, assigned names and attributes, slots."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == '__slots__' for t in node.targets):
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        names.add(const.value)
            elif isinstance(node, ast.Call):
                # setattr(obj, '_name', ...) and getattr(obj, '_name'...) of greensio's own objects
                func = node.func
                if isinstance(func, ast.Name) and func.id == 'setattr' and len(node.args) >= 2:
                    arg = node.args[1]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.add(arg.value)
    return names


def _private(name: str) -> bool:
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__')) \
        and name not in PUBLIC_UNDERSCORED


def _third_party(module: str) -> bool:
    top = module.split('.')[0]
    return bool(top) and top != 'greensio' and top not in sys.stdlib_module_names


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, for names imported from third-party modules."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name):
                    found[alias.asname or alias.name.split('.')[0]] = alias.name if alias.asname else \
                        alias.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _third_party(node.module):
            for alias in node.names:
                found[alias.asname or alias.name] = f'{node.module}.{alias.name}'
    return found


def _dotted(node: ast.AST, imports: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in imports:
        return '.'.join([imports[node.id], *reversed(parts)])
    return None


def _scan() -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    trees = {path: ast.parse(path.read_text(), str(path)) for path in _modules()}
    own = _greensio_names(trees)
    private: set[tuple[str, str]] = set()
    subclasses: set[tuple[str, str, str]] = set()
    for path, tree in trees.items():
        imports = _imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
                private.add((_rel(path), node.attr))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _third_party(node.module):
                private.update((_rel(path), alias.name) for alias in node.names if _private(alias.name))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ('getattr', 'setattr', 'hasattr') and len(node.args) >= 2:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _private(arg.value) \
                        and arg.value not in own:
                    private.add((_rel(path), arg.value))
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    origin = _dotted(base, imports)
                    if origin is not None:
                        subclasses.add((_rel(path), node.name, origin))
    return private, subclasses


def test_no_private_name_of_another_library() -> None:
    private, _ = _scan()
    unlisted = sorted(private - set(ALLOWED_PRIVATE))
    assert not unlisted, f'private names of other libraries (list them with a reason, or avoid them): {unlisted}'
    stale = sorted(set(ALLOWED_PRIVATE) - private)
    assert not stale, f'listed but no longer used (take them off the list): {stale}'


def test_no_subclass_of_a_third_party_class() -> None:
    _, subclasses = _scan()
    unlisted = sorted(subclasses - set(ALLOWED_SUBCLASSES))
    assert not unlisted, f'subclasses of third-party classes (list them with a reason, or avoid them): {unlisted}'
    stale = sorted(set(ALLOWED_SUBCLASSES) - subclasses)
    assert not stale, f'listed but no longer there (take them off the list): {stale}'


def _resolve(dotted: str) -> object:
    module, _, name = dotted.rpartition('.')
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:  # a module path that is really a class path (engineio.async_drivers...)
        return getattr(_resolve(module), name)


def test_no_subclass_overrides_a_private_name() -> None:
    # overriding a base's private method (as ``_write_with_headers`` was) is the
    # same dependency as calling one
    overrides = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        imports = _imports(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [origin for origin in (_dotted(b, imports) for b in node.bases) if origin is not None]
            if not bases:
                continue
            defined = {item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
            defined |= {t.id for item in node.body if isinstance(item, (ast.Assign, ast.AnnAssign))
                        for t in (item.targets if isinstance(item, ast.Assign) else [item.target])
                        if isinstance(t, ast.Name)}
            for origin in bases:
                try:
                    base = _resolve(origin)
                except (ImportError, AttributeError):  # an optional dependency not installed here
                    continue
                overrides += [(_rel(path), node.name, name) for name in sorted(defined)
                              if _private(name) and hasattr(base, name)]
    unlisted = sorted(set(overrides) - set(ALLOWED_OVERRIDES))
    assert not unlisted, f'private names of third-party base classes overridden: {unlisted}'


def test_every_exception_has_a_reason() -> None:
    for reason in (*ALLOWED_PRIVATE.values(), *ALLOWED_SUBCLASSES.values(), *ALLOWED_OVERRIDES.values()):
        assert len(reason) > 20
