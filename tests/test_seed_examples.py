"""The seed document's ChatNamespace and GameNamespace, run as written on greensio.

The classes live in ``examples/seed_namespaces.py`` (``import greensio as
socketio``); the JS socket.io-client 4.8 plays the users, through
``tests/jsclient.py``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import fence, needs_node, wait_until
from jsclient import JSClient, jsclients

import greensio

pytestmark = [needs_node, pytest.mark.timeout(30)]

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'examples', 'seed_namespaces.py')


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location('seed_namespaces', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = _load_example()


@pytest.fixture
def sio(serve: Any) -> Iterator[Any]:
    server = seed.create_server()
    server.url = serve(server)
    yield server
    server.shutdown()


@pytest.fixture
def js(sio: Any) -> Iterator[JSClient]:
    with jsclients() as make:
        yield make()


def _join(js: JSClient, sio: Any, ns: str, names: list[str], transports: dict[str, list[str]]) -> dict[str, str]:
    """Connect one socket per name to ``ns`` (separate connections); name -> sid."""
    sids = {}
    for name in names:
        msg = js.connect(sio.url + ns, sock=name, forceNew=True, transports=transports.get(name, ['websocket']),
                         wait=True)
        assert msg['type'] == 'connect', msg
        sids[name] = msg['id']
    return sids


def _args(js: JSClient, sock: str, event: str) -> list:
    return [e['args'] for e in js.events(sock=sock, event=event)]


def test_the_example_registers_its_namespaces(sio: Any) -> None:
    assert isinstance(seed.ChatNamespace('/chat'), greensio.Namespace)
    assert set(sio.namespace_handlers) == {'/chat', '/game'}
    assert sio.namespace_handlers['/game'].games == {}


def test_chat_namespace(sio: Any, js: JSClient, capsys: Any) -> None:
    names = ['alice', 'bob', 'carol']
    sids = _join(js, sio, '/chat', names, {'bob': ['polling']})
    chat = sio.namespace_handlers['/chat']

    # on_connect: welcome to the new client only, everyone in the lobby
    for name in names:
        assert js.wait_event('welcome', sock=name)['args'] == [{'message': 'Welcome to chat!'}]
        assert sorted(chat.rooms(sids[name])) == sorted([sids[name], 'lobby'])
    out = capsys.readouterr().out
    assert all(f'Client {sids[n]} connected to chat namespace' in out for n in names)

    # set_username stores the name in the session
    for name, username in (('alice', 'Alice'), ('bob', 'Bob')):
        js.emit('set_username', {'username': username}, sock=name)
        assert js.wait_event('username_set', sock=name)['args'] == [{'success': True}]
        assert chat.get_session(sids[name]) == {'username': username}

    # join_room: status to the joiner, user_joined to the others already there
    js.emit('join_room', {'room': 'general'}, sock='alice')
    assert js.wait_event('status', sock='alice')['args'] == [{'message': 'Joined general'}]
    js.emit('join_room', {'room': 'general'}, sock='bob')
    assert js.wait_event('status', sock='bob')['args'] == [{'message': 'Joined general'}]
    assert js.wait_event('user_joined', sock='alice')['args'] == [{'sid': sids['bob']}]

    # chat_message reaches the room, with the sender's username
    before = time.time()
    js.emit('chat_message', {'message': 'hello general', 'room': 'general'}, sock='alice')
    for name in ('alice', 'bob'):
        (message,) = js.wait_event('message', sock=name)['args']
        assert message['username'] == 'Alice' and message['message'] == 'hello general'
        assert before - 1 <= message['timestamp'] <= time.time() + 1

    # no room: the lobby, where everyone is; no username: Anonymous
    js.emit('chat_message', {'message': 'hi lobby'}, sock='carol')
    for name in names:
        assert js.wait_event('message', sock=name)['args'][0]['username'] == 'Anonymous'

    # leave_room: the room hears user_left, the leaver no longer gets room messages
    js.emit('leave_room', {'room': 'general'}, sock='bob')
    assert js.wait_event('user_left', sock='alice')['args'] == [{'sid': sids['bob']}]
    js.emit('chat_message', {'message': 'bob has gone', 'room': 'general'}, sock='alice')
    assert js.wait_event('message', sock='alice')['args'][0]['message'] == 'bob has gone'
    for name in names:
        fence(js, name, sio, sids[name], namespace='/chat')
    assert [a[0]['message'] for a in _args(js, 'bob', 'message')] == ['hello general', 'hi lobby']
    assert [a[0]['message'] for a in _args(js, 'carol', 'message')] == ['hi lobby']
    assert _args(js, 'bob', 'user_joined') == [] and _args(js, 'carol', 'user_joined') == []
    assert _args(js, 'bob', 'user_left') == [] and _args(js, 'carol', 'user_left') == []

    # the seed's one-argument on_disconnect(self, sid) still runs
    js.disconnect(sock='carol')
    wait_until(lambda: f'Client {sids["carol"]} disconnected from chat' in capsys.readouterr().out,
               what='on_disconnect output')


def test_game_namespace(sio: Any, js: JSClient, capsys: Any) -> None:
    sids = _join(js, sio, '/game', ['p1', 'p2'], {'p2': ['polling']})
    game = sio.namespace_handlers['/game']
    out = capsys.readouterr().out
    assert all(f'Player {sid} connected to game namespace' in out for sid in sids.values())

    js.emit('create_game', {'game_id': 'g1'}, sock='p1')
    assert js.wait_event('game_created', sock='p1')['args'] == [{'game_id': 'g1'}]
    assert game.games == {'g1': {'players': [sids['p1']], 'status': 'waiting'}}

    # an unknown game id is ignored
    js.emit('join_game', {'game_id': 'nope'}, sock='p2')
    js.emit('join_game', {'game_id': 'g1'}, sock='p2')
    for name in ('p1', 'p2'):
        assert js.wait_event('player_joined', sock=name)['args'] == [{'sid': sids['p2']}]
        # emit(..., room=game_id) without data: an event with no arguments
        assert js.wait_event('game_started', sock=name)['args'] == []
    assert game.games == {'g1': {'players': [sids['p1'], sids['p2']], 'status': 'playing'}}
    for name in ('p1', 'p2'):
        fence(js, name, sio, sids[name], namespace='/game')
        assert len(_args(js, name, 'player_joined')) == 1 and len(_args(js, name, 'game_started')) == 1
    assert _args(js, 'p2', 'game_created') == []
