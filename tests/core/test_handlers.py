"""Handler resolution order (python-socketio 5.x's) and signature
inspection (``accepts`` / ``call_trimmed``).  No sockets, no sleeps."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from greensio._core.handlers import HandlerRegistry, accepts, call_trimmed

RESERVED = frozenset({'connect', 'disconnect'})


class FakeNamespace:
    def __init__(self, name: str) -> None:
        self.name = name

    def trigger_event(self, *args: Any) -> Any:
        return (self.name, *args)


def h(name: str) -> Any:
    def handler(*args: Any) -> Any:
        return (name, *args)

    handler.__name__ = name
    return handler


def full_registry(client: bool = False) -> HandlerRegistry:
    reg = HandlerRegistry(RESERVED, client=client)
    reg.handlers['/ns'] = {'ev': h('exact'), '*': h('ns-star'), 'connect': h('ns-connect')}
    reg.handlers['*'] = {'ev': h('star-ev'), 'other': h('star-other'), '*': h('star-star'),
                         'connect': h('star-connect')}
    reg.namespace_handlers['/ns'] = FakeNamespace('class')
    reg.namespace_handlers['*'] = FakeNamespace('class-star')
    return reg


def resolved(reg: HandlerRegistry, namespace: str, event: str) -> tuple[str, tuple[str, ...]] | None:
    found = reg.resolve(namespace, event)
    if found is None:
        return None
    fn, lead = found
    owner = getattr(fn, '__self__', None)
    return (owner.name if isinstance(owner, FakeNamespace) else fn.__name__), lead


def test_resolution_order_step_by_step() -> None:
    reg = full_registry()
    # 1. handlers[ns][event]
    assert resolved(reg, '/ns', 'ev') == ('exact', ())
    # 2. handlers[ns]['*'] gets the event name first
    assert resolved(reg, '/ns', 'x') == ('ns-star', ('x',))
    del reg.handlers['/ns']['*']
    # 3. handlers['*'][event] gets the namespace first
    assert resolved(reg, '/ns', 'other') == ('star-other', ('/ns',))
    # 4. handlers['*']['*'] gets event and namespace
    assert resolved(reg, '/ns', 'x') == ('star-star', ('x', '/ns'))
    reg.handlers['*'].pop('*')
    # 5. the class-based namespace
    assert resolved(reg, '/ns', 'x') == ('class', ('x',))
    del reg.namespace_handlers['/ns']
    # 6. the class-based '*' namespace gets event and namespace
    assert resolved(reg, '/ns', 'x') == ('class-star', ('x', '/ns'))
    del reg.namespace_handlers['*']
    # 7. nothing
    assert resolved(reg, '/ns', 'x') is None


def test_function_handlers_win_over_class_namespaces() -> None:
    reg = full_registry()
    assert resolved(reg, '/ns', 'ev')[0] == 'exact'
    assert resolved(reg, '/elsewhere', 'ev') == ('star-ev', ('/elsewhere',))
    assert resolved(reg, '/elsewhere', 'x') == ('star-star', ('x', '/elsewhere'))


def test_reserved_events_never_reach_an_event_catch_all() -> None:
    reg = HandlerRegistry(RESERVED)
    reg.handlers['/'] = {'*': h('star')}
    reg.handlers['*'] = {'*': h('star-star')}
    assert resolved(reg, '/', 'connect') is None
    assert resolved(reg, '/', 'disconnect') is None
    assert resolved(reg, '/', 'message') == ('star', ('message',))  # not reserved


def test_reserved_events_do_reach_a_namespace_catch_all_and_classes() -> None:
    reg = full_registry()
    assert resolved(reg, '/ns', 'connect') == ('ns-connect', ())
    assert resolved(reg, '/other', 'connect') == ('star-connect', ('/other',))
    assert resolved(reg, '/other', 'disconnect') == ('class-star', ('disconnect', '/other'))
    reg.handlers['*'].clear()
    del reg.handlers['/ns']['connect']
    assert resolved(reg, '/ns', 'connect') == ('class', ('connect',))


def test_server_tries_the_star_namespace_even_when_the_namespace_has_handlers() -> None:
    reg = HandlerRegistry(RESERVED)
    reg.handlers['/ns'] = {'unrelated': h('unrelated')}
    reg.handlers['*'] = {'ev': h('star-ev')}
    assert resolved(reg, '/ns', 'ev') == ('star-ev', ('/ns',))


def test_client_tries_the_star_namespace_only_for_namespaces_without_handlers() -> None:
    reg = HandlerRegistry(RESERVED, client=True)
    reg.handlers['/ns'] = {'unrelated': h('unrelated')}
    reg.handlers['*'] = {'ev': h('star-ev'), '*': h('star-star')}
    assert resolved(reg, '/ns', 'ev') is None
    assert resolved(reg, '/bare', 'ev') == ('star-ev', ('/bare',))
    assert resolved(reg, '/bare', 'x') == ('star-star', ('x', '/bare'))


def test_resolution_does_not_call_anything() -> None:
    calls = []
    reg = HandlerRegistry(RESERVED)
    reg.handlers['/'] = {'ev': lambda *a: calls.append(a)}
    _fn, lead = reg.resolve('/', 'ev')
    assert calls == [] and lead == ()


# -- signatures ------------------------------------------------------------------------------


def two(a: Any, b: Any) -> Any:
    return (a, b)


def three(a: Any, b: Any, c: Any = None) -> Any:
    return (a, b, c)


def star(*args: Any) -> Any:
    return args


def kw_only(a: Any, *, b: Any = None) -> Any:
    return a


def pos_only(a: Any, b: Any, /) -> Any:
    return (a, b)


class Obj:
    def method(self, sid: Any, environ: Any) -> Any:
        return (sid, environ)

    def __call__(self, sid: Any) -> Any:
        return sid

    __hash__ = None  # type: ignore[assignment]  # an unhashable callable object


@pytest.mark.parametrize(
    ('fn', 'n', 'ok'),
    [
        (two, 2, True), (two, 3, False), (two, 1, True),
        (three, 3, True), (three, 4, False),
        (star, 99, True),
        (kw_only, 1, True), (kw_only, 2, False),
        (pos_only, 2, True), (pos_only, 3, False),
        (Obj().method, 2, True), (Obj().method, 3, False),
        (Obj(), 1, True), (Obj(), 2, False),
        (functools.partial(three, 1), 2, True), (functools.partial(three, 1), 3, False),
        (print, 5, True),  # a builtin without a signature: assume it copes
        (lambda: None, 0, True), (lambda: None, 1, False),
    ],
)
def test_accepts(fn: Any, n: int, ok: bool) -> None:
    assert accepts(fn, n) is ok


def test_call_trimmed_drops_optional_trailing_arguments() -> None:
    assert call_trimmed(two, ('sid', 'environ', 'auth'), 1) == ('sid', 'environ')
    assert call_trimmed(three, ('sid', 'environ', 'auth'), 1) == ('sid', 'environ', 'auth')
    assert call_trimmed(star, (1, 2, 3), 1) == (1, 2, 3)
    assert call_trimmed(Obj().method, ('sid', 'env', 'auth'), 1) == ('sid', 'env')


def test_call_trimmed_never_drops_more_than_allowed() -> None:
    with pytest.raises(TypeError):
        call_trimmed(two, (1, 2, 3, 4), 1)


def test_call_trimmed_does_not_swallow_type_errors_from_the_handler() -> None:
    calls = []

    def handler(sid: Any, environ: Any, auth: Any) -> None:
        calls.append(auth)
        raise TypeError('bug inside the handler')

    with pytest.raises(TypeError, match='bug inside'):
        call_trimmed(handler, ('sid', 'env', 'auth'), 1)
    assert calls == ['auth']  # called once, not retried with fewer arguments
