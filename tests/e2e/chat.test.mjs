// End-to-end test of hubbub's web client (src/web/) in headless Chromium.
//
// Starts its own hubbub server on a free port with a fresh data directory, drives two browser
// contexts (alice and bob) through the client the way a person would, and checks what each one
// sees. Screenshots go to tests/e2e/artifacts/. Exits non-zero on failure.
//
//   npm ci && HUBBUB_BIN=/path/to/hubbub node chat.test.mjs   (default: ../../target/debug/hubbub)
//   CHROMIUM=/usr/bin/chromium                           (default)

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
// HUBBUB_BIN relative to the current directory; the default relative to this folder.
const BIN = process.env.HUBBUB_BIN
  ? path.resolve(process.env.HUBBUB_BIN)
  : path.resolve(here, '../../target/debug/hubbub');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(here, 'artifacts');
const STEP_TIMEOUT = 15000;

mkdirSync(ARTIFACTS, { recursive: true });

const t0 = Date.now();
function log(...args) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...args);
}

// ------------------------------------------------------------------------------------------
// The server

function startServer() {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'hubbub-e2e-'));
  const env = {
    ...process.env,
    HUBBUB_LISTEN: '127.0.0.1:0',
    HUBBUB_DATA_DIR: dataDir,
    // HUBBUB_COOKIE_SECURE stays at its default (auto): step 1a signs in over plain HTTP.
    HUBBUB_RATE_LOGIN_PER_MIN: '0',
    HUBBUB_RATE_WRITES_PER_SEC: '0',
    HUBBUB_RATE_SEARCH_PER_MIN: '0',
  };
  delete env.HUBBUB_DATABASE_URL;
  delete env.HUBBUB_REDIS_URL;
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const serverLog = createWriteStream(path.join(ARTIFACTS, 'server.log'));
  child.stderr.pipe(serverLog);
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('the server did not start within 30 s')), 30000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited early (${code})`)); });
    child.stdout.on('data', (chunk) => {
      serverLog.write(chunk);
      buf += chunk.toString();
      const m = /hubbub listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, url: m[1], dataDir });
      }
    });
  });
}

// ------------------------------------------------------------------------------------------
// A PNG written by hand (RGB gradient), larger than a thumbnail so the server scales it down.

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function makePng(w = 480, h = 320) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * 3] = Math.round((x / w) * 255);
      raw[row + 2 + x * 3] = Math.round((y / h) * 255);
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------------------------------
// Helpers

function assert(cond, message) {
  if (!cond) throw new Error('assertion failed: ' + message);
}

async function waitUntil(what, fn, timeout = STEP_TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last?.message || JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** One person with their own browser context (cookies, storage) and page. */
async function person(browser, base, name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const p = { name, context, errors: [], sockets: [] };
  p.open = async () => {
    const page = await context.newPage();
    page.on('pageerror', (e) => p.errors.push(`${name}: page error: ${e.message}`));
    page.on('console', (m) => {
      const text = m.text();
      // CSP violations are reported on the console; any is a failure.
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(text)) p.errors.push(`${name}: ${text}`);
    });
    page.on('websocket', (ws) => {
      const entry = { url: ws.url(), closed: false };
      p.sockets.push(entry);
      ws.on('close', () => { entry.closed = true; });
    });
    await page.goto(base + '/');
    p.page = page;
    return page;
  };
  await p.open();
  return p;
}

async function register(p, username, displayName, password) {
  const form = p.page.getByTestId('register-form');
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Display name (optional)').fill(displayName);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Create account' }).click();
  await waitForLive(p);
}

async function waitForLive(p) {
  await p.page.locator('[data-testid=connection][data-state=live]').waitFor({ timeout: STEP_TIMEOUT });
}

/** The bodies of the messages in the open room, in order, with their status. */
async function timeline(page) {
  return page.locator('[data-testid=timeline] > li[data-testid=message]').evaluateAll((lis) =>
    lis.map((li) => ({
      body: li.querySelector('[data-testid=message-body]')?.textContent ?? null,
      status: li.dataset.status,
      id: li.dataset.messageId || null,
    })));
}

async function bodies(page) {
  return (await timeline(page)).map((m) => m.body);
}

async function send(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
  // Sent: the row carries the server's id and no pending copy is left (the socket may deliver the
  // message before the POST's answer).
  await waitUntil(`"${text}" to be sent`, async () => {
    const rows = (await timeline(page)).filter((m) => m.body === text);
    return rows.length === 1 && rows[0].status === 'sent';
  });
}

/** The unread badge of the room titled `title` in the room list ('' when there is none). */
async function badge(page, title) {
  const li = page.locator('[data-testid=room-list] > li')
    .filter({ has: page.locator('.room-name', { hasText: new RegExp(`^${title}$`) }) });
  // allTextContents reads what is there now: count() then textContent() waited (15 s) for a
  // badge that went away between the two, and failed the step that waits for it to go.
  const [text] = await li.locator('[data-testid=unread-badge]').allTextContents();
  return text ?? '';
}

async function roomButton(page, title) {
  return page.getByTestId('room-list').getByRole('button', { name: new RegExp('^' + title) });
}

/** Runs the hubbub binary (e.g. `admin promote alice`) on the test server's database. */
function runCli(server, args) {
  const env = { ...process.env, HUBBUB_DATA_DIR: server.dataDir };
  delete env.HUBBUB_DATABASE_URL;
  delete env.HUBBUB_REDIS_URL;
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => { output += c; });
    child.stderr.on('data', (c) => { output += c; });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

// ------------------------------------------------------------------------------------------
// The scenario

async function main() {
  log('server:', BIN);
  const server = await startServer();
  log('listening on', server.url);
  let browser;
  const people = [];
  let ok = false;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        // A name for the server other than localhost/127.0.0.1, which browsers treat as secure
        // contexts: to them, http://hubbub.test is plain HTTP from another machine.
        '--host-resolver-rules=MAP hubbub.test 127.0.0.1'],
    });
    const base = server.url;

    // The client is served with a CSP that allows only its own scripts.
    const res = await fetch(base + '/');
    const csp = res.headers.get('content-security-policy') || '';
    assert(/script-src 'self'/.test(csp), `a CSP with script-src 'self' on / (got "${csp}")`);

    const alice = await person(browser, base, 'alice');
    const bob = await person(browser, base, 'bob');
    people.push(alice, bob);
    await shot(alice.page, '01-signed-out');

    // 1. Both register (which signs them in) and their sockets go live.
    await register(alice, 'alice', 'Alice A.', 'correct horse alice');
    await register(bob, 'bob', 'Bob B.', 'correct horse bob');
    log('registered alice and bob');

    // 1a. The first-run trap: a newcomer opens the server by another address over plain HTTP
    // (not localhost: not a secure context, so a browser drops a Secure cookie). With the
    // default cookie setting erin registers and stays signed in, also after a reload.
    const lan = base.replace('127.0.0.1', 'hubbub.test');
    const erin = await person(browser, lan, 'erin');
    people.push(erin);
    assert(!(await erin.page.evaluate(() => window.isSecureContext)),
      'http://hubbub.test is not a secure context to the browser');
    await register(erin, 'erin', 'Erin E.', 'correct horse erin');
    await erin.page.reload();
    await waitForLive(erin);
    const cookies = await erin.context.cookies(lan);
    const session = cookies.find((c) => c.name === 'hubbub_session');
    assert(session && !session.secure, `erin keeps a session cookie over plain HTTP (${JSON.stringify(cookies)})`);
    log('erin signed in over plain HTTP from another address');

    // 1b. Push notifications: the "Notify me" button is offered, and the service worker it would
    // register is served under the CSP and starts (a push itself needs a browser vendor's push
    // service, which a closed network lacks; tests/it/push.rs covers delivery).
    await alice.page.getByTestId('notify').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    const worker = await alice.page.evaluate(async () => {
      const registration = await navigator.serviceWorker.register('/web/sw.js', { scope: '/web/' });
      const sw = registration.installing || registration.waiting || registration.active;
      if (sw && sw.state !== 'activated') {
        await new Promise((resolve) => sw.addEventListener('statechange', () => {
          if (sw.state === 'activated' || sw.state === 'redundant') resolve();
        }));
      }
      const state = (registration.active || sw)?.state;
      await registration.unregister();
      return state;
    });
    assert(worker === 'activated', `the service worker starts (state ${worker})`);

    // 2. Alice finds bob and sends a friend request; bob accepts it in the UI.
    await alice.page.getByLabel('Find people by username').fill('bo');
    await alice.page.getByRole('button', { name: 'Search' }).click();
    const bobResult = alice.page.locator('[data-testid=search-result][data-username=bob]');
    await bobResult.getByRole('button', { name: 'Add bob as a friend' }).click();
    await alice.page.locator('[data-testid=outgoing-request]').waitFor({ timeout: STEP_TIMEOUT });
    // bob learns of it on the socket (friend.requested), without reloading.
    const request = bob.page.locator('[data-testid=incoming-request][data-username=alice]');
    await request.waitFor({ timeout: STEP_TIMEOUT });
    await shot(bob.page, '02-bob-friend-request');
    await request.getByRole('button', { name: 'Accept' }).click();
    await bob.page.locator('[data-testid=friend][data-username=alice]').waitFor({ timeout: STEP_TIMEOUT });
    await alice.page.locator('[data-testid=friend][data-username=bob]').waitFor({ timeout: STEP_TIMEOUT });
    log('alice and bob are friends');

    // 3. Alice opens a DM with bob from her friends list and says hello.
    await alice.page.locator('[data-testid=friend][data-username=bob]').getByRole('button', { name: 'Message bob' }).click();
    await waitUntil('alice\'s DM to open', async () =>
      (await alice.page.getByTestId('room-title').textContent()) === 'Bob B.');
    // Focus moved to the message box.
    assert(await alice.page.getByLabel('Message', { exact: true }).evaluate((e) => e === document.activeElement),
      'the message box has focus after opening a room');
    await send(alice.page, 'hello bob');

    // bob sees the room appear with an unread badge, then opens it.
    await waitUntil('bob\'s unread badge', async () =>
      (await badge(bob.page, 'Alice A.')) === '1');
    await shot(bob.page, '03-bob-unread-badge');
    await (await roomButton(bob.page, 'Alice A.')).click();
    await waitUntil('bob to see "hello bob"', async () => (await bodies(bob.page)).includes('hello bob'));
    // Opening the room marks it read: the badge goes away.
    await waitUntil('bob\'s badge to clear', async () =>
      (await badge(bob.page, 'Alice A.')) === '');

    // 4. bob answers; a multi-line message with Shift+Enter.
    const bobBox = bob.page.getByLabel('Message', { exact: true });
    await bobBox.fill('hi alice');
    await bobBox.press('Shift+Enter');
    await bobBox.pressSequentially('how are you?');
    await bobBox.press('Enter');
    await waitUntil('alice to see bob\'s answer', async () =>
      (await bodies(alice.page)).includes('hi alice\nhow are you?'));
    // Each side shows each message exactly once (our own arrives in the 201 and on the socket).
    const aliceView = await bodies(alice.page);
    assert(aliceView.filter((b) => b === 'hello bob').length === 1, 'alice sees her message once: ' + JSON.stringify(aliceView));
    await shot(alice.page, '04-alice-dm');
    log('messages exchanged both ways');

    // 5. bob goes offline: his socket closes.
    const bobSocketsBefore = bob.sockets.length;
    await bob.context.setOffline(true);
    await waitUntil('bob\'s socket to close', async () =>
      bob.sockets.every((s) => s.closed) &&
      (await bob.page.getByTestId('connection').getAttribute('data-state')) === 'offline');
    log('bob is offline');

    // alice sends three messages meanwhile.
    for (const text of ['one', 'two', 'three']) await send(alice.page, text);
    await shot(alice.page, '05-alice-sent-three');
    assert(!(await bodies(bob.page)).includes('one'), 'bob, offline, has not received "one" yet');

    // 6. bob comes back: the client reconnects with since=<last cursor> and the three arrive,
    // in order, by replay.
    await bob.context.setOffline(false);
    await waitForLive(bob);
    await waitUntil('bob to see one, two, three', async () => {
      const b = await bodies(bob.page);
      return ['one', 'two', 'three'].every((x) => b.includes(x));
    });
    const bobView = await bodies(bob.page);
    const i = bobView.indexOf('one');
    assert(JSON.stringify(bobView.slice(i, i + 3)) === JSON.stringify(['one', 'two', 'three']),
      'bob sees the three in order: ' + JSON.stringify(bobView));
    const resumed = bob.sockets.slice(bobSocketsBefore);
    assert(resumed.length >= 1 && resumed.every((s) => /[?&]since=\d+/.test(s.url)),
      'bob reconnected with since=: ' + JSON.stringify(resumed.map((s) => s.url)));
    await shot(bob.page, '06-bob-back-online');
    log('bob resumed with', resumed.map((s) => new URL(s.url).search).join(', '));

    // 7. alice sends a photo; bob's timeline shows its thumbnail.
    await alice.page.getByTestId('attach-input').setInputFiles({
      name: 'gradient.png', mimeType: 'image/png', buffer: makePng(),
    });
    await alice.page.locator('#attach-preview:not([hidden])').waitFor({ timeout: STEP_TIMEOUT });
    const aliceBox = alice.page.getByLabel('Message', { exact: true });
    await aliceBox.fill('a photo for you');
    await aliceBox.press('Enter');
    const thumb = bob.page.locator('[data-testid=timeline] img[data-testid=thumbnail]').first();
    await thumb.waitFor({ timeout: STEP_TIMEOUT });
    await waitUntil('the thumbnail to load in bob\'s timeline', () =>
      thumb.evaluate((img) => img.complete && img.naturalWidth > 0));
    const src = await thumb.getAttribute('src');
    assert(/^\/api\/v1\/attachments\/[0-9a-f-]+\/thumbnail$/.test(src), 'thumbnail src: ' + src);
    await waitUntil('alice\'s own thumbnail', () =>
      alice.page.locator('[data-testid=timeline] img[data-testid=thumbnail]').first()
        .evaluate((img) => img.complete && img.naturalWidth > 0));
    // bob has the room open: what arrives is marked read, no badge stays.
    await waitUntil('bob\'s badge to stay clear', async () =>
      (await badge(bob.page, 'Alice A.')) === '');
    await shot(bob.page, '07-bob-photo');
    log('photo thumbnail displayed');

    // 8. alice edits "three" and deletes "two"; bob sees the edit and a tombstone.
    const row = (page, text) => page.locator('[data-testid=timeline] > li[data-testid=message]')
      .filter({ has: page.locator('[data-testid=message-body]', { hasText: new RegExp(`^${text}$`) }) });
    const three = row(alice.page, 'three');
    await three.getByRole('button', { name: 'Edit' }).click();
    const editBox = alice.page.getByLabel('Edit message');
    await editBox.fill('three (edited)');
    await editBox.press('Enter');
    const two = row(alice.page, 'two');
    alice.page.once('dialog', (d) => d.accept());
    await two.getByRole('button', { name: 'Delete' }).click();
    await waitUntil('bob to see the edit and the tombstone', async () => {
      const b = await bodies(bob.page);
      return b.includes('three (edited)') && !b.includes('two') && b.includes('This message was deleted.');
    });
    await shot(bob.page, '08-bob-edit-delete');
    log('edit and delete seen');

    // 9. A send the server refuses (a body over 4000 characters: 422) shows "failed — retry".
    await aliceBox.fill('x'.repeat(4001));
    await aliceBox.press('Enter');
    const failed = alice.page.locator('[data-testid=timeline] > li[data-status=failed]');
    await failed.waitFor({ timeout: STEP_TIMEOUT });
    assert(await failed.getByRole('button', { name: 'Retry' }).isVisible(), 'a Retry button on the failed send');
    await shot(alice.page, '09-alice-failed-send');
    await failed.getByRole('button', { name: 'Discard' }).click();
    await waitUntil('the failed send to go away', async () => (await failed.count()) === 0);
    log('failed send shown with retry');

    // 9b. A send whose answer is lost (it reached the server, the connection dropped) is retried
    // with the same Idempotency-Key: the server answers with the stored message, nothing doubles.
    const keys = [];
    let dropped = false;
    const pattern = /\/api\/v1\/rooms\/[^/]+\/messages$/;
    await alice.page.route(pattern, async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      keys.push(req.headers()['idempotency-key']);
      if (!dropped) {
        dropped = true;
        await route.fetch(); // the server commits the message...
        return route.abort('connectionreset'); // ...but the answer never arrives
      }
      return route.continue();
    });
    const answered = alice.page.waitForResponse((r) => pattern.test(r.url())
      && r.request().method() === 'POST' && r.status() === 201);
    await send(alice.page, 'sent exactly once');
    await answered; // the retry's answer: the stored 201
    await alice.page.unroute(pattern);
    assert(keys.length >= 2 && keys.every((k) => k && k === keys[0]),
      'the retry reused the Idempotency-Key: ' + JSON.stringify(keys));
    await waitUntil('bob to see the retried message', async () => (await bodies(bob.page)).includes('sent exactly once'));
    await new Promise((r) => setTimeout(r, 300));
    for (const p of [alice, bob]) {
      const n = (await bodies(p.page)).filter((b) => b === 'sent exactly once').length;
      assert(n === 1, `${p.name} sees the retried message once (saw ${n})`);
    }
    log('lost answer retried with the same key:', keys.length, 'attempts');

    // 10. alice creates a group with bob; it appears in bob's room list (room.created).
    await alice.page.getByText('New group').click();
    await alice.page.getByLabel('Group name').fill('weekend');
    await alice.page.getByTestId('group-form').getByLabel('Bob B.').check();
    await alice.page.getByRole('button', { name: 'Create group' }).click();
    await waitUntil('alice\'s group to open', async () =>
      (await alice.page.getByTestId('room-title').textContent()) === 'weekend');
    await send(alice.page, 'welcome to the group');
    await waitUntil('the group with an unread badge in bob\'s list', async () =>
      (await badge(bob.page, 'weekend')) === '1');
    await shot(bob.page, '10-bob-group');
    log('group created');

    // 11. bob signs out (his socket closes for good) and signs back in.
    await bob.page.getByRole('button', { name: 'Sign out' }).click();
    await bob.page.getByTestId('login-form').waitFor({ timeout: STEP_TIMEOUT });
    const login = bob.page.getByTestId('login-form');
    await login.getByLabel('Username').fill('bob');
    await login.getByLabel('Password').fill('correct horse bob');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await waitForLive(bob);
    await (await roomButton(bob.page, 'Alice A.')).click();
    await waitUntil('bob\'s history after signing in again', async () => {
      const b = await bodies(bob.page);
      return b.includes('hello bob') && b.includes('three (edited)') && b.includes('a photo for you');
    });
    await shot(bob.page, '11-bob-signed-in-again');
    log('signed out and in again');

    // 12. A reload of the tab resumes the stream from the cursor kept in sessionStorage.
    const before = bob.sockets.length;
    await bob.page.reload();
    await waitForLive(bob);
    const afterReload = bob.sockets.slice(before);
    assert(afterReload.length >= 1 && /[?&]since=\d+/.test(afterReload[afterReload.length - 1].url),
      'after a reload the socket resumes with since=: ' + JSON.stringify(afterReload.map((s) => s.url)));
    await (await roomButton(alice.page, 'Bob B.')).click();
    await alice.page.getByLabel('Message', { exact: true }).fill('after the reload');
    await alice.page.getByLabel('Message', { exact: true }).press('Enter');
    await waitUntil('bob\'s badge after the reload', async () =>
      (await badge(bob.page, 'Alice A.')) === '1');
    log('reload resumed');

    // 12b. Account: alice sees the sessions she is signed in with, ends one (a "phone" that
    // signed in through the API), and changes her password; her own tab stays signed in and live.
    const signIn = (password, agent) => fetch(base + '/api/v1/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': agent },
      body: JSON.stringify({ username: 'alice', password }),
    });
    const phone = await signIn('correct horse alice', 'e2e-phone');
    assert(phone.status === 200, `the phone signs in (${phone.status})`);
    const phoneCookie = (phone.headers.get('set-cookie') || '').split(';')[0];
    const asPhone = () => fetch(base + '/api/v1/me', { headers: { Cookie: phoneCookie } });
    assert((await asPhone()).status === 200, 'the phone session works');
    await alice.page.getByText('Account', { exact: true }).click();
    const sessions = alice.page.locator('[data-testid=sessions] > li[data-testid=session]');
    await waitUntil('alice\'s two sessions listed', async () => (await sessions.count()) === 2);
    assert(await sessions.filter({ hasText: 'this device' }).count() === 1, 'her tab is marked as this device');
    await sessions.filter({ hasText: 'e2e-phone' }).getByRole('button', { name: 'End session' }).click();
    await waitUntil('the phone\'s session gone from the list', async () => (await sessions.count()) === 1);
    assert((await asPhone()).status === 401, 'the ended session is signed out');
    const pw = alice.page.getByTestId('password-form');
    await pw.getByLabel('Current password').fill('correct horse alice');
    await pw.getByLabel('New password').fill('a fresher horse for alice');
    await pw.getByRole('button', { name: 'Change password' }).click();
    await alice.page.getByTestId('password-status').filter({ hasText: 'Password changed' })
      .waitFor({ timeout: STEP_TIMEOUT });
    assert((await signIn('correct horse alice', 'e2e')).status === 401, 'the old password no longer signs in');
    assert((await signIn('a fresher horse for alice', 'e2e')).status === 200, 'the new one does');
    await waitForLive(alice);
    assert((await alice.page.evaluate(() => fetch('/api/v1/me').then((r) => r.status))) === 200,
      'the tab that changed the password stays signed in');
    await shot(alice.page, '12-account');
    await alice.page.getByText('Account', { exact: true }).click();
    log('sessions listed, one ended, password changed');

    // 13. Swagger UI runs under its own CSP: it renders the document, and nothing is refused.
    const docs = await alice.context.newPage();
    docs.on('pageerror', (e) => alice.errors.push(`docs: page error: ${e.message}`));
    docs.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) alice.errors.push(`docs: ${m.text()}`);
    });
    const docsRes = await docs.goto(server.url + '/docs/');
    assert(/frame-ancestors 'none'/.test(docsRes.headers()['content-security-policy'] || ''), 'a CSP on /docs/');
    await waitUntil('Swagger UI listing the operations', async () =>
      (await docs.locator('.opblock').count()) > 20);
    await shot(docs, '13-swagger-ui');
    await docs.close();
    log('swagger ui rendered under its CSP');

    // 14. The first administrator is made with the CLI (README's tour); alice's page then shows
    // the administration panel. She makes an invite code, finds bob's report of her message,
    // deletes that message (bob's tab shows the tombstone) and resolves the report.
    const promoted = await runCli(server, ['admin', 'promote', 'alice']);
    assert(promoted.code === 0, 'hubbub admin promote alice: ' + promoted.output);
    await alice.page.reload();
    await waitForLive(alice);
    const adminPanel = alice.page.getByTestId('admin');
    await adminPanel.getByText('Administration', { exact: true }).click();
    await adminPanel.getByRole('button', { name: 'Make an invite code' }).click();
    await alice.page.getByTestId('admin-invite-code').filter({ hasText: 'Invite code' })
      .waitFor({ timeout: STEP_TIMEOUT });
    await waitUntil('the invite listed', async () =>
      (await alice.page.locator('[data-testid=admin-invites] > li').count()) === 1);
    await (await roomButton(bob.page, 'Alice A.')).click();
    let reportedMessage;
    await waitUntil('bob\'s DM with "hello bob"', async () => {
      reportedMessage = (await timeline(bob.page)).find((m) => m.body === 'hello bob');
      return !!reportedMessage;
    });
    const reported = await bob.page.evaluate((id) => fetch('/api/v1/reports', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message_id: id, reason: 'e2e: not nice' }),
    }).then((r) => r.status), reportedMessage.id);
    assert(reported === 201, `bob reports the message (${reported})`);
    await adminPanel.getByText('Administration', { exact: true }).click();
    await adminPanel.getByText('Administration', { exact: true }).click();
    const report = alice.page.locator('[data-testid=admin-reports] > li[data-testid=admin-report]');
    await waitUntil('the report listed with the message', async () =>
      (await report.count()) === 1 && (await report.getByTestId('report-message').textContent()) === 'hello bob');
    await shot(alice.page, '14-admin');
    await report.getByRole('button', { name: 'Delete the message' }).click();
    await waitUntil('bob\'s tab showing the deleted message as a tombstone', async () =>
      (await timeline(bob.page)).find((m) => m.id === reportedMessage.id)?.status === 'deleted');
    await report.getByRole('button', { name: 'Resolve' }).click();
    await alice.page.locator('[data-testid=admin-reports]').getByText('No open reports.')
      .waitFor({ timeout: STEP_TIMEOUT });
    log('admin: invite made, report handled, message deleted');

    // 15. bob deletes his account from the Account panel: his tab goes back to the sign-in form,
    // he can't sign in again, and alice's open DM shows his messages as deleted.
    await (await roomButton(alice.page, 'Bob B.')).click();
    await waitUntil('alice\'s DM with bob\'s answer', async () =>
      (await bodies(alice.page)).includes('hi alice\nhow are you?'));
    await bob.page.getByText('Account', { exact: true }).click();
    const del = bob.page.getByTestId('delete-account-form');
    await del.getByLabel('Password').fill('correct horse bob');
    await del.getByLabel("I understand that this can't be undone").check();
    await del.getByRole('button', { name: 'Delete my account' }).click();
    await bob.page.getByTestId('login-form').waitFor({ timeout: STEP_TIMEOUT });
    const bobAgain = await fetch(base + '/api/v1/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: 'correct horse bob' }),
    });
    assert(bobAgain.status === 401, `a deleted account can't sign in (${bobAgain.status})`);
    await waitUntil('alice seeing bob\'s answer as deleted', async () =>
      !(await bodies(alice.page)).includes('hi alice\nhow are you?'));
    await shot(alice.page, '15-after-bob-deleted');
    log('account deleted');

    // 16. Typing: carol (a new account) opens a DM with alice. While carol types in the
    // composer, alice's open room says "Carol C. is typing…"; the line clears when carol sends.
    const carol = await person(browser, base, 'carol');
    people.push(carol);
    await register(carol, 'carol', 'Carol C.', 'correct horse carol');
    const dmStatus = await carol.page.evaluate(async () => {
      const found = await (await fetch('/api/v1/users?prefix=alice')).json();
      const target = found.users.find((u) => u.username === 'alice');
      const r = await fetch('/api/v1/dms', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user_id: target.id }),
      });
      return r.status;
    });
    assert(dmStatus === 201, `carol opens a DM with alice (${dmStatus})`);
    await (await roomButton(alice.page, 'Carol C.')).click();
    await (await roomButton(carol.page, 'Alice A.')).click();
    const typingLine = alice.page.getByTestId('typing');
    const carolBox = carol.page.getByLabel('Message', { exact: true });
    await carolBox.pressSequentially('hello al', { delay: 20 });
    await waitUntil('alice seeing "Carol C. is typing…"', async () =>
      (await typingLine.isVisible()) && (await typingLine.textContent()) === 'Carol C. is typing…');
    await shot(alice.page, '16-typing');
    await carolBox.pressSequentially('ice', { delay: 20 });
    await carolBox.press('Enter');
    await waitUntil('alice\'s typing line cleared by carol\'s message', async () =>
      !(await typingLine.isVisible()) && (await bodies(alice.page)).includes('hello alice'));
    log('typing shown, then cleared by the message');

    // 17. Search: carol sends a Korean message with markup in it; alice, in another room,
    // finds it by the first word's stem ("서울" of "서울에서"), sees the match highlighted and
    // the markup as text, and clicking the hit opens the DM with carol.
    await send(carol.page, '서울에서 만나요 <img src=x onerror="window.pwned=1">');
    await waitUntil('alice\'s DM with carol\'s Korean message', async () =>
      (await bodies(alice.page)).some((b) => b.startsWith('서울에서')));
    await alice.page.getByTestId('room-list').getByRole('button').filter({ hasNotText: 'Carol C.' }).first().click();
    await waitUntil('alice in another room', async () =>
      (await alice.page.getByTestId('room-title').textContent()) !== 'Carol C.');
    await alice.page.getByTestId('message-search-input').fill('서울');
    await alice.page.getByTestId('message-search-form').getByRole('button', { name: 'Find' }).click();
    const hit = alice.page.locator('[data-testid=message-hits] > li[data-testid=message-hit]');
    await waitUntil('one search hit', async () => (await hit.count()) === 1);
    const marked = await hit.locator('mark').allTextContents();
    assert(JSON.stringify(marked) === JSON.stringify(['서울']), `the stem is highlighted (${marked})`);
    const snippetText = await hit.getByTestId('hit-snippet').textContent();
    assert(snippetText.includes('<img src=x'), `markup shown as text (${snippetText})`);
    assert(await hit.locator('img').count() === 0, 'no element from the message');
    assert(!(await alice.page.evaluate(() => window.pwned)), 'no script ran');
    await shot(alice.page, '17-search');
    await hit.getByRole('button').click();
    await waitUntil('the hit\'s room open', async () =>
      (await alice.page.getByTestId('room-title').textContent()) === 'Carol C.');
    const refused = alice.page.locator('[data-testid=message-hits]');
    await alice.page.getByTestId('message-search-input').fill('a');
    await alice.page.getByTestId('message-search-form').getByRole('button', { name: 'Find' }).click();
    await waitUntil('a one-letter search explained', async () =>
      (await refused.getByTestId('message-search-error').count()) === 1);
    log('search: Korean stem found, highlighted, markup inert, hit opens its room');

    const errors = people.flatMap((p) => p.errors);
    assert(errors.length === 0, 'no page errors or CSP violations:\n' + errors.join('\n'));
    ok = true;
  } catch (e) {
    console.error('FAILED:', e.stack || e);
    for (const p of people) {
      if (p.page) await shot(p.page, `failure-${p.name}`).catch(() => {});
      if (p.errors.length) console.error(p.errors.join('\n'));
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => { server.child.kill('SIGKILL'); r(); }, 5000);
      server.child.on('exit', () => { clearTimeout(t); r(); });
    });
    rmSync(server.dataDir, { recursive: true, force: true });
  }
  log(ok ? 'PASS' : 'FAIL', `(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
