// hubbub reference client: the receiving side. One read-only WebSocket per tab,
// `GET /api/v1/stream?since=<cursor>` (docs/events.md), authenticated by the session cookie
// (same origin, so the server's Origin check passes).
//
// - The cursor is the `id` of the last event frame processed (or the `cursor` of `hello` /
//   `resync_required` before any event). It is kept in sessionStorage, per account, so a reload
//   of the tab resumes where it left off.
// - Close 4000–4099: resume at once with the cursor from the reason (`resume from N`).
// - Close 4100–4199: the credential is gone (logout, expiry): signed out, no retry.
// - Anything else (1001, 1006, 1011, a failed upgrade): reconnect with exponential back-off and
//   jitter, resuming with `since=`.
// - `resync_required`: the caller reloads its state from REST.

import { api, ApiError } from './api.js';

const MIN_BACKOFF = 500;
const MAX_BACKOFF = 30000;

export class Stream {
  /**
   * handlers: { onEvent(frame), onResync(), onSignedOut(), onState(state) }
   * state is one of 'connecting', 'live', 'reconnecting', 'offline', 'closed'.
   */
  constructor(userId, handlers) {
    this.userId = userId;
    this.h = handlers;
    this.storageKey = 'hubbub.cursor.' + userId;
    this.cursor = sessionStorage.getItem(this.storageKey);
    this.ws = null;
    this.timer = null;
    this.failures = 0;
    this.stopped = false;
    this.connects = 0;
    this.state = 'closed';
    this.onOnline = () => { if (!this.stopped) this.connectNow(); };
    this.onOffline = () => {
      // The browser says the network is gone: close now rather than wait for the heartbeat
      // timeout; 'online' reconnects with since=.
      if (this.stopped) return;
      clearTimeout(this.timer);
      if (this.ws) { const ws = this.ws; this.ws = null; detach(ws); ws.close(1000, 'offline'); }
      this.setState('offline');
    };
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  setState(s) {
    this.state = s;
    this.h.onState?.(s, this);
  }

  saveCursor(c) {
    if (c == null) return;
    this.cursor = String(c);
    try { sessionStorage.setItem(this.storageKey, this.cursor); } catch { /* private mode */ }
  }

  forgetCursor() {
    this.cursor = null;
    try { sessionStorage.removeItem(this.storageKey); } catch { /* ignore */ }
  }

  start() {
    this.stopped = false;
    this.connectNow();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    if (this.ws) { const ws = this.ws; this.ws = null; detach(ws); ws.close(1000, 'bye'); }
    this.setState('closed');
  }

  connectNow() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (navigator.onLine === false) { this.setState('offline'); return; }
    if (this.ws) { const ws = this.ws; this.ws = null; detach(ws); ws.close(1000, 'reconnect'); }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = this.cursor != null ? '?since=' + encodeURIComponent(this.cursor) : '';
    const url = `${proto}//${location.host}/api/v1/stream${q}`;
    this.setState(this.connects === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      this.handleFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handleClose(ev, opened);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  handleFrame(frame) {
    switch (frame.type) {
      case 'hello': {
        this.connects += 1;
        this.failures = 0;
        const fresh = this.cursor == null;
        this.saveCursor(frame.cursor);
        this.setState('live');
        // Without a cursor nothing was replayed: the caller's REST load is the starting point.
        if (fresh) this.h.onFresh?.();
        break;
      }
      case 'event':
        try {
          this.h.onEvent(frame);
        } finally {
          this.saveCursor(frame.id);
        }
        break;
      case 'resync_required':
        this.saveCursor(frame.cursor);
        this.h.onResync?.();
        break;
      default:
        // Unknown frame types are ignored (new ones may be added).
        break;
    }
  }

  async handleClose(ev, opened) {
    if (this.stopped) return;
    const code = ev.code;
    if (code >= 4100 && code <= 4199) {
      this.stopped = true;
      this.setState('closed');
      this.h.onSignedOut?.(code);
      return;
    }
    if (code >= 4000 && code <= 4099) {
      const m = /resume from (\S+)/.exec(ev.reason || '');
      if (m) this.saveCursor(m[1]);
      this.connectNow();
      return;
    }
    if (code === 1011) {
      const m = /resume from (\S+)/.exec(ev.reason || '');
      if (m) this.saveCursor(m[1]);
    }
    if (!opened) {
      // The upgrade was refused: the browser doesn't show why, so ask the long poll, which
      // answers with the same errors as an HTTP response.
      const why = await this.diagnose();
      if (this.stopped) return;
      if (why === 'signed_out') {
        this.stopped = true;
        this.setState('closed');
        this.h.onSignedOut?.(4100);
        return;
      }
      if (why === 'invalid_cursor') {
        // A cursor this server never handed out (e.g. after a restore): start over from REST.
        this.forgetCursor();
        this.h.onResync?.();
      }
    }
    this.scheduleReconnect();
  }

  async diagnose() {
    const q = this.cursor != null ? '&since=' + encodeURIComponent(this.cursor) : '';
    try {
      await api('GET', '/events?timeout=0' + q);
      return 'ok';
    } catch (e) {
      if (e instanceof ApiError) {
        if (e.status === 401) return 'signed_out';
        if (e.code === 'invalid_cursor') return 'invalid_cursor';
      }
      return 'unknown';
    }
  }

  scheduleReconnect() {
    if (this.stopped) return;
    if (navigator.onLine === false) { this.setState('offline'); return; }
    const base = Math.min(MAX_BACKOFF, MIN_BACKOFF * 2 ** this.failures);
    this.failures += 1;
    const wait = base / 2 + Math.random() * (base / 2);
    this.setState('reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connectNow(), wait);
  }
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}
