// The chat page: one Socket.IO connection to the /chat namespace.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const joined = new Set(['lobby']);
  const offered = new Set();
  const history = new Map(); // room -> [entries]
  let current = 'lobby';

  const socket = io('/chat', { transports: window.CHAT_TRANSPORTS });

  function setStatus(online) {
    $('status').textContent = online ? 'online' : 'offline';
    $('status').className = 'status ' + (online ? 'online' : 'offline');
    $('transport').textContent = online ? socket.io.engine.transport.name : '-';
  }

  function add(room, entry) {
    if (!history.has(room)) history.set(room, []);
    history.get(room).push(entry);
    if (room === current) render(entry);
  }

  function render(entry) {
    const li = document.createElement('li');
    if (entry.notice) {
      li.className = 'notice';
      li.textContent = entry.notice;
    } else {
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = entry.username;
      const time = document.createElement('span');
      time.className = 'time';
      time.textContent = new Date(entry.timestamp * 1000).toLocaleTimeString();
      li.append(who, document.createTextNode(entry.message), time);
    }
    $('messages').append(li);
    $('messages').scrollTop = $('messages').scrollHeight;
  }

  function show(room) {
    current = room;
    $('room-title').textContent = '#' + room;
    $('messages').replaceChildren();
    (history.get(room) || []).forEach(render);
    renderRooms();
  }

  function renderRooms() {
    $('rooms').replaceChildren();
    for (const room of new Set([...offered, ...joined])) {
      const li = document.createElement('li');
      li.textContent = '#' + room;
      li.dataset.room = room;
      if (joined.has(room)) li.classList.add('joined');
      if (room === current) li.classList.add('current');
      if (joined.has(room) && room !== 'lobby') {
        const leave = document.createElement('button');
        leave.textContent = 'leave';
        leave.onclick = (e) => { e.stopPropagation(); leaveRoom(room); };
        li.append(leave);
      }
      li.onclick = () => (joined.has(room) ? show(room) : joinRoom(room));
      $('rooms').append(li);
    }
  }

  function joinRoom(room) {
    socket.emit('join_room', { room }, (res) => {
      if (!res || !res.success) return;
      joined.add(res.room);
      show(res.room);
    });
  }

  function leaveRoom(room) {
    socket.emit('leave_room', { room }, (res) => {
      if (!res || !res.success) return;
      joined.delete(room);
      show('lobby');
    });
  }

  socket.on('connect', () => {
    setStatus(true);
    socket.io.engine.once('upgrade', () => setStatus(true));
    const name = $('username').value.trim();
    if (name) socket.emit('set_username', { username: name });
    for (const room of joined) if (room !== 'lobby') socket.emit('join_room', { room });
  });
  socket.on('disconnect', () => setStatus(false));
  socket.on('welcome', (data) => {
    $('worker').textContent = data.worker;
    data.rooms.forEach((r) => offered.add(r));
    renderRooms();
    add('lobby', { notice: data.message });
  });
  socket.on('username_set', (data) => add(current, { notice: 'You are now ' + data.username }));
  socket.on('status', (data) => add(data.room, { notice: data.message }));
  socket.on('user_joined', (data) => add(data.room, { notice: data.username + ' joined' }));
  socket.on('user_left', (data) => add(data.room, { notice: data.username + ' left' }));
  socket.on('message', (data) => add(data.room || 'lobby', data));

  $('name-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const username = $('username').value.trim();
    if (username) socket.emit('set_username', { username });
  });
  $('room-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = $('new-room').value.trim();
    if (room) joinRoom(room);
    $('new-room').value = '';
  });
  $('message-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const message = $('message').value;
    if (!message.trim()) return;
    socket.emit('chat_message', { message, room: current });
    $('message').value = '';
  });
  renderRooms();
})();
