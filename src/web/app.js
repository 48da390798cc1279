// hubbub reference web client. Plain ES modules, no build step, no third-party code.
// It uses only the public API v1: REST to read and write (api.js), one read-only WebSocket to
// receive (stream.js). See docs/web-client notes in docs/ for how front ends should do the same.

import { api, ApiError, NetworkError, sendMessage, uploadPhoto, newKey } from './api.js';
import { Stream } from './stream.js';

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  me: null,
  users: new Map(), // id -> user JSON
  rooms: new Map(), // id -> room JSON (+ unread_count)
  timelines: new Map(), // room id -> { ids: [message id], byId: Map, loaded, nextBefore }
  pending: new Map(), // room id -> [{ local, key, body, file, previewUrl, attachmentId, status, error }]
  current: null, // open room id
  friends: [],
  incoming: [],
  outgoing: [],
  stream: null,
  readTimer: null,
  loading: 0, // REST reloads in flight: socket events wait in `queue` meanwhile
  queue: [],
  typing: new Map(), // room id -> Map(user id -> timer that clears them when their typing expires)
  typingSent: { roomId: null, at: 0 }, // the room we last said typing=true in, and when
};

function rememberUser(u) {
  if (u && u.id) state.users.set(u.id, { ...(state.users.get(u.id) || {}), ...u });
}

function nameOf(id) {
  const u = state.users.get(id);
  if (!u) return 'someone';
  return u.display_name || u.username;
}

function roomTitle(room) {
  if (!room) return '';
  if (room.kind === 'direct') {
    const other = (room.members || []).find((m) => m.id !== state.me.id);
    return other ? other.display_name || other.username : 'Direct message';
  }
  return room.name || 'Group';
}

function timeline(roomId) {
  let t = state.timelines.get(roomId);
  if (!t) {
    t = { ids: [], byId: new Map(), loaded: false, nextBefore: null };
    state.timelines.set(roomId, t);
  }
  return t;
}

/** Inserts or updates a message (deduplicated by id: our own sends arrive twice). */
function upsertMessage(m) {
  const t = timeline(m.room_id);
  const old = t.byId.get(m.id);
  if (old) {
    // Keep the newest version: an edit or a delete never goes back.
    if (old.deleted_at && !m.deleted_at) return false;
    if (old.edited_at && m.edited_at && old.edited_at > m.edited_at && !m.deleted_at) return false;
    t.byId.set(m.id, { ...old, ...m });
  } else {
    t.byId.set(m.id, m);
    t.ids.push(m.id);
  }
  const room = state.rooms.get(m.room_id);
  if (room && (!old || room.last_message?.id === m.id)) room.last_message = t.byId.get(m.id);
  return !old;
}

// ---------------------------------------------------------------------------------------------
// Sign in / out

function showAuth() {
  $('#app-view').hidden = true;
  $('#auth-view').hidden = false;
  $('#login-username').focus();
}

async function signedIn(user) {
  state.me = user;
  rememberUser(user);
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  $('.me-name').textContent = `${user.display_name || user.username} (@${user.username})`;
  $('#admin').hidden = !user.admin;
  state.stream = new Stream(user.id, {
    onEvent: handleEvent,
    onResync: () => reloadAll(),
    onFresh: () => reloadAll(),
    onSignedOut: () => signedOut('Your session ended. Please sign in again.'),
    onState: renderConnection,
  });
  const resuming = state.stream.cursor != null;
  state.stream.start();
  // With a cursor, replay fills in after the REST snapshot; without one, load once the socket's
  // hello fixed the starting point (onFresh), so nothing falls between the two.
  if (resuming) await reloadAll();
  else {
    const loaded = new Promise((resolve) => { afterFirstLoad = resolve; });
    // If the socket can't connect soon, show the REST state anyway; the socket catches up.
    setTimeout(() => { if (afterFirstLoad && state.me) reloadAll(); }, 3000);
    await loaded;
  }
  const first = $('#room-list button');
  (first || $('#search-input')).focus();
  renderNotifyButton().catch(() => {});
  const linked = roomFromHash();
  if (linked && state.rooms.has(linked)) await openRoom(linked);
}

function signedOut(message) {
  state.stream?.stop();
  state.stream = null;
  state.me = null;
  state.rooms.clear();
  state.timelines.clear();
  state.pending.clear();
  state.users.clear();
  state.current = null;
  state.queue = [];
  for (const room of state.typing.values()) for (const timer of room.values()) clearTimeout(timer);
  state.typing.clear();
  state.typingSent = { roomId: null, at: 0 };
  if (afterFirstLoad) { afterFirstLoad(); afterFirstLoad = null; }
  $('#room-list').replaceChildren();
  $('#timeline').replaceChildren();
  $('#composer').hidden = true;
  $('#room-title').textContent = 'No room open';
  $('#admin').hidden = true;
  $('#admin').open = false;
  showAuth();
  if (message) toast(message);
}

async function submitAuth(form, path, fields) {
  const err = form.querySelector('.form-error');
  err.textContent = '';
  const data = Object.fromEntries(new FormData(form));
  const body = {};
  for (const f of fields) if (data[f]) body[f] = data[f];
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const user = await api('POST', path, { json: body });
    form.reset();
    await signedIn(user);
  } catch (e) {
    err.textContent = describe(e);
  } finally {
    button.disabled = false;
  }
}

function describe(e) {
  if (e instanceof ApiError) {
    if (e.fields) {
      const parts = Object.entries(e.fields).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
      if (parts.length) return `${e.message} (${parts.join('; ')})`;
    }
    return e.message;
  }
  if (e instanceof NetworkError) return 'Cannot reach the server. Check your connection.';
  return String(e?.message || e);
}

let toastTimer = null;
function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
}

// ---------------------------------------------------------------------------------------------
// Loading through REST

let afterFirstLoad = null;

async function reloadAll() {
  if (!state.me) return;
  state.loading += 1;
  try {
    const [{ rooms }] = await Promise.all([api('GET', '/rooms'), reloadSocial()]);
    state.rooms.clear();
    for (const r of rooms) {
      state.rooms.set(r.id, r);
      (r.members || []).forEach(rememberUser);
    }
    // Our copies of timelines may have missed events: drop them, reload the open one.
    state.timelines.clear();
    if (state.current && !state.rooms.has(state.current)) closeRoom();
    renderRooms();
    if (state.current) await loadHistory(state.current);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) signedOut();
    else toast(describe(e));
  } finally {
    state.loading -= 1;
    if (state.loading === 0) {
      // Events that came while the snapshot loaded apply on top of it (deduplicated by id).
      const queued = state.queue.splice(0);
      for (const f of queued) handleEvent(f);
      if (afterFirstLoad) { const r = afterFirstLoad; afterFirstLoad = null; r(); }
    }
  }
}

async function reloadSocial() {
  const [friends, requests] = await Promise.all([api('GET', '/friends'), api('GET', '/friends/requests')]);
  state.friends = friends.friends || [];
  state.incoming = requests.incoming || [];
  state.outgoing = requests.outgoing || [];
  state.friends.forEach((f) => rememberUser(f.user));
  state.incoming.forEach((r) => { rememberUser(r.from); rememberUser(r.to); });
  state.outgoing.forEach((r) => { rememberUser(r.from); rememberUser(r.to); });
  renderSocial();
}

async function loadHistory(roomId, older = false) {
  const t = timeline(roomId);
  const q = older && t.nextBefore ? `?limit=50&before=${t.nextBefore}` : '?limit=50';
  const page = await api('GET', `/rooms/${roomId}/messages${q}`);
  if (older) {
    const fresh = page.messages.filter((m) => !t.byId.has(m.id));
    for (const m of fresh) t.byId.set(m.id, m);
    t.ids = fresh.map((m) => m.id).concat(t.ids);
  } else {
    // Merge: the page is the newest messages in log order; anything we got live since stays.
    const known = new Set(page.messages.map((m) => m.id));
    const extra = t.ids.filter((id) => !known.has(id));
    t.byId = new Map(page.messages.map((m) => [m.id, m]).concat(extra.map((id) => [id, t.byId.get(id)])));
    t.ids = page.messages.map((m) => m.id).concat(extra);
  }
  if (!older || !t.loaded) t.nextBefore = page.next_before;
  else t.nextBefore = page.next_before;
  t.loaded = true;
  if (state.current === roomId) {
    renderTimeline();
    markRead();
  }
}

// ---------------------------------------------------------------------------------------------
// Events from the socket (docs/events.md)

function handleEvent(frame) {
  if (!state.me) return;
  if (state.loading > 0) { state.queue.push(frame); return; }
  const d = frame.data || {};
  switch (frame.event) {
    case 'message.created':
    case 'message.updated':
    case 'message.deleted': {
      // A message from someone ends their typing (the server sends no typing=false for it).
      if (frame.event === 'message.created') setTyping(d.room_id, d.author_id, false);
      const before = state.rooms.get(d.room_id)?.last_message;
      // Already counted by the REST snapshot (unread_count) if it is, or precedes, its last message.
      const counted = before && (before.id === d.id || before.created_at > d.created_at);
      const isNew = upsertMessage(d);
      if (isNew && frame.event === 'message.created' && d.author_id === state.me.id) claimPending(d);
      const room = state.rooms.get(d.room_id);
      if (room && isNew && !counted && frame.event === 'message.created' && d.author_id !== state.me.id) {
        const looking = state.current === d.room_id && document.visibilityState === 'visible';
        if (!looking) room.unread_count = (room.unread_count || 0) + 1;
      }
      if (!room) refreshRoom(d.room_id);
      renderRooms();
      if (state.current === d.room_id) {
        renderTimeline();
        if (frame.event === 'message.created') markRead();
      }
      break;
    }
    case 'reaction.added':
    case 'reaction.removed': {
      const m = state.timelines.get(d.room_id)?.byId.get(d.message_id);
      if (m) {
        const reactions = (m.reactions || []).map((r) => ({ ...r, user_ids: [...r.user_ids] }));
        let r = reactions.find((x) => x.emoji === d.emoji);
        if (frame.event === 'reaction.added') {
          if (!r) { r = { emoji: d.emoji, count: 0, user_ids: [] }; reactions.push(r); }
          if (!r.user_ids.includes(d.user_id)) r.user_ids.push(d.user_id);
        } else if (r) {
          r.user_ids = r.user_ids.filter((u) => u !== d.user_id);
        }
        for (const x of reactions) x.count = x.user_ids.length;
        m.reactions = reactions.filter((x) => x.count > 0);
        if (state.current === d.room_id) renderTimeline();
      }
      break;
    }
    case 'room.created':
    case 'room.updated': {
      const prev = state.rooms.get(d.id);
      (d.members || []).forEach(rememberUser);
      state.rooms.set(d.id, { ...prev, ...d, unread_count: prev?.unread_count || 0,
        last_message: d.last_message || prev?.last_message || null });
      renderRooms();
      if (state.current === d.id) renderRoomHeader();
      break;
    }
    case 'member.joined':
    case 'member.updated':
    case 'member.left': {
      rememberUser(d.user);
      if (frame.event === 'member.left' && d.user_id === state.me.id) {
        state.rooms.delete(d.room_id);
        state.timelines.delete(d.room_id);
        if (state.current === d.room_id) closeRoom();
        renderRooms();
        break;
      }
      const room = state.rooms.get(d.room_id);
      if (!room) { refreshRoom(d.room_id); break; }
      const others = (room.members || []).filter((m) => m.id !== d.user_id);
      if (frame.event !== 'member.left') others.push({ ...d.user, role: d.role });
      others.sort((a, b) => a.username.localeCompare(b.username));
      room.members = others;
      renderRooms();
      if (state.current === d.room_id) renderRoomHeader();
      break;
    }
    case 'read.updated': {
      const room = state.rooms.get(d.room_id);
      if (room) { room.unread_count = d.unread_count; renderRooms(); }
      break;
    }
    case 'friend.requested':
    case 'friend.accepted':
    case 'friend.declined':
    case 'friend.cancelled':
    case 'friend.removed':
      reloadSocial().catch(() => {});
      if (frame.event === 'friend.requested' && d.to?.id === state.me.id) {
        toast(`${d.from.display_name || d.from.username} sent you a friend request`);
      }
      break;
    case 'typing.updated': {
      if (d.user_id === state.me.id) break;
      // How long it lasts, by the server's clock (ours may differ); at most 30 s.
      const lasts = Date.parse(d.expires_at) - Date.parse(frame.created_at);
      setTyping(d.room_id, d.user_id, d.typing, Math.min(Math.max(lasts || 0, 0), 30_000));
      break;
    }
    case 'presence.updated': {
      // A friend (or DM partner) came online or went offline (docs/events.md#presence).
      const friend = state.friends.find((f) => f.user.id === d.user_id);
      if (friend) { friend.online = d.online; friend.last_seen_at = d.last_seen_at; renderSocial(); }
      break;
    }
    case 'user.updated':
      rememberUser(d.user);
      if (d.user?.id === state.me.id) state.me = { ...state.me, ...d.user };
      for (const room of state.rooms.values()) {
        room.members = (room.members || []).map((m) => (m.id === d.user.id ? { ...m, ...d.user } : m));
      }
      if (d.user?.deleted) {
        // A deleted account's messages are tombstones now (docs/events.md, user.updated): the
        // server sends no event per message, so blank the ones already loaded here.
        for (const t of state.timelines.values()) {
          for (const [id, m] of t.byId) {
            if (m.author_id === d.user.id && !m.deleted_at) {
              t.byId.set(id, { ...m, body: null, attachments: [], deleted_at: frame.created_at || new Date().toISOString() });
            }
          }
        }
      }
      renderRooms();
      if (state.current) renderTimeline();
      break;
    default:
      break; // unknown event types are ignored
  }
}

/**
 * Our own message arrived on the socket before the POST's answer (or while its answer is being
 * retried): the pending copy with the same content stands for it, so stop showing that copy.
 */
function claimPending(m) {
  const ids = (m.attachments || []).map((a) => a.id).join(',');
  const p = (state.pending.get(m.room_id) || []).find((x) => !x.claimedBy && x.status === 'sending'
    && (x.body || '') === (m.body || '') && (x.attachmentId || '') === ids);
  if (p) p.claimedBy = m.id;
}

async function refreshRoom(roomId) {
  try {
    const room = await api('GET', `/rooms/${roomId}`);
    (room.members || []).forEach(rememberUser);
    state.rooms.set(room.id, { ...state.rooms.get(room.id), ...room });
    renderRooms();
  } catch { /* not a member any more */ }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderConnection(s) {
  const c = $('.conn');
  c.dataset.state = s;
  c.textContent = { live: 'connected', connecting: 'connecting…', reconnecting: 'reconnecting…',
    offline: 'offline', closed: 'offline' }[s] || s;
}

function sortedRooms() {
  const key = (r) => r.last_message?.created_at || r.created_at || '';
  return [...state.rooms.values()].sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
}

function preview(m) {
  if (!m) return '';
  if (m.deleted_at) return 'message deleted';
  const who = m.author_id === state.me.id ? 'You' : nameOf(m.author_id);
  const text = m.body || ((m.attachments || []).length ? '📷 photo' : '');
  return `${who}: ${text}`;
}

function renderRooms() {
  const list = $('#room-list');
  const rooms = sortedRooms();
  $('#rooms-empty').hidden = rooms.length > 0;
  const focused = document.activeElement?.closest?.('#room-list li')?.dataset.roomId;
  list.replaceChildren(...rooms.map((r) => {
    const unread = r.unread_count || 0;
    const title = roomTitle(r);
    const label = unread ? `${title}, ${unread} unread` : title;
    const button = el('button', {
      type: 'button', class: 'room-button', 'aria-label': label,
      'aria-current': r.id === state.current ? 'true' : null,
      onclick: () => openRoom(r.id),
    },
    el('span', { class: 'room-name', text: title }),
    unread ? el('span', { class: 'badge', 'data-testid': 'unread-badge', 'aria-hidden': 'true', text: String(unread) }) : null,
    el('span', { class: 'room-preview', text: preview(r.last_message) }));
    return el('li', { dataset: { roomId: r.id, testid: 'room', kind: r.kind, unread: String(unread) } }, button);
  }));
  if (focused) list.querySelector(`li[data-room-id="${focused}"] button`)?.focus();
}

function renderSocial() {
  const friendIds = new Set(state.friends.map((f) => f.user.id));
  $('#incoming').replaceChildren(...state.incoming.map((r) => el('li', { 'data-testid': 'incoming-request', dataset: { username: r.from.username } },
    el('span', { text: `${r.from.display_name || r.from.username} (@${r.from.username}) wants to be friends` }),
    el('span', { class: 'actions' },
      el('button', { type: 'button', onclick: () => answerRequest(r.id, 'accept'), text: 'Accept' }),
      el('button', { type: 'button', onclick: () => answerRequest(r.id, 'decline'), text: 'Decline' })))));
  if (!state.incoming.length) $('#incoming').append(el('li', { class: 'muted', text: 'No incoming requests.' }));
  $('#outgoing').replaceChildren(...state.outgoing.map((r) => el('li', { 'data-testid': 'outgoing-request' },
    el('span', { text: `Waiting for @${r.to.username}` }),
    el('button', { type: 'button', onclick: () => cancelRequest(r.id), text: 'Cancel' }))));
  $('#friends').replaceChildren(...state.friends.map((f) => el('li', { 'data-testid': 'friend', dataset: { username: f.user.username, online: String(!!f.online) } },
    el('span', { text: `${f.user.display_name || f.user.username} (@${f.user.username})` },
      el('span', { class: f.online ? 'presence online' : 'presence', role: 'img', 'aria-label': f.online ? 'online' : 'offline',
        title: f.online ? 'online' : (f.last_seen_at ? `last seen ${new Date(f.last_seen_at).toLocaleString()}` : 'offline') })),
    el('span', { class: 'actions' },
      el('button', { type: 'button', onclick: () => openDm(f.user.id), 'aria-label': `Message ${f.user.username}`, text: 'Message' })))));
  if (!state.friends.length) $('#friends').append(el('li', { class: 'muted', text: 'No friends yet.' }));
  // Group member choices: friends.
  const checks = $('#group-members');
  const chosen = new Set([...checks.querySelectorAll('input:checked')].map((i) => i.value));
  checks.replaceChildren(...state.friends.map((f) => {
    const id = 'gm-' + f.user.id;
    return el('div', { class: 'check' },
      el('input', { type: 'checkbox', id, name: 'member', value: f.user.id, checked: chosen.has(f.user.id) }),
      el('label', { for: id, text: f.user.display_name || f.user.username }));
  }));
  if (!state.friends.length) checks.append(el('p', { class: 'muted', text: 'Add friends to invite them.' }));
  // Search results may change their buttons.
  renderSearch(lastSearch, friendIds);
}

let lastSearch = [];
function renderSearch(users, friendIds = new Set(state.friends.map((f) => f.user.id))) {
  lastSearch = users;
  const pendingTo = new Set(state.outgoing.map((r) => r.to.id));
  const pendingFrom = new Map(state.incoming.map((r) => [r.from.id, r.id]));
  $('#search-results').replaceChildren(...users.filter((u) => u.id !== state.me?.id).map((u) => {
    let friendButton;
    if (friendIds.has(u.id)) friendButton = el('span', { class: 'muted', text: 'friend' });
    else if (pendingTo.has(u.id)) friendButton = el('span', { class: 'muted', text: 'request sent' });
    else if (pendingFrom.has(u.id)) friendButton = el('button', { type: 'button', onclick: () => answerRequest(pendingFrom.get(u.id), 'accept'), text: 'Accept request' });
    else friendButton = el('button', { type: 'button', onclick: () => requestFriend(u.id), 'aria-label': `Add ${u.username} as a friend`, text: 'Add friend' });
    return el('li', { 'data-testid': 'search-result', dataset: { username: u.username } },
      el('span', { text: `${u.display_name || u.username} (@${u.username})${u.kind === 'bot' ? ' · bot' : ''}` }),
      el('span', { class: 'actions' },
        el('button', { type: 'button', onclick: () => openDm(u.id), 'aria-label': `Message ${u.username}`, text: 'Message' }),
        friendButton));
  }));
}

// ---------------------------------------------------------------------------------------------
// Message search (GET /search/messages): hits newest first; the snippet arrives as plain-text
// pieces, each put in the page as text (a <mark> for a hit), so a message can't inject markup.

const messageSearch = { q: '', nextBefore: null };

async function searchMessages(q, more = false) {
  const list = $('#message-hits');
  if (!more) {
    messageSearch.q = q;
    messageSearch.nextBefore = null;
    list.replaceChildren();
  }
  if (!q) { $('#message-hits-more').hidden = true; return; }
  let path = '/search/messages?limit=20&q=' + encodeURIComponent(q);
  if (more && messageSearch.nextBefore) path += '&before=' + encodeURIComponent(messageSearch.nextBefore);
  try {
    const r = await api('GET', path);
    if (q !== messageSearch.q) return; // a newer search replaced this one
    list.append(...r.hits.map(hitRow));
    if (!list.children.length) list.append(el('li', { class: 'muted', text: 'No messages found.' }));
    messageSearch.nextBefore = r.next_before;
    $('#message-hits-more').hidden = !r.next_before;
  } catch (e) {
    list.replaceChildren(el('li', { class: 'muted', 'data-testid': 'message-search-error', text: describe(e) }));
    $('#message-hits-more').hidden = true;
  }
}

function hitRow(hit) {
  const room = state.rooms.get(hit.room_id);
  const snippet = el('span', { class: 'snippet', 'data-testid': 'hit-snippet' },
    ...hit.snippet.map((s) => (s.hit ? el('mark', { text: s.text }) : document.createTextNode(s.text))));
  const open = async () => {
    await openRoom(hit.room_id);
    const row = document.querySelector(`#timeline [data-message-id="${CSS.escape(hit.id)}"]`);
    row?.scrollIntoView({ block: 'center' });
    row?.classList.add('found');
  };
  return el('li', { 'data-testid': 'message-hit', dataset: { roomId: hit.room_id, id: hit.id } },
    el('button', { type: 'button', class: 'hit', onclick: open,
      'aria-label': `Open ${room ? roomTitle(room) : 'the room'} at this message` },
    el('span', { class: 'hit-meta muted', text: `${room ? roomTitle(room) : 'Room'} · ${nameOf(hit.author_id)} · ${new Date(hit.created_at).toLocaleString()}` }),
    snippet));
}

function renderRoomHeader() {
  const room = state.rooms.get(state.current);
  if (!room) return;
  $('#room-title').textContent = roomTitle(room);
  const members = (room.members || []).map((m) => m.display_name || m.username);
  $('#room-sub').textContent = room.kind === 'direct' ? 'Direct message' : `${members.length} members: ${members.join(', ')}`;
}

function fmtTime(iso) {
  try {
    return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  } catch { return ''; }
}

const editing = new Set(); // message ids being edited (their rows are left alone by re-renders)

function messageRow(m) {
  const mine = m.author_id === state.me.id;
  const li = el('li', {
    class: 'msg' + (mine ? ' mine' : '') + (m.deleted_at ? ' deleted' : ''),
    'data-testid': 'message',
    dataset: { messageId: m.id, author: state.users.get(m.author_id)?.username || '', status: m.deleted_at ? 'deleted' : 'sent' },
  });
  const head = el('div', { class: 'msg-head' },
    el('span', { class: 'author', text: mine ? 'You' : nameOf(m.author_id) }),
    el('time', { datetime: m.created_at, text: fmtTime(m.created_at) }),
    m.edited_at && !m.deleted_at ? el('span', { class: 'muted', text: '(edited)' }) : null);
  li.append(head);
  if (m.deleted_at) {
    li.append(el('p', { class: 'body tombstone', 'data-testid': 'message-body', text: 'This message was deleted.' }));
    return li;
  }
  if (m.body) li.append(el('p', { class: 'body', 'data-testid': 'message-body', text: m.body }));
  for (const a of m.attachments || []) {
    const w = a.width, h = a.height;
    const scale = w && h ? Math.min(1, 320 / Math.max(w, h)) : 1;
    const img = el('img', {
      src: `/api/v1/attachments/${a.id}/thumbnail`,
      alt: `Photo from ${mine ? 'you' : nameOf(m.author_id)}`,
      'data-testid': 'thumbnail',
      width: w ? Math.max(1, Math.round(w * scale)) : null,
      height: h ? Math.max(1, Math.round(h * scale)) : null,
      loading: 'lazy',
    });
    li.append(el('a', { class: 'photo', href: `/api/v1/attachments/${a.id}`, target: '_blank', rel: 'noopener' }, img));
  }
  const actions = el('div', { class: 'msg-actions' });
  const mineReacted = (m.reactions || []).find((r) => r.emoji === '👍')?.user_ids.includes(state.me.id);
  actions.append(el('button', { type: 'button', class: 'small', 'aria-pressed': mineReacted ? 'true' : 'false',
    onclick: () => toggleReaction(m, '👍', !mineReacted), 'aria-label': mineReacted ? 'Remove thumbs up' : 'React with thumbs up', text: mineReacted ? 'Unlike' : 'Like' }));
  if (mine) {
    actions.append(
      el('button', { type: 'button', class: 'small', onclick: () => startEdit(m.id), 'data-testid': 'edit', text: 'Edit' }),
      el('button', { type: 'button', class: 'small', onclick: () => deleteMessage(m), 'data-testid': 'delete', text: 'Delete' }));
  }
  if ((m.reactions || []).length) {
    li.append(el('ul', { class: 'reactions', 'aria-label': 'Reactions' },
      ...m.reactions.map((r) => el('li', { text: `${r.emoji} ${r.count}`, title: r.user_ids.map(nameOf).join(', ') }))));
  }
  li.append(actions);
  return li;
}

function pendingRow(p) {
  const li = el('li', {
    class: 'msg mine pending' + (p.status === 'failed' ? ' failed' : ''),
    'data-testid': 'message',
    dataset: { local: p.local, status: p.status },
  });
  li.append(el('div', { class: 'msg-head' }, el('span', { class: 'author', text: 'You' }),
    el('span', { class: 'muted', text: p.status === 'failed' ? 'not sent' : p.status === 'uploading' ? 'uploading…' : 'sending…' })));
  if (p.body) li.append(el('p', { class: 'body', 'data-testid': 'message-body', text: p.body }));
  if (p.previewUrl) li.append(el('img', { class: 'photo-preview', src: p.previewUrl, alt: 'Photo being sent' }));
  if (p.status === 'failed') {
    li.append(el('p', { class: 'error', role: 'alert', text: `Failed — ${p.error}` }),
      el('div', { class: 'msg-actions' },
        el('button', { type: 'button', 'data-testid': 'retry', onclick: () => retryPending(p), text: 'Retry' }),
        p.attachmentId || p.file ? null : el('button', { type: 'button', onclick: () => editPending(p), text: 'Edit' }),
        el('button', { type: 'button', onclick: () => discardPending(p), text: 'Discard' })));
  }
  return li;
}

function renderTimeline() {
  const roomId = state.current;
  const list = $('#timeline');
  if (!roomId) { list.replaceChildren(); return; }
  const t = timeline(roomId);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const existing = new Map([...list.children].map((li) => [li.dataset.messageId || 'local:' + li.dataset.local, li]));
  const rows = [];
  for (const id of t.ids) {
    const m = t.byId.get(id);
    if (!m) continue;
    const keep = existing.get(id);
    if (keep && editing.has(id)) rows.push(keep);
    else {
      const sig = JSON.stringify([m.body, m.edited_at, m.deleted_at, m.reactions, nameOf(m.author_id)]);
      if (keep && keep.dataset.sig === sig) rows.push(keep);
      else { const li = messageRow(m); li.dataset.sig = sig; rows.push(li); }
    }
  }
  for (const p of state.pending.get(roomId) || []) if (!p.claimedBy) rows.push(pendingRow(p));
  // Replace only if something changed, so focus inside rows survives.
  const same = rows.length === list.children.length && rows.every((r, i) => list.children[i] === r);
  if (!same) {
    const active = document.activeElement;
    list.replaceChildren(...rows);
    if (active && list.contains(active) === false && active.isConnected === false) $('#composer-input').focus();
  }
  $('#timeline-empty').hidden = rows.length > 0;
  $('#older').hidden = !t.nextBefore;
  if (atBottom || !same) list.scrollTop = list.scrollHeight;
}

/** Shows (or stops showing) `userId` as typing in `roomId`, for `lasts` ms at most. */
function setTyping(roomId, userId, on, lasts = 0) {
  if (!roomId || !userId) return;
  const room = state.typing.get(roomId);
  const was = room?.get(userId);
  if (was) { clearTimeout(was); room.delete(userId); }
  if (on && lasts > 0) {
    if (!state.typing.has(roomId)) state.typing.set(roomId, new Map());
    state.typing.get(roomId).set(userId, setTimeout(() => setTyping(roomId, userId, false), lasts));
  }
  if (state.current === roomId && (was || on)) renderTyping();
}

function renderTyping() {
  const line = $('#typing');
  const names = [...(state.typing.get(state.current)?.keys() || [])].map(nameOf);
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  line.textContent = text;
  line.hidden = !text;
}

/**
 * Tells the room we type: typing=true at most every 3 s while the composer has text (the server
 * throttles too), typing=false once it is emptied. Best effort: a failure is not worth a toast.
 */
function composerTyping() {
  const roomId = state.current;
  const sent = state.typingSent;
  const hasText = $('#composer-input').value.trim() !== '';
  const say = (room, typing) => api('POST', `/rooms/${room}/typing`, { json: { typing } }).catch(() => {});
  if (sent.roomId && (sent.roomId !== roomId || !hasText)) {
    say(sent.roomId, false);
    state.typingSent = { roomId: null, at: 0 };
  }
  if (roomId && hasText && (state.typingSent.roomId !== roomId || Date.now() - state.typingSent.at > 3000)) {
    state.typingSent = { roomId, at: Date.now() };
    say(roomId, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Actions

async function openRoom(roomId) {
  state.current = roomId;
  editing.clear();
  $('#composer').hidden = false;
  $('#timeline').replaceChildren();
  renderRooms();
  renderRoomHeader();
  renderTyping();
  composerTyping();
  $('#room-view').dataset.roomId = roomId;
  const t = timeline(roomId);
  renderTimeline();
  $('#composer-input').focus();
  try {
    if (!t.loaded) await loadHistory(roomId);
    else markRead();
  } catch (e) {
    toast(describe(e));
  }
}

function closeRoom() {
  state.current = null;
  composerTyping();
  renderTyping();
  $('#composer').hidden = true;
  $('#timeline').replaceChildren();
  $('#room-title').textContent = 'No room open';
  $('#room-sub').textContent = '';
  delete $('#room-view').dataset.roomId;
}

/** Moves the read marker to the newest message of the open room (debounced). */
function markRead() {
  clearTimeout(state.readTimer);
  state.readTimer = setTimeout(async () => {
    const roomId = state.current;
    if (!roomId || document.visibilityState !== 'visible') return;
    const t = state.timelines.get(roomId);
    const room = state.rooms.get(roomId);
    if (!t || !room || !t.ids.length) return;
    const last = t.ids[t.ids.length - 1];
    if (room.unread_count === 0 && room.read_sent === last) return;
    room.read_sent = last;
    try {
      const r = await api('POST', `/rooms/${roomId}/read`, { json: { message_id: last } });
      // Answers can cross (a newer mark may be in flight): only the latest one counts. The
      // read.updated event on the socket says the same, in log order.
      if (room.read_sent === last) {
        room.unread_count = r.unread_count;
        renderRooms();
      }
    } catch { room.read_sent = null; }
  }, 300);
}

async function openDm(userId) {
  try {
    const room = await api('POST', '/dms', { json: { user_id: userId } });
    (room.members || []).forEach(rememberUser);
    state.rooms.set(room.id, { ...state.rooms.get(room.id), ...room });
    renderRooms();
    await openRoom(room.id);
  } catch (e) {
    toast(describe(e));
  }
}

async function requestFriend(userId) {
  try {
    await api('POST', '/friends/requests', { json: { user_id: userId } });
    await reloadSocial();
    toast('Friend request sent.');
  } catch (e) { toast(describe(e)); }
}

async function answerRequest(id, verb) {
  try {
    await api('POST', `/friends/requests/${id}/${verb}`);
    await reloadSocial();
  } catch (e) { toast(describe(e)); }
}

async function cancelRequest(id) {
  try {
    await api('DELETE', `/friends/requests/${id}`);
    await reloadSocial();
  } catch (e) { toast(describe(e)); }
}

async function toggleReaction(m, emoji, on) {
  try {
    await api(on ? 'PUT' : 'DELETE', `/rooms/${m.room_id}/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`);
  } catch (e) { toast(describe(e)); }
}

function startEdit(id) {
  const t = timeline(state.current);
  const m = t.byId.get(id);
  const li = $(`#timeline li[data-message-id="${id}"]`);
  if (!m || !li) return;
  editing.add(id);
  const inputId = 'edit-' + id;
  const textarea = el('textarea', { id: inputId, rows: '2', 'data-testid': 'edit-input' });
  textarea.value = m.body || '';
  const done = () => { editing.delete(id); li.dataset.sig = ''; renderTimeline(); $(`#timeline li[data-message-id="${id}"] [data-testid=edit]`)?.focus(); };
  const form = el('form', { class: 'edit-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = textarea.value;
    if (!body.trim()) return;
    try {
      const r = await api('PATCH', `/rooms/${m.room_id}/messages/${id}`, { json: { body } });
      upsertMessage(r.message);
      done();
    } catch (e) { toast(describe(e)); }
  } },
  el('label', { for: inputId, class: 'visually-hidden', text: 'Edit message' }), textarea,
  el('div', { class: 'msg-actions' },
    el('button', { type: 'submit', 'data-testid': 'save-edit', text: 'Save' }),
    el('button', { type: 'button', onclick: done, text: 'Cancel' })));
  textarea.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    if (ev.key === 'Escape') { ev.preventDefault(); done(); }
  });
  li.querySelector('.body')?.replaceWith(form);
  if (!li.contains(form)) li.append(form);
  li.querySelector('.msg-actions:not(.edit-form .msg-actions)')?.remove();
  textarea.focus();
}

async function deleteMessage(m) {
  if (!confirm('Delete this message?')) return;
  try {
    await api('DELETE', `/rooms/${m.room_id}/messages/${m.id}`);
    upsertMessage({ ...m, body: null, deleted_at: new Date().toISOString(), reactions: [], attachments: [] });
    renderTimeline();
    $('#composer-input').focus();
  } catch (e) { toast(describe(e)); }
}

// Sending ------------------------------------------------------------------------------------

let attached = null; // { file, url }

function setAttachment(file) {
  if (attached) URL.revokeObjectURL(attached.url);
  attached = file ? { file, url: URL.createObjectURL(file) } : null;
  $('#attach-preview').hidden = !attached;
  if (attached) $('#attach-img').src = attached.url;
  else { $('#attach-img').removeAttribute('src'); $('#attach-input').value = ''; }
}

function composerSubmit() {
  const roomId = state.current;
  if (!roomId) return;
  const input = $('#composer-input');
  const body = input.value;
  if (!body.trim() && !attached) return;
  const p = {
    local: newKey(),
    key: newKey(), // one Idempotency-Key per message, reused by every retry
    roomId,
    body: body.trim() ? body : '',
    file: attached?.file || null,
    previewUrl: attached?.url || null,
    attachmentId: null,
    status: attached ? 'uploading' : 'sending',
    error: null,
  };
  attached = null;
  $('#attach-preview').hidden = true;
  $('#attach-input').value = '';
  input.value = '';
  input.focus();
  // The message ends our typing for everyone (they clear it on message.created): no
  // typing=false needed, and the next keystroke announces typing again at once.
  state.typingSent = { roomId: null, at: 0 };
  if (!state.pending.has(roomId)) state.pending.set(roomId, []);
  state.pending.get(roomId).push(p);
  renderTimeline();
  deliver(p);
}

async function deliver(p) {
  try {
    if (p.file && !p.attachmentId) {
      p.status = 'uploading';
      const att = await withNetworkRetry(() => uploadPhoto(p.file));
      p.attachmentId = att.id;
    }
    p.status = 'sending';
    if (state.current === p.roomId) renderTimeline();
    const payload = {};
    if (p.body) payload.body = p.body;
    if (p.attachmentId) payload.attachment_ids = [p.attachmentId];
    const sent = await sendMessage(p.roomId, payload, p.key);
    dropPending(p);
    upsertMessage(sent.message);
    renderRooms();
    if (state.current === p.roomId) { renderTimeline(); markRead(); }
  } catch (e) {
    p.status = 'failed';
    p.error = describe(e);
    if (state.current === p.roomId) renderTimeline();
  }
}

async function withNetworkRetry(fn, attempts = 5) {
  let delay = 500;
  for (let i = 0; ; i++) {
    try { return await fn(); } catch (e) {
      if (!(e instanceof NetworkError) || i + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

function dropPending(p) {
  const list = state.pending.get(p.roomId) || [];
  state.pending.set(p.roomId, list.filter((x) => x !== p));
  if (p.previewUrl) URL.revokeObjectURL(p.previewUrl);
}

function retryPending(p) {
  p.status = p.file && !p.attachmentId ? 'uploading' : 'sending';
  p.error = null;
  renderTimeline();
  deliver(p); // the same Idempotency-Key: a send that did land is not repeated
}

/** Puts a refused message back into the composer to fix it. */
function editPending(p) {
  dropPending(p);
  renderTimeline();
  const input = $('#composer-input');
  input.value = p.body + (input.value ? '\n' + input.value : '');
  input.focus();
}

function discardPending(p) {
  dropPending(p);
  renderTimeline();
  $('#composer-input').focus();
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitAuth(ev.target, '/sessions', ['username', 'password']);
  });
  $('#register-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitAuth(ev.target, '/users', ['username', 'password', 'display_name']);
  });
  $('#logout').addEventListener('click', async () => {
    const stream = state.stream;
    stream?.stop();
    try { await api('DELETE', '/sessions/current'); } catch { /* signed out anyway */ }
    stream?.forgetCursor();
    signedOut();
  });
  $('#search-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const prefix = $('#search-input').value.trim();
    if (!prefix) { renderSearch([]); return; }
    try {
      const r = await api('GET', '/users?prefix=' + encodeURIComponent(prefix));
      (r.users || []).forEach(rememberUser);
      renderSearch(r.users || []);
      if (!(r.users || []).length) $('#search-results').append(el('li', { class: 'muted', text: 'Nobody found.' }));
    } catch (e) { toast(describe(e)); }
  });
  $('#message-search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    searchMessages($('#message-search-input').value.trim());
  });
  $('#message-hits-more').addEventListener('click', () => searchMessages(messageSearch.q, true));
  $('#group-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const err = form.querySelector('.form-error');
    err.textContent = '';
    const name = $('#group-name').value;
    const member_ids = [...form.querySelectorAll('input[name=member]:checked')].map((i) => i.value);
    try {
      const room = await api('POST', '/rooms', { json: { name, member_ids } });
      state.rooms.set(room.id, { unread_count: 0, ...state.rooms.get(room.id), ...room });
      form.reset();
      $('#new-group').open = false;
      renderRooms();
      await openRoom(room.id);
    } catch (e) { err.textContent = describe(e); }
  });
  $('#composer').addEventListener('submit', (ev) => { ev.preventDefault(); composerSubmit(); });
  $('#composer-input').addEventListener('input', composerTyping);
  $('#composer-input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      composerSubmit();
    }
  });
  $('#attach-input').addEventListener('change', (ev) => {
    const f = ev.target.files?.[0];
    setAttachment(f || null);
    $('#composer-input').focus();
  });
  $('#attach-remove').addEventListener('click', () => { setAttachment(null); $('#composer-input').focus(); });
  $('#older').addEventListener('click', async () => {
    if (!state.current) return;
    try { await loadHistory(state.current, true); } catch (e) { toast(describe(e)); }
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.current) markRead();
  });
  $('#notify').addEventListener('click', () => enableNotifications());
  $('#account').addEventListener('toggle', () => { if ($('#account').open) renderSessions(); });
  $('#password-form').addEventListener('submit', (ev) => { ev.preventDefault(); changePassword(ev.target); });
  $('#delete-account-form').addEventListener('submit', (ev) => { ev.preventDefault(); deleteAccount(ev.target); });
  $('#admin').addEventListener('toggle', () => { if ($('#admin').open) renderAdmin(); });
  $('#admin-users-form').addEventListener('submit', (ev) => { ev.preventDefault(); renderAdminUsers(); });
  $('#admin-invite-form').addEventListener('submit', (ev) => { ev.preventDefault(); makeInvite(ev.target); });
  navigator.serviceWorker?.addEventListener('message', (ev) => {
    if (ev.data?.type === 'open-room' && ev.data.room_id && state.me) openRoom(ev.data.room_id);
  });
}

// The account panel: the password, and the sessions this user is signed in with.
async function changePassword(form) {
  const err = form.querySelector('.form-error');
  const status = form.querySelector('[data-testid=password-status]');
  const button = form.querySelector('button[type=submit]');
  err.textContent = '';
  status.textContent = '';
  button.disabled = true;
  try {
    await api('POST', '/me/password', {
      json: { current_password: $('#current-password').value, new_password: $('#new-password').value },
    });
    form.reset();
    // The server signed out every other session of this user; this one stays.
    status.textContent = 'Password changed. Your other sessions were signed out.';
    renderSessions();
  } catch (e) {
    err.textContent = describe(e);
  } finally {
    button.disabled = false;
  }
}

async function renderSessions() {
  const list = $('#sessions');
  let r;
  try { r = await api('GET', '/sessions'); } catch (e) { toast(describe(e)); return; }
  list.replaceChildren(...(r.sessions || []).map((s) => el('li', { 'data-testid': 'session', dataset: { current: String(s.current) } },
    el('span', { text: s.user_agent || 'Unknown device', title: s.user_agent || '' }),
    el('span', { class: 'muted', text: s.current ? ' (this device)' : ` (last used ${fmtTime(s.last_seen_at || s.created_at)})` }),
    s.current ? null : el('button', {
      type: 'button',
      class: 'link',
      text: 'End session',
      onclick: async () => {
        try { await api('DELETE', `/sessions/${s.id}`); } catch (e) { toast(describe(e)); }
        renderSessions();
      },
    }))));
}

// Deleting the account (docs/api.md, "DELETE /api/v1/me"): the server signs every session out,
// this one included, so the page goes back to the sign-in form.
async function deleteAccount(form) {
  const err = form.querySelector('.form-error');
  const button = form.querySelector('button[type=submit]');
  err.textContent = '';
  button.disabled = true;
  try {
    await api('DELETE', '/me', { json: { password: $('#delete-password').value } });
    form.reset();
    $('#account').open = false;
    signedOut('Your account was deleted.');
  } catch (e) {
    err.textContent = describe(e);
  } finally {
    button.disabled = false;
  }
}

// The administration page, shown to server administrators only (`admin: true` in GET /me):
// users (deactivate, reactivate), invite codes, and reports (resolve, delete the message).
function renderAdmin() {
  renderAdminUsers();
  renderInvites();
  renderReports();
}

function userState(u) {
  if (u.deleted_at) return 'deleted';
  if (u.deactivated_at) return 'deactivated';
  return u.admin ? 'admin' : 'active';
}

async function renderAdminUsers() {
  const q = $('#admin-users-q').value.trim();
  let r;
  try { r = await api('GET', '/admin/users' + (q ? `?q=${encodeURIComponent(q)}` : '')); } catch (e) { toast(describe(e)); return; }
  $('#admin-users').replaceChildren(...(r.users || []).map((u) => {
    const st = userState(u);
    const verb = u.deactivated_at ? 'reactivate' : 'deactivate';
    return el('li', { 'data-testid': 'admin-user', dataset: { username: u.username, state: st } },
      el('span', { text: `@${u.username}` }),
      el('span', { class: 'muted', text: ` ${u.kind === 'bot' ? 'bot, ' : ''}${st}` }),
      u.deleted_at || u.id === state.me.id ? null : el('button', {
        type: 'button',
        class: 'link',
        text: verb === 'deactivate' ? 'Deactivate' : 'Reactivate',
        onclick: async () => {
          try { await api('POST', `/admin/users/${u.id}/${verb}`); } catch (e) { toast(describe(e)); }
          renderAdminUsers();
        },
      }));
  }));
}

async function makeInvite(form) {
  const err = form.querySelector('.form-error');
  const out = form.querySelector('[data-testid=admin-invite-code]');
  err.textContent = '';
  out.textContent = '';
  try {
    const inv = await api('POST', '/admin/invites', {
      json: { uses: Number($('#admin-invite-uses').value) || 1, expires_in: $('#admin-invite-expires').value },
    });
    // The code is shown this once: the server keeps only its hash.
    out.textContent = `Invite code (shown once): ${inv.code}`;
    renderInvites();
  } catch (e) {
    err.textContent = describe(e);
  }
}

async function renderInvites() {
  let r;
  try { r = await api('GET', '/admin/invites'); } catch (e) { toast(describe(e)); return; }
  $('#admin-invites').replaceChildren(...(r.invites || []).map((inv) => el('li', { 'data-testid': 'admin-invite' },
    el('span', { text: `${inv.uses_left} of ${inv.uses} uses left` }),
    el('span', { class: 'muted', text: inv.expires_at ? ` (until ${fmtTime(inv.expires_at)})` : '' }),
    el('button', {
      type: 'button',
      class: 'link',
      text: 'Revoke',
      onclick: async () => {
        try { await api('DELETE', `/admin/invites/${inv.id}`); } catch (e) { toast(describe(e)); }
        renderInvites();
      },
    }))));
}

async function renderReports() {
  let r;
  try { r = await api('GET', '/admin/reports?status=open'); } catch (e) { toast(describe(e)); return; }
  const list = $('#admin-reports');
  if (!(r.reports || []).length) { list.replaceChildren(el('li', { class: 'muted', text: 'No open reports.' })); return; }
  list.replaceChildren(...r.reports.map((rep) => el('li', { class: 'report', 'data-testid': 'admin-report', dataset: { id: rep.id } },
    el('span', { text: `@${rep.reporter?.username} reported @${rep.target_user?.username}` }),
    el('span', { class: 'muted', text: ` ${fmtTime(rep.created_at)}` }),
    rep.message ? el('blockquote', { 'data-testid': 'report-message', text: rep.message.body }) : null,
    el('p', { text: `Reason: ${rep.reason}` }),
    rep.message ? el('button', {
      type: 'button',
      class: 'small',
      'data-testid': 'report-delete-message',
      text: 'Delete the message',
      onclick: async () => {
        try { await api('DELETE', `/admin/messages/${rep.message.id}`); toast('Message deleted.'); } catch (e) { toast(describe(e)); }
      },
    }) : null,
    el('button', {
      type: 'button',
      class: 'small',
      'data-testid': 'report-resolve',
      text: 'Resolve',
      onclick: async () => {
        try { await api('POST', `/admin/reports/${rep.id}/resolve`, { json: {} }); } catch (e) { toast(describe(e)); }
        renderReports();
      },
    }))));
}

// Push notifications (docs/notifications.md): the service worker shows them while no page is
// looking. Subscribing needs the user's click (browsers ask for permission then) and the
// server's VAPID key; the subscription belongs to this session and ends with it.
function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function renderNotifyButton() {
  const button = $('#notify');
  if (!pushSupported()) { button.hidden = true; return; }
  button.hidden = false;
  const registration = await navigator.serviceWorker.getRegistration('/web/');
  const subscribed = registration && (await registration.pushManager.getSubscription());
  if (subscribed && Notification.permission === 'granted') {
    // The server ties a subscription to the session that made it (signing out deletes it):
    // hand this browser's to the session that is signed in now (idempotent on the endpoint).
    const json = subscribed.toJSON();
    await api('POST', '/push/subscriptions', {
      json: { kind: 'webpush', endpoint: json.endpoint, keys: json.keys },
    }).catch(() => {});
  }
  button.disabled = Notification.permission === 'denied';
  button.textContent = subscribed ? 'Notifications on' : 'Notify me';
  button.title = Notification.permission === 'denied'
    ? 'Notifications are blocked for this site in the browser settings'
    : 'Get a notification when a message arrives while this tab is closed';
}

async function enableNotifications() {
  try {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') { toast('Notifications were not allowed.'); return renderNotifyButton(); }
    const registration = await navigator.serviceWorker.register('/web/sw.js', { scope: '/web/' });
    await navigator.serviceWorker.ready;
    const { public_key } = await api('GET', '/push/vapid');
    let sub = await registration.pushManager.getSubscription();
    if (!sub) {
      sub = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: base64UrlToBytes(public_key),
      });
    }
    const json = sub.toJSON();
    await api('POST', '/push/subscriptions', {
      json: { kind: 'webpush', endpoint: json.endpoint, keys: json.keys },
    });
    toast('Notifications are on for this browser.');
  } catch (e) {
    toast(e instanceof ApiError ? describe(e) : 'Notifications could not be turned on: ' + (e?.message || e));
  }
  renderNotifyButton();
}

/** A room named in the address (`/#room=<id>`, from a notification), opened once signed in. */
function roomFromHash() {
  const m = /^#room=([0-9a-fA-F-]{36})$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname);
  return m[1];
}

async function boot() {
  wire();
  try {
    const me = await api('GET', '/me');
    await signedIn(me);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showAuth();
    else { showAuth(); toast(describe(e)); }
  }
}

boot();
