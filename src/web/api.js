// hubbub reference client: the REST side. Everything here is the public API v1
// (docs/api.md); the browser sends the session cookie on its own (same origin).

/** An answer in the error envelope `{"error":{"code","message","request_id","fields"?}}`. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || 'http_' + status;
    this.fields = error?.fields || null;
    this.requestId = error?.request_id || null;
  }
}

/** The request never got an answer (offline, connection reset, server down). */
export class NetworkError extends Error {
  constructor(cause) {
    super('network error: ' + (cause?.message || cause));
    this.network = true;
  }
}

/**
 * One call to the API. `json` is sent as a JSON body, `form` as multipart. Resolves to the
 * parsed JSON answer (or null for 204); rejects with ApiError or NetworkError.
 */
export async function api(method, path, { json, form, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin', signal };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form; // the browser sets the multipart boundary
  }
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new NetworkError(e);
  }
  if (res.status === 204) return null;
  let body = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { body = JSON.parse(text); } catch { body = null; }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, body?.error);
    const retryAfter = Number(res.headers.get('Retry-After'));
    if (retryAfter > 0) err.retryAfter = retryAfter;
    throw err;
  }
  return body;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends a message with an Idempotency-Key. A network failure or a 429 is retried with the SAME
 * key (the server answers a repeat with the stored response, so nothing is sent twice); any other
 * error answer is final and rejects with the ApiError, for the caller's "failed — retry" state.
 */
export async function sendMessage(roomId, payload, key, { attempts = 6 } = {}) {
  let delay = 400;
  for (let i = 0; ; i++) {
    try {
      return await api('POST', `/rooms/${roomId}/messages`, {
        json: payload,
        headers: { 'Idempotency-Key': key },
      });
    } catch (e) {
      const retriable = e instanceof NetworkError || (e instanceof ApiError && e.status === 429);
      if (!retriable || i + 1 >= attempts) throw e;
      const wait = e.retryAfter ? e.retryAfter * 1000 : delay;
      await sleep(wait + Math.random() * 200);
      delay = Math.min(delay * 2, 8000);
    }
  }
}

/** Uploads one image (multipart field `file`); 201 `{id, content_type, size, width, height}`. */
export async function uploadPhoto(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'photo');
  return api('POST', '/attachments', { form });
}

/** A fresh Idempotency-Key (printable ASCII, no spaces). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
