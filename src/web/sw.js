// hubbub reference client: the service worker. It does one thing: show a notification when the
// server pushes (docs/notifications.md), and open the room when it is clicked. It controls no
// page and caches nothing.
//
// The push payload holds ids only unless the server runs with HUBBUB_PUSH_PREVIEW=true:
// {"type":"message.created","room_id","message_id","event_id","unread_count","mentioned"}.
// The room's name comes from the API (this worker shares the page's session cookie); a direct
// room is named after the other member, which needs the signed-in user's id: the payload
// doesn't carry it, so it comes from GET /api/v1/me (same origin: within the CSP's
// connect-src 'self').

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  return res.ok ? res.json() : null;
}

async function roomName(roomId) {
  try {
    const room = await getJson(`/api/v1/rooms/${encodeURIComponent(roomId)}`);
    if (!room) return null;
    if (room.kind !== 'direct') return room.name || null;
    const me = await getJson('/api/v1/me');
    if (!me) return null;
    const other = (room.members || []).find((m) => m.id !== me.id);
    return other ? other.display_name || other.username : null;
  } catch { return null; }
}

async function show(data) {
  // A page of this client that is open and visible shows the message itself.
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (windows.some((w) => w.visibilityState === 'visible' && w.focused)) return;
  const name = data.room_name || (await roomName(data.room_id)) || 'hubbub';
  const count = Number(data.unread_count) || 1;
  const body = data.body
    ? (data.sender_name ? `${data.sender_name}: ` : '') + data.body
    : (data.mentioned === true || data.mentioned === 'true')
      ? 'You were mentioned'
      : count === 1 ? 'New message' : `${count} unread messages`;
  await self.registration.showNotification(name, {
    body,
    // One notification per room: a newer one replaces it.
    tag: `room:${data.room_id}`,
    renotify: true,
    data: { room_id: data.room_id, event_id: data.event_id },
  });
}

self.addEventListener('push', (ev) => {
  let data = {};
  try { data = ev.data ? ev.data.json() : {}; } catch { data = {}; }
  if (data.type !== 'message.created' || !data.room_id) return;
  ev.waitUntil(show(data));
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  const roomId = ev.notification.data?.room_id;
  ev.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const page = windows.find((w) => new URL(w.url).origin === self.location.origin);
    if (page) {
      await page.focus();
      page.postMessage({ type: 'open-room', room_id: roomId });
    } else {
      await self.clients.openWindow(`/#room=${encodeURIComponent(roomId || '')}`);
    }
  })());
});
