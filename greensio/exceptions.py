"""Public exceptions, with python-socketio's names (``socketio.exceptions``)."""


class SocketIOError(Exception):
    pass


class ConnectionError(SocketIOError):
    pass


class ConnectionRefusedError(ConnectionError):
    """Raise in a connect handler to refuse the connection.

    ``ConnectionRefusedError('msg')`` sends ``{"message": "msg"}``; extra
    arguments travel as ``"data"`` (one value as is, several as a list).
    """

    def __init__(self, *args):
        if len(args) == 0:
            self.error_args = {'message': 'Connection rejected by server'}
        elif len(args) == 1:
            self.error_args = {'message': str(args[0])}
        else:
            self.error_args = {'message': str(args[0])}
            self.error_args['data'] = args[1] if len(args) == 2 else list(args[1:])
        super().__init__(self.error_args['message'])


class TimeoutError(SocketIOError):
    pass


class BadNamespaceError(SocketIOError):
    pass


class DisconnectedError(SocketIOError):
    pass


class QueueFullError(SocketIOError):
    """A message-queue manager's outbox is full: the broker has been unreachable too long."""
