"""The class-based namespaces of the seed document, run on greensio.

``ChatNamespace`` and ``GameNamespace`` are the usage example the
project was started from, with its lost indentation restored and
``import time`` added (the example calls ``time.time()`` without it); the
code is otherwise as written.  The seed's registration section calls
``GameNamespace('/game')``, but its ``__init__`` takes no argument and
sets ``'/game'`` itself, so ``GameNamespace()`` is registered here.

Run ``python examples/seed_namespaces.py`` to serve them on port 5000.
"""

import time

import greensio as socketio


class ChatNamespace(socketio.Namespace):
    def on_connect(self, sid, environ):
        print(f'Client {sid} connected to chat namespace')
        self.enter_room(sid, 'lobby')
        self.emit('welcome', {'message': 'Welcome to chat!'}, room=sid)

    def on_disconnect(self, sid):
        print(f'Client {sid} disconnected from chat')

    def on_join_room(self, sid, data):
        room = data['room']
        self.enter_room(sid, room)
        self.emit('status', {'message': f'Joined {room}'}, room=sid)
        self.emit('user_joined', {'sid': sid}, room=room, skip_sid=sid)

    def on_leave_room(self, sid, data):
        room = data['room']
        self.leave_room(sid, room)
        self.emit('user_left', {'sid': sid}, room=room)

    def on_chat_message(self, sid, data):
        # Get user info from session
        with self.session(sid) as session:
            username = session.get('username', 'Anonymous')
        room = data.get('room', 'lobby')
        message = {
            'username': username,
            'message': data['message'],
            'timestamp': time.time()
        }

        # Broadcast to room
        self.emit('message', message, room=room)

    def on_set_username(self, sid, data):
        with self.session(sid) as session:
            session['username'] = data['username']
        self.emit('username_set', {'success': True}, room=sid)


class GameNamespace(socketio.Namespace):
    def __init__(self):
        super().__init__('/game')
        self.games = {}

    def on_connect(self, sid, environ):
        print(f'Player {sid} connected to game namespace')

    def on_create_game(self, sid, data):
        game_id = data['game_id']
        self.games[game_id] = {'players': [sid], 'status': 'waiting'}
        self.enter_room(sid, game_id)
        self.emit('game_created', {'game_id': game_id}, room=sid)

    def on_join_game(self, sid, data):
        game_id = data['game_id']
        if game_id in self.games:
            self.games[game_id]['players'].append(sid)
            self.enter_room(sid, game_id)
            self.emit('player_joined', {'sid': sid}, room=game_id)

            # Start game if enough players
            if len(self.games[game_id]['players']) >= 2:
                self.games[game_id]['status'] = 'playing'
                self.emit('game_started', room=game_id)


def create_server(**kwargs):
    """The seed's registration section (``GameNamespace()``, see above)."""
    # Register namespaces with server
    sio = socketio.Server(**kwargs)
    sio.register_namespace(ChatNamespace('/chat'))
    sio.register_namespace(GameNamespace())
    return sio


if __name__ == '__main__':
    socketio.run(socketio.WSGIApp(create_server()), port=5000)
