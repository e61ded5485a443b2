"""How python-socketio shapes event payloads: one ``data`` value ↔ a list of arguments.

Core ring.  A Socket.IO event or ack carries a list of arguments, while
python-socketio's API passes one value.  The rule, in both directions, lives
here once for the server, the client, the managers, the test client and the
Flask integration:

- :func:`to_args` (a value becomes arguments): ``emit(event, data)``, a
  handler's return value sent as its ack.  A tuple is several arguments,
  ``None`` is none, anything else (a list too) is one argument.
- :func:`from_args` (arguments become a value): the ack that ``call()``
  returns, the test clients' acks, Flask-SocketIO's ``emit(event, *args)``.
  No argument is ``None``, one is itself, several are a tuple.
"""

from collections.abc import Sequence
from typing import Any


def to_args(data: Any, *, none_is_an_argument: bool = False) -> list[Any]:
    """``data`` as the argument list of an event or an ack.

    :param none_is_an_argument: keep ``None`` as one argument (``[None]``)
        instead of none.  The message-queue managers publish an emit's
        ``data`` this way because python-socketio does, so workers of both
        libraries read each other's messages; the receiving worker's
        :func:`from_args` turns ``[None]`` back into ``None``, which its
        clients receive as no argument, as when the emit is local.
    """
    if isinstance(data, tuple):
        return list(data)
    if data is None and not none_is_an_argument:
        return []
    return [data]


def from_args(args: Sequence[Any], *, several_as_list: bool = False) -> Any:
    """An argument list as one value: ``None`` for none, the value for one, a tuple for several.

    :param several_as_list: several arguments as a list instead of a tuple,
        which is what Flask-SocketIO's test client returns for an ack.
    """
    if len(args) == 1:
        return args[0]
    if not args:
        return None
    return list(args) if several_as_list else tuple(args)
