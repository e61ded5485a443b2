"""Which user callable handles an event, and how it must be called.

Resolution order is python-socketio 5.x's, so handlers resolve alike: exact handler, the
namespace's ``'*'`` event, the ``'*'`` namespace, ``'*'``/``'*'``, then the
class-based namespace, then the class-based ``'*'`` namespace.  Leading
arguments (event name, namespace) for catch-alls come back with the handler.
Signatures are inspected once, never guessed by catching ``TypeError``.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]


class HandlerRegistry:
    def __init__(self, reserved_events: frozenset[str], client: bool = False) -> None:
        self.reserved_events = reserved_events
        self.client = client
        self.handlers: dict[str, dict[str, Handler]] = {}
        self.namespace_handlers: dict[str, Any] = {}

    def on(self, event: str, handler: Handler | None = None, namespace: str | None = None) -> Any:
        """python-socketio's ``on()``: register ``handler``, or return a decorator that does."""
        namespace = namespace or '/'

        def set_handler(handler: Handler) -> Handler:
            self.handlers.setdefault(namespace, {})[event] = handler
            return handler

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def resolve(self, namespace: str, event: str) -> tuple[Handler, tuple[str, ...]] | None:
        catch_all_ok = event not in self.reserved_events
        handlers = self.handlers
        ns_handlers = handlers.get(namespace)
        if ns_handlers is not None:
            if event in ns_handlers:
                return ns_handlers[event], ()
            if catch_all_ok and '*' in ns_handlers:
                return ns_handlers['*'], (event,)
        if '*' in handlers and (ns_handlers is None or not self.client):
            star = handlers['*']
            if event in star:
                return star[event], (namespace,)
            if catch_all_ok and '*' in star:
                return star['*'], (event, namespace)
        instance = self.namespace_handlers.get(namespace)
        if instance is not None:
            return instance.trigger_event, (event,)
        instance = self.namespace_handlers.get('*')
        if instance is not None:
            return instance.trigger_event, (event, namespace)
        return None


@functools.lru_cache(maxsize=4096)
def _max_positional(fn: Handler) -> float:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return float('inf')
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return float('inf')
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def accepts(fn: Handler, n_args: int) -> bool:
    """Can ``fn`` be called with ``n_args`` positional arguments?"""
    target = getattr(fn, '__func__', fn)
    extra = 1 if target is not fn else 0  # bound method: self is implicit
    try:
        return _max_positional(target) - extra >= n_args
    except TypeError:  # unhashable callable object
        return _max_positional.__wrapped__(fn) >= n_args


def call_trimmed(fn: Handler, args: tuple[Any, ...], optional: int) -> Any:
    """Call ``fn(*args)``, dropping up to ``optional`` trailing arguments it cannot take.

    Used for the handlers python-socketio lets users declare with or
    without their last argument: connect ``auth`` and disconnect ``reason``.
    """
    while optional and not accepts(fn, len(args)):
        args = args[:-1]
        optional -= 1
    return fn(*args)


def event_decorator(on: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """python-socketio's ``event()``: ``on()`` with the decorated function's name as the event."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return on(args[0].__name__)(args[0])

    def set_handler(handler: Handler) -> Handler:
        registered: Handler = on(handler.__name__, *args, **kwargs)(handler)
        return registered

    return set_handler
