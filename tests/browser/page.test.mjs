// The page (www/) in a real headless Chromium, served by a real `wrangler dev --local` with
// the Worker and local KV: the live view follows registrations and lease expiry made through
// the HTTP API on the change feed (no request while nothing changes; polling only without
// WebSockets), survives an unreachable registry, stays incremental with hundreds of
// instances; the simulator runs the wasm core and its charts show the core's exact counts.
//
// Needs: the Worker built (scripts/build-worker.sh), the web wasm built into www/pkg
// (scripts/build-wasm.sh), /usr/bin/chromium (scripts/setup.sh). scripts/test.sh does all three.
// Screenshots go to tests/artifacts/; with VASCO_UPDATE_SCREENSHOTS=1 the README's copies in
// docs/screenshots/ are rewritten too.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ROOT, startWrangler } from '../support/wrangler.mjs';
import { launch, screenshot, watch } from './browser.mjs';

/** @type {Awaited<ReturnType<typeof startWrangler>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  if (!existsSync(join(ROOT, 'www', 'pkg', 'vasco_wasm.js'))) {
    throw new Error('www/pkg is not built: run bash scripts/build-wasm.sh');
  }
  const [started, launched] = await Promise.allSettled([startWrangler({ cacheMs: 0 }), launch()]);
  if (started.status === 'fulfilled') server = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (retried503.length > 0) {
    console.log(`# writes answered 503 ${retried503.length} time(s), retried:\n# ${retried503.join('\n# ')}`);
  }
});

// --- helpers ----------------------------------------------------------------------------------

/**
 * A write through the API with the test token. Two 503 answers mean "try again" and are retried
 * a few times (and reported at the end) rather than failing a page test: the registry's
 * `kv_unavailable`, and wrangler's "Your worker restarted mid-request", which `wrangler dev`
 * sends when it reloads the Worker because build/ or crates/ changed under it (a rebuild in
 * another terminal). wrangler retries GETs itself, so the page's polls never see it.
 */
const retried503 = [];
async function write(method, path, body, expected) {
  for (let attempt = 1; ; attempt++) {
    const res = await server.fetch(path, {
      method,
      headers: server.auth(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status === 503 && attempt < 4 && /kv_unavailable|restarted mid-request/.test(text)) {
      retried503.push(`${method} ${path}: ${text}`);
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      continue;
    }
    assert.equal(res.status, expected, `${method} ${path}: ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

const put = (name, version, id, body) => write('PUT', `/v1/services/${name}/${version}/instances/${id}`, body, 200);
const setStatus = (name, version, id, body) => write('PUT', `/v1/services/${name}/${version}/instances/${id}/status`, body, 200);
const del = (name, version, id) => write('DELETE', `/v1/services/${name}/${version}/instances/${id}`, undefined, 204);

/** Runs `task` over `items`, `limit` at a time. */
async function inBatches(items, limit, task) {
  for (let i = 0; i < items.length; i += limit) {
    await Promise.all(items.slice(i, i + limit).map(task));
  }
}

/**
 * Opens the page in a fresh context; `run` gets the page and its problem watcher. The context
 * is always closed; unless a test excuses them, console errors or warnings, uncaught
 * exceptions, failed requests and HTTP errors fail the test.
 */
async function withPage(options, run) {
  const { hash = '', viewport = { width: 1200, height: 900 }, setup } = options;
  const context = await browser.newContext({ viewport });
  try {
    const page = await context.newPage();
    const watcher = watch(page);
    if (setup) await setup(page, watcher);
    await page.goto(`${server.url}/${hash}`);
    await run(page, watcher);
    assert.deepEqual(watcher.problems(), [], 'the page logged no errors and no request failed');
  } finally {
    await context.close();
  }
}

const group = (page, key) => page.locator(`#live-groups section.group[data-key="${key}"]`);
const row = (page, key, id) => group(page, key).locator(`tr[data-id="${id}"]`);

/** Seconds in a countdown ("57 s", "9.8 s", "4 min 36 s"). */
function seconds(text) {
  const minutes = /(\d+) min (\d+) s/.exec(text);
  if (minutes) return Number(minutes[1]) * 60 + Number(minutes[2]);
  return Number.parseFloat(text);
}

/** Waits until the live view's groups are exactly `keys`, in this order. */
async function expectGroups(page, keys) {
  await page.waitForFunction(
    (want) =>
      JSON.stringify([...document.querySelectorAll('#live-groups section.group')].map((g) => g.dataset.key)) ===
      JSON.stringify(want),
    keys,
  );
}

/** The pick counts of one strategy's chart, by instance id (from the data the bars show). */
function chartCounts(page, strategy) {
  return page.$$eval(`#sim-charts [data-strategy="${strategy}"] li`, (items) =>
    Object.fromEntries(items.map((li) => [li.dataset.id, Number(li.dataset.count)])),
  );
}

const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Submits the resolve box until the line of `name` matches `pattern`: `POST /v1/resolve` reads
 * the KV snapshot, which a change reaches within about a second (writes are coalesced to one a
 * second). Polls against a deadline.
 */
async function resolveUntil(page, name, pattern, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    await page.locator('#resolve-form button[type="submit"]').click();
    await page.waitForFunction(() => document.querySelector('#resolve-output')?.getAttribute('aria-busy') !== 'true');
    const line = page.locator(`.resolved-list li[data-name="${name}"]`);
    const text = (await line.count()) ? await line.textContent() : '';
    if (pattern.test(text)) return;
    assert.ok(Date.now() < deadline, `the resolve box never matched ${pattern} (last: ${text})`);
    await page.waitForTimeout(100);
  }
}

async function noHorizontalScroll(page, label) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${label}: the page is ${scroll}px wide in a ${client}px viewport`);
}

// --- the live view ----------------------------------------------------------------------------

test('live view: empty registry, then instances appear with countdowns and leave when their lease lapses', async () => {
  await withPage({}, async (page) => {
    await page.locator('#live-status[data-state="ok"]').waitFor();
    await page.locator('#live-empty').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#live-summary').textContent(), '0 services · 0 versions · 0 instances');
    assert.equal(await page.locator('#live-groups section.group').count(), 0);

    await Promise.all([
      put('api', '2.1.0', 'a1', { url: '10.0.0.1:3000', ttl: 60, zone: 'eu-1', weight: 2, tags: ['v2', 'canary'], meta: { commit: '5e1f0c2' } }),
      put('api', '2.1.0', 'a2', { url: '10.0.0.2:3000', ttl: 60, zone: 'eu-2', tags: ['v2'] }),
      put('api', '2.0.0', 'old', { url: '10.0.0.9:3000', ttl: 60, zone: 'eu-1' }),
      put('auth', '1.0.0', 'x1', { url: 'https://auth-1.internal:8443', ttl: 60, tags: ['oauth'] }),
      put('flash', '1.0.0', 'f1', { url: '10.0.0.7:7000', ttl: 4 }),
    ]);

    // Everything appears without a reload, grouped by name@version, newest version first.
    await expectGroups(page, ['api@2.1.0', 'api@2.0.0', 'auth@1.0.0', 'flash@1.0.0']);
    await page.locator('#live-empty').waitFor({ state: 'hidden' });
    const a1 = row(page, 'api@2.1.0', 'a1');
    assert.equal(await a1.locator('.url').textContent(), '10.0.0.1:3000');
    assert.equal(await a1.locator('.zone').textContent(), 'eu-1');
    assert.equal(await a1.locator('.weight').textContent(), '2');
    assert.deepEqual(await a1.locator('.tags .tag').allTextContents(), ['v2', 'canary']);
    assert.equal(await a1.locator('.meta').textContent(), 'commit=5e1f0c2');
    assert.equal(await row(page, 'auth@1.0.0', 'x1').locator('.zone').textContent(), '—');
    assert.equal(await group(page, 'api@2.1.0').locator('h3 .count').textContent(), '2 instances');
    assert.match(await page.locator('#live-summary').textContent(), /^3 services · 4 versions · 5 instances$/);

    // Countdowns to each lease's end as last heard of, counting down on the registry's clock.
    const first = seconds(await a1.locator('.remaining').textContent());
    assert.ok(first > 50 && first <= 60, `a1 expires in ${first} s of its 60 s lease`);
    await page.waitForFunction(
      (before) => Number.parseFloat(document.querySelector('tr[data-id="a1"] .remaining').textContent) < before,
      first,
    );
    assert.match(await page.locator('#live-age').textContent(), /^\d+\.\d s ago$/);

    // The 4 s lease lapses: the row and then its empty group leave, on the server's word.
    const f1 = row(page, 'flash@1.0.0', 'f1');
    assert.ok(seconds(await f1.locator('.remaining').textContent()) <= 4);
    await f1.waitFor({ state: 'detached', timeout: 8_000 });
    await expectGroups(page, ['api@2.1.0', 'api@2.0.0', 'auth@1.0.0']);
    assert.match(await page.locator('#live-announcer').textContent(), /Gone: flash@1\.0\.0 f1/);

    // Rows are updated in place: a new instance does not rebuild its neighbours.
    await a1.evaluate((el) => {
      el.dataset.marked = 'yes';
    });
    await Promise.all([
      put('api', '2.1.0', 'a3', { url: '10.0.0.3:3000', ttl: 60, zone: 'eu-1', tags: ['v2'] }),
      // A heartbeat is an upsert; a changed weight shows in the same row.
      put('api', '2.1.0', 'a1', { url: '10.0.0.1:3000', ttl: 60, zone: 'eu-1', weight: 5, tags: ['v2', 'canary'], meta: { commit: '5e1f0c2' } }),
    ]);
    await row(page, 'api@2.1.0', 'a3').waitFor();
    await page.waitForFunction(() => document.querySelector('tr[data-id="a1"] .weight').textContent === '5');
    assert.equal(await a1.getAttribute('data-marked'), 'yes', 'the a1 row is the same element');
    assert.deepEqual(
      await group(page, 'api@2.1.0').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id)),
      ['a1', 'a2', 'a3'],
    );

    // A deregistration leaves as soon as the feed says so.
    await del('api', '2.1.0', 'a2');
    await row(page, 'api@2.1.0', 'a2').waitFor({ state: 'detached' });
    assert.equal(await group(page, 'api@2.1.0').locator('h3 .count').textContent(), '2 instances');

    await put('api', '2.1.0', 'a2', { url: '10.0.0.2:3000', ttl: 60, zone: 'eu-2', tags: ['v2'] });
    await row(page, 'api@2.1.0', 'a2').waitFor();
  });
});

/**
 * Waits (bounded) until every service's KV snapshot holds its object's latest change index: a
 * registration's snapshot write is coalesced (written up to a second later, by the object's
 * alarm or by the next request that reaches the object), so until then a consistent read may
 * carry that write and its KV operation.
 */
async function snapshotsWritten() {
  const deadline = Date.now() + 10_000;
  const catalog = await server.fetch('/v1/services?consistent', { headers: server.auth() });
  const { services } = await catalog.json();
  for (const { name } of services) {
    for (;;) {
      const [kv, object] = await Promise.all(
        [`/v1/services/${name}?all`, `/v1/services/${name}?consistent&all`].map((path) => server.fetch(path, { headers: server.auth() })),
      );
      await Promise.all([kv.arrayBuffer(), object.arrayBuffer()]);
      if (kv.headers.get('x-vasco-index') === object.headers.get('x-vasco-index')) break;
      assert.ok(Date.now() < deadline, `the KV snapshot of ${name} did not catch up with its object`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

test('live view follows the change feed: changes need no reload and no request; idle, the page makes none', async () => {
  await put('feedy', '1.0.0', 'f0', { url: '10.4.0.0:80', ttl: 120 });
  await snapshotsWritten();
  /** The page's API requests (`GET /v1/...`), its feed sockets and the KV operations its requests cost. */
  const requests = [];
  const sockets = [];
  const kvOps = [];
  await withPage(
    {
      setup: async (page) => {
        page.on('request', (request) => {
          const url = new URL(request.url());
          if (url.pathname.startsWith('/v1/')) requests.push(`${request.method()} ${url.pathname}${url.search}`);
        });
        page.on('response', (response) => {
          const ops = response.headers()['x-vasco-kv-ops'];
          if (ops !== undefined) kvOps.push(Number(ops));
        });
        page.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname));
      },
    },
    async (page) => {
      // Loaded once: the catalog from the feed, then each service from its object, no KV.
      await row(page, 'feedy@1.0.0', 'f0').waitFor();
      assert.deepEqual(sockets, ['/v1/watch']);
      assert.ok(requests.includes('GET /v1/services/feedy?consistent&all'), requests.join(', '));
      assert.ok(!requests.includes('GET /v1/instances'), 'no /v1/instances with a feed');
      assert.equal(kvOps.reduce((a, b) => a + b, 0), 0, 'loading cost no KV operation');

      // A registration and a deregistration arrive on the feed, no reload and no request.
      requests.length = 0;
      await put('feedy', '1.0.0', 'f1', { url: '10.4.0.1:80', ttl: 120, tags: ['new'] });
      await row(page, 'feedy@1.0.0', 'f1').waitFor();
      assert.deepEqual(await row(page, 'feedy@1.0.0', 'f1').locator('.tag').allTextContents(), ['new']);
      await del('feedy', '1.0.0', 'f1');
      await row(page, 'feedy@1.0.0', 'f1').waitFor({ state: 'detached' });
      // The announcement is written on the next animation frame (cleared first, so a repeat is
      // read again): wait for it rather than read it in between.
      await page.locator('#live-announcer').filter({ hasText: /Gone: feedy@1\.0\.0 f1/ }).waitFor();
      assert.deepEqual(requests, [], 'changes in a version the page shows cost no request');

      // A 3 s lease that keeps renewing: its countdown runs out as last heard of, and the row
      // stays (renewals are not sent; it says "renewed"). Meanwhile the page is idle: no
      // request at all (so no KV operation) over 5 s of renewals, and the row is untouched.
      await put('feedy', '1.0.0', 'r', { url: '10.4.0.2:80', ttl: 3 });
      const r = row(page, 'feedy@1.0.0', 'r');
      await r.waitFor();
      requests.length = 0;
      await r.evaluate((el) => {
        el.dataset.marked = 'yes';
      });
      const idleFrom = Date.now();
      while (Date.now() - idleFrom < 5_000) {
        await put('feedy', '1.0.0', 'r', { url: '10.4.0.2:80', ttl: 3 });
        await new Promise((resolve) => setTimeout(resolve, 500)); // the renewal period under test
      }
      assert.equal(await r.locator('.remaining').textContent(), 'renewed');
      assert.match(await r.getAttribute('class'), /\brenewed\b/);
      await screenshot(page, 'live-renewed');
      assert.deepEqual(requests, [], 'an idle page makes no request');
      assert.equal(await r.getAttribute('data-marked'), 'yes', 'the same row element throughout');
      assert.ok(seconds(await row(page, 'feedy@1.0.0', 'f0').locator('.remaining').textContent()) < 120);

      // Renewals stop: the lease ends and the row leaves on the registry's word.
      await r.waitFor({ state: 'detached', timeout: 10_000 });
      assert.deepEqual(requests, [], 'a lease end is a message too');
    },
  );
});

test('live view without WebSockets polls /v1/instances instead', async () => {
  await put('feedy', '1.0.0', 'f0', { url: '10.4.0.0:80', ttl: 120 });
  const polls = [];
  await withPage(
    {
      setup: async (page) => {
        await page.addInitScript(() => {
          delete window.WebSocket;
        });
        page.on('request', (request) => {
          if (new URL(request.url()).pathname === '/v1/instances') polls.push(request.url());
        });
      },
    },
    async (page) => {
      await row(page, 'feedy@1.0.0', 'f0').waitFor();
      await put('feedy', '1.0.0', 'p1', { url: '10.4.0.3:80', ttl: 120 });
      await row(page, 'feedy@1.0.0', 'p1').waitFor();
      await del('feedy', '1.0.0', 'p1');
      await row(page, 'feedy@1.0.0', 'p1').waitFor({ state: 'detached' });
      assert.ok(polls.length >= 2, `polled ${polls.length} times`);
    },
  );
});

test('live view with a read token: refused until it is set under Settings, then the feed carries it', async () => {
  const guarded = await startWrangler({ cacheMs: 0, readToken: 'read-secret' });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  try {
    const res = await guarded.fetch('/v1/services/guarded/1.0.0/instances/g1', {
      method: 'PUT',
      headers: guarded.auth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ url: '10.5.0.1:80', ttl: 120 }),
    });
    assert.equal(res.status, 200, await res.text());
    const page = await context.newPage();
    const watcher = watch(page);
    // Refused reads before the token is set: the feed's upgrade and the read that says why.
    watcher.expect(/HTTP 401: GET http:\/\/127\.0\.0\.1:\d+\/v1\/instances/);
    watcher.expect(/console error: Failed to load resource: the server responded with a status of 401/);
    watcher.expect(/console error: WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/v1\/watch' failed/);
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${guarded.url}/`);
    await page.locator('#live-error-text', { hasText: 'Set a read token under Settings' }).waitFor();

    await page.locator('.settings summary').click();
    await page.locator('#read-token').fill('read-secret');
    await page.locator('#read-token').press('Enter');
    await page.locator('#live-groups tr[data-id="g1"]').waitFor();
    await page.locator('#live-error').waitFor({ state: 'hidden' });
    assert.match(sockets.at(-1), /\/v1\/watch\?token=read-secret$/);

    // Changes come on the token's feed.
    await guarded.fetch('/v1/services/guarded/1.0.0/instances/g1', { method: 'DELETE', headers: guarded.auth() });
    await page.locator('#live-groups tr[data-id="g1"]').waitFor({ state: 'detached' });
    assert.deepEqual(watcher.problems(), []);
  } finally {
    await context.close();
    await guarded.stop();
  }
});

test('resolve box: the registry answer, and the instance each strategy of the wasm core picks', async () => {
  await Promise.all([
    put('pay', '3.1.0', 'p1', { url: '10.1.0.1:80', ttl: 120, zone: 'eu-1' }),
    put('pay', '3.1.0', 'p2', { url: '10.1.0.2:80', ttl: 120, zone: 'eu-2', weight: 3 }),
    put('pay', '3.1.0', 'p3', { url: '10.1.0.3:80', ttl: 120, zone: 'eu-1' }),
    put('pay', '3.0.0', 'p0', { url: '10.1.0.9:80', ttl: 120, zone: 'eu-2' }),
    put('auth', '1.0.0', 'x1', { url: 'https://auth-1.internal:8443', ttl: 120, tags: ['oauth'] }),
  ]);
  await withPage({}, async (page) => {
    await row(page, 'pay@3.1.0', 'p3').waitFor();
    // Keyboard only: type, move to the zone field, submit with Enter.
    await page.locator('#resolve-input').focus();
    await page.keyboard.type('pay@^3, auth@1.0.0, db@^1');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'resolve-zone');
    await page.keyboard.type('eu-2');
    await page.keyboard.press('Enter');
    await page.locator('#resolve-picks').waitFor();

    const res = await server.fetch('/v1/resolve', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dependencies: { pay: '^3', auth: '1.0.0', db: '^1' } }),
    });
    const answer = await res.json();
    assert.equal(answer.resolved.pay.version, '3.1.0');
    assert.deepEqual(answer.missing, ['db']);

    assert.equal(await page.locator('.resolve-summary').textContent(), '2 of 3 dependencies resolved; missing: db.');
    await page.locator('#resolve-status', { hasText: '2 of 3 dependencies resolved' }).waitFor({ state: 'attached' });
    assert.match(await page.locator('.resolved-list li[data-name="pay"]').textContent(), /→ 3\.1\.0 \(3 instances: p1 10\.1\.0\.1:80, p2 10\.1\.0\.2:80, p3 10\.1\.0\.3:80\)/);
    assert.match(await page.locator('.resolved-list li[data-name="db"]').textContent(), /no live instance matches/);

    const picks = async () =>
      page.$$eval('#resolve-picks tbody tr', (rows) =>
        Object.fromEntries(
          rows.map((r) => [
            r.dataset.strategy,
            Object.fromEntries([...r.querySelectorAll('td[data-name]')].map((td) => [td.dataset.name, td.querySelector('.picked')?.textContent])),
          ]),
        ),
      );
    const first = await picks();
    assert.deepEqual(Object.keys(first), ['random', 'round-robin', 'weighted', 'least-request', 'maglev', 'ring', 'zone']);
    const payIds = answer.resolved.pay.instances.map((i) => i.id);
    for (const [strategy, chosen] of Object.entries(first)) {
      assert.ok(payIds.includes(chosen.pay), `${strategy} picked ${chosen.pay} of ${payIds}`);
      assert.equal(chosen.auth, 'x1', `${strategy} picks the only auth instance`);
    }
    // Zone preference keeps to the local zone when an instance is there: p2 is the only eu-2.
    assert.equal(first.zone.pay, 'p2');

    // Consistent hashing is sticky: the same key picks the same instance again.
    await page.locator('#resolve-form button[type="submit"]').click();
    await page.waitForFunction(() => document.querySelector('#resolve-output')?.getAttribute('aria-busy') !== 'true');
    const second = await picks();
    assert.equal(second.maglev.pay, first.maglev.pay);
    assert.equal(second.ring.pay, first.ring.pay);

    // A bad name is caught before any request, and said so.
    await page.locator('#resolve-input').fill('Pay@^3');
    await page.locator('#resolve-input').press('Enter');
    await page.locator('#resolve-problem', { hasText: 'is not a service name' }).waitFor();
    assert.equal(await page.locator('#resolve-input').getAttribute('aria-invalid'), 'true');

    // The README screenshot of the live view: groups, countdowns, a status badge (the old
    // version drained) and a resolved box.
    await setStatus('pay', '3.0.0', 'p0', { status: 'maintenance', reason: 'drained before removal' });
    await row(page, 'pay@3.0.0', 'p0').locator('.badge', { hasText: 'maintenance' }).waitFor();
    await page.locator('#resolve-input').fill('pay@^3, auth@1.0.0, db@^1');
    await page.locator('#resolve-input').press('Enter');
    await page.locator('#resolve-picks').waitFor();
    await page.locator('#resolve-problem').waitFor({ state: 'hidden' });
    await page.locator('#resolve-input').blur();
    await screenshot(page, 'live', { fullPage: true, doc: true });
  });
});

test('live view: a status set through the API shows as a badge on the feed; the resolve box skips it', async () => {
  await Promise.all([
    put('stat', '1.0.0', 's1', { url: '10.6.0.1:80', ttl: 120 }),
    put('stat', '1.0.0', 's2', { url: '10.6.0.2:80', ttl: 120 }),
  ]);
  const requests = [];
  await withPage(
    {
      setup: async (page) => {
        page.on('request', (request) => {
          const url = new URL(request.url());
          if (url.pathname.startsWith('/v1/')) requests.push(`${request.method()} ${url.pathname}${url.search}`);
        });
      },
    },
    async (page) => {
      const s1 = row(page, 'stat@1.0.0', 's1');
      const s2 = row(page, 'stat@1.0.0', 's2');
      await s2.waitFor();
      assert.equal(await s1.locator('.badge').textContent(), 'passing');
      assert.equal(await s1.getAttribute('data-status'), 'passing');
      await s1.evaluate((el) => {
        el.dataset.marked = 'yes';
      });

      // Maintenance, set through the API: the badge and the reason change through the feed,
      // with no request, and the row is greyed out of rotation (the core's rule).
      requests.length = 0;
      await setStatus('stat', '1.0.0', 's1', { status: 'maintenance', reason: 'deploy', by: 'ci' });
      await s1.locator('.badge', { hasText: 'maintenance' }).waitFor();
      assert.equal(await s1.locator('.reason').textContent(), 'deploy');
      await page.waitForFunction(() => document.querySelector('#live-groups tr[data-id="s1"]')?.classList.contains('out'));
      assert.match(await s1.locator('.health').textContent(), /out of rotation/);
      assert.equal(await s1.getAttribute('data-marked'), 'yes', 'the same row, updated in place');
      assert.doesNotMatch((await s2.getAttribute('class')) ?? '', /\bout\b/);
      assert.match(await page.locator('#live-announcer').textContent(), /Status: stat@1\.0\.0 s1 maintenance \(deploy\)/);
      assert.deepEqual(requests, [], 'the change came on the feed');
      await screenshot(page.locator('#live-groups section.group[data-key="stat@1.0.0"]'), 'live-status');

      // The resolve box: the registry resolves s2 only, and every strategy of the core picks it.
      const picks = () =>
        page.$$eval('#resolve-picks td[data-name="stat"]', (cells) => cells.map((td) => td.querySelector('.picked')?.textContent));
      await page.locator('#resolve-input').fill('stat@^1');
      await resolveUntil(page, 'stat', /1 instance:/);
      assert.equal(await page.locator('.resolved-list li[data-name="stat"]').textContent(), 'stat@^1 → 1.0.0 (1 instance: s2 10.6.0.2:80)');
      assert.deepEqual(await picks(), ['s2', 's2', 's2', 's2', 's2', 's2']);

      // s1 passing again and s2 warning: both resolve, and the core picks the passing one.
      await setStatus('stat', '1.0.0', 's1', { status: 'passing' });
      await setStatus('stat', '1.0.0', 's2', { status: 'warning', reason: 'slow' });
      await s2.locator('.badge', { hasText: 'warning' }).waitFor();
      await s1.locator('.badge', { hasText: 'passing' }).waitFor();
      await page.waitForFunction(() => !document.querySelector('#live-groups tr[data-id="s1"]')?.classList.contains('out'));
      assert.doesNotMatch((await s2.getAttribute('class')) ?? '', /\bout\b/, 'warning is in rotation');
      await resolveUntil(page, 'stat', /2 instances/);
      assert.match(await page.locator('.resolved-list li[data-name="stat"]').textContent(), /s2 10\.6\.0\.2:80 \[warning\]/);
      assert.deepEqual(await picks(), ['s1', 's1', 's1', 's1', 's1', 's1'], 'warning only when no passing one is left');

      // A failed check result (not a status set) is critical too, with its note.
      await setStatus('stat', '1.0.0', 's2', { check: { status: 'critical', note: 'db down' } });
      await s2.locator('.badge', { hasText: 'critical' }).waitFor();
      assert.equal(await s2.locator('.reason').textContent(), 'db down');
      await page.waitForFunction(() => document.querySelector('#live-groups tr[data-id="s2"]')?.classList.contains('out'));
    },
  );
  await Promise.all([del('stat', '1.0.0', 's1'), del('stat', '1.0.0', 's2')]);
});

test('live view with hundreds of instances: rendered incrementally, no rebuild on each change', async () => {
  const ids = Array.from({ length: 300 }, (_, i) => `n${String(i).padStart(3, '0')}`);
  await inBatches(ids, 25, (id, i) =>
    put('bulk', '1.0.0', id, { url: `10.2.${Math.floor(i / 250)}.${i % 250}:8080`, ttl: 120, zone: `z-${i % 3}` }),
  );
  await withPage({}, async (page) => {
    const bulk = group(page, 'bulk@1.0.0');
    await bulk.locator('h3 .count', { hasText: '300 instances' }).waitFor({ timeout: 15_000 });
    assert.equal(await bulk.locator('tbody tr').count(), 300);

    // Changes elsewhere (another service joins, then leaves) touch no row of this group.
    await page.evaluate(() => {
      window.__rowChanges = 0;
      new MutationObserver((records) => {
        for (const record of records) {
          for (const node of [...record.addedNodes, ...record.removedNodes]) {
            if (node.nodeName === 'TR' || node.nodeName === 'SECTION') window.__rowChanges += 1;
          }
        }
      }).observe(document.querySelector('#live-groups section.group[data-key="bulk@1.0.0"]'), { childList: true, subtree: true });
    });
    const updates = Number(await page.locator('#live-groups').getAttribute('data-updates'));
    await put('bystander', '1.0.0', 'b1', { url: '10.3.0.1:80', ttl: 60 });
    await row(page, 'bystander@1.0.0', 'b1').waitFor();
    await del('bystander', '1.0.0', 'b1');
    await group(page, 'bystander@1.0.0').waitFor({ state: 'detached' });
    assert.ok(Number(await page.locator('#live-groups').getAttribute('data-updates')) >= updates + 2, 'two updates');
    assert.equal(await page.evaluate(() => window.__rowChanges), 0, 'no bulk row added or removed');

    // Removing 100 removes exactly those rows; the others stay the same elements.
    await bulk.locator('tr[data-id="n299"]').evaluate((el) => {
      el.dataset.marked = 'yes';
    });
    await inBatches(ids.slice(0, 100), 25, (id) => del('bulk', '1.0.0', id));
    await bulk.locator('h3 .count', { hasText: '200 instances' }).waitFor();
    assert.equal(await bulk.locator('tbody tr').count(), 200);
    assert.equal(await bulk.locator('tr[data-id="n299"]').getAttribute('data-marked'), 'yes');
    assert.equal(await page.evaluate(() => window.__rowChanges), 100, 'exactly the 100 removed rows left');
  });
  await inBatches(ids.slice(100), 25, (id) => del('bulk', '1.0.0', id));
});

test('live view: an unreachable registry shows a message, keeps the last data and retries', async () => {
  await put('api', '2.1.0', 'a1', { url: '10.0.0.1:3000', ttl: 120, zone: 'eu-1' });
  let down = true;
  /** The feed sockets that got through, to cut when the registry goes down again. */
  const open = [];
  await withPage(
    {
      setup: async (page, watcher) => {
        // The refused requests log network errors; those (and only those) are expected here.
        watcher.expect(/request failed: GET http:\/\/127\.0\.0\.1:\d+\/v1\/instances.*ERR_CONNECTION_REFUSED/);
        watcher.expect(/console error: Failed to load resource: net::ERR_CONNECTION_REFUSED/);
        await page.route('**/v1/**', (route) => (down ? route.abort('connectionrefused') : route.continue()));
        // The change feed: closed at once while down, else through to the registry.
        await page.routeWebSocket(/\/v1\/watch/, (ws) => {
          if (down) {
            ws.close();
          } else {
            ws.connectToServer();
            open.push(ws);
          }
        });
      },
    },
    async (page) => {
      // Down from the start: a visible message and a retry countdown, not a blank page.
      const alert = page.locator('#live-error');
      await alert.waitFor({ state: 'visible' });
      assert.match(await page.locator('#live-error-text').textContent(), /Registry unreachable \(network error\)/);
      assert.equal(await page.locator('#live-status').textContent(), 'Not connected');
      await page.locator('#live-retry-in', { hasText: /Retrying in \d+ s\./ }).waitFor();

      // It comes back on its own (backoff 1 s, 2 s, ...).
      down = false;
      await alert.waitFor({ state: 'hidden', timeout: 10_000 });
      assert.equal(await page.locator('#live-status').textContent(), 'Connected');
      await row(page, 'api@2.1.0', 'a1').waitFor();

      // Down again (the feed drops): the last data stays on screen, marked stale.
      down = true;
      for (const ws of open.splice(0)) await ws.close();
      await alert.waitFor({ state: 'visible' });
      assert.equal(await page.locator('#live-status').textContent(), 'Disconnected');
      assert.match(await page.locator('#live-groups').getAttribute('class'), /\bstale\b/);
      assert.equal(await row(page, 'api@2.1.0', 'a1').count(), 1);
      // Let the backoff grow past 2 s, then retry at once from the keyboard.
      await page.waitForFunction(() => {
        const match = /Retrying in (\d+) s/.exec(document.getElementById('live-retry-in').textContent);
        return match && Number(match[1]) >= 3;
      }, null, { timeout: 15_000 });
      down = false;
      await page.locator('#live-retry').focus();
      await page.keyboard.press('Enter');
      await alert.waitFor({ state: 'hidden', timeout: 1_500 });
      assert.doesNotMatch((await page.locator('#live-groups').getAttribute('class')) ?? '', /\bstale\b/);
    },
  );
});

test('live view: names that escape alike still get distinct ids, and meta is shown', async () => {
  // The field report: `a.b` and `a_2eb` both became `live-group-a_2eb_...`.
  await Promise.all([
    put('a.b', '1.0.0', 'i1', { url: '10.3.0.1:80', ttl: 120, meta: { region: 'west', build: '42' } }),
    put('a_2eb', '1.0.0', 'i2', { url: '10.3.0.2:80', ttl: 120 }),
  ]);
  await withPage({}, async (page) => {
    await row(page, 'a.b@1.0.0', 'i1').waitFor();
    await row(page, 'a_2eb@1.0.0', 'i2').waitFor();
    const ids = await page.$$eval('[id]', (elements) => elements.map((el) => el.id));
    assert.deepEqual(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'no id is used twice');
    // Each group and its table are labelled by their own heading.
    for (const key of ['a.b@1.0.0', 'a_2eb@1.0.0']) {
      const labels = await group(page, key).evaluate((section) =>
        [section, section.querySelector('table')].map((el) => {
          const heading = document.getElementById(el.getAttribute('aria-labelledby'));
          return heading && section.contains(heading) ? heading.textContent : null;
        }),
      );
      assert.deepEqual(labels.map((text) => text?.replace(/ \d+ instances?$/, '')), [key, key]);
    }
    // meta, as key=value, beside the tags; none is a dash.
    const meta = await row(page, 'a.b@1.0.0', 'i1').locator('.meta .meta-entry').allTextContents();
    assert.deepEqual(meta.sort(), ['build=42', 'region=west']);
    assert.equal(await row(page, 'a_2eb@1.0.0', 'i2').locator('.meta').textContent(), '—');
  });
  await Promise.all([del('a.b', '1.0.0', 'i1'), del('a_2eb', '1.0.0', 'i2')]);
});

test('live view: a registry that goes down after answering empty says only that it is unreachable', async () => {
  let down = false;
  const open = [];
  await withPage(
    {
      setup: async (page, watcher) => {
        watcher.expect(/request failed: GET http:\/\/127\.0\.0\.1:\d+\/v1\/instances.*ERR_CONNECTION_REFUSED/);
        watcher.expect(/console error: Failed to load resource: net::ERR_CONNECTION_REFUSED/);
        // An empty registry, whatever the real one holds: the feed's catalog lists nothing.
        // Then none at all: sockets close and reads are refused.
        await page.route('**/v1/**', (route) => (down ? route.abort('connectionrefused') : route.continue()));
        await page.routeWebSocket(/\/v1\/watch/, (ws) => {
          if (down) {
            ws.close();
            return;
          }
          open.push(ws);
          ws.send(JSON.stringify({ type: 'catalog', services: [], now: Date.now() }));
        });
      },
    },
    async (page) => {
      const empty = page.locator('#live-empty');
      await empty.waitFor({ state: 'visible' });
      down = true;
      for (const ws of open.splice(0)) await ws.close();
      await page.locator('#live-error').waitFor({ state: 'visible' });
      assert.equal(await empty.isVisible(), false, '"reachable and empty" is gone with the registry');
      assert.equal(await page.locator('#live-status').textContent(), 'Disconnected');
      down = false;
      // Retry now (the backoff may have retried by itself already: then this is a no-op).
      await page.evaluate(() => document.getElementById('live-retry').click());
      await page.locator('#live-error').waitFor({ state: 'hidden' });
      await empty.waitFor({ state: 'visible' });
    },
  );
});

test('resolve box: npm package names, scoped ones included, as the API takes them', async () => {
  await put('acme.api', '1.4.0', 's1', { url: '10.4.0.1:80', ttl: 120 });
  await withPage({}, async (page) => {
    await page.locator('#resolve-input').fill('@acme/api@^1, @acme/gone');
    await page.locator('#resolve-input').press('Enter');
    await page.locator('#resolve-picks').waitFor();
    assert.equal(await page.locator('#resolve-problem').textContent(), '');
    assert.equal(await page.locator('.resolve-summary').textContent(), '1 of 2 dependencies resolved; missing: @acme/gone.');
    assert.equal(
      await page.locator('.resolved-list li[data-name="acme.api"]').textContent(),
      '@acme/api@^1 → 1.4.0 (1 instance: s1 10.4.0.1:80)',
    );
    assert.deepEqual(await page.locator('#resolve-picks thead th').allTextContents(), ['Strategy', '@acme/api']);
    const picked = await page.locator('#resolve-picks td[data-name="acme.api"] .picked').allTextContents();
    assert.deepEqual(picked, ['s1', 's1', 's1', 's1', 's1', 's1'], 'every strategy but zone preference (no zone set) picks s1');

    // Names the API refuses are refused with the core's reason, before any request.
    await page.locator('#resolve-input').fill('@acme/api/extra@1');
    await page.locator('#resolve-input').press('Enter');
    await page.locator('#resolve-problem', { hasText: '"@acme/api/extra" is not a service name: ' }).waitFor();
  });
  await del('acme.api', '1.4.0', 's1');
});

// --- the simulator ----------------------------------------------------------------------------

test('simulator: the wasm core picks, moves keys and expires leases on the page clock', async (t) => {
  await withPage({}, async (page) => {
    // Keyboard: from the Live tab, the right arrow selects the Simulator.
    await page.locator('#tab-live').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.locator('#tab-simulator').getAttribute('aria-selected'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-simulator');
    await page.locator('#sim-body').waitFor({ state: 'visible' });
    assert.ok(await page.locator('#panel-live').isHidden());
    assert.equal(new URL(page.url()).hash, '#simulator');

    // Pause the clock: from here on time moves only with the +N s buttons.
    await page.locator('#sim-play').click();
    assert.equal(await page.locator('#sim-play').getAttribute('aria-pressed'), 'false');
    const rows = page.locator('#sim-rows tr');
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.id)), ['a', 'b', 'c']);

    // Three equal instances (c starts at weight 2).
    const weightC = page.getByLabel('Weight of c');
    await weightC.fill('1');
    await weightC.press('Tab');
    await page.locator('#sim-log li', { hasText: 'c: weight set to 1' }).waitFor();

    await page.locator('#sim-n').fill('300');
    await page.locator('#sim-n').press('Enter');
    await page.locator('#sim-charts [data-strategy="round-robin"]').waitFor();
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 100, b: 100, c: 100 });
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 100, b: 100, c: 100 });
    // Zone preference (local zone eu-1): only a and b are in eu-1.
    assert.deepEqual(await chartCounts(page, 'zone'), { a: 150, b: 150, c: 0 });
    for (const strategy of ['random', 'least-request', 'maglev', 'ring']) {
      const counts = await chartCounts(page, strategy);
      assert.deepEqual(Object.keys(counts), ['a', 'b', 'c'], strategy);
      assert.equal(sum(counts), 300, `${strategy} fired 300 picks`);
    }
    const lr = Object.values(await chartCounts(page, 'least-request'));
    assert.ok(Math.max(...lr) - Math.min(...lr) <= 2, `least request balances in-flight load: ${lr}`);
    // The numbers are on screen too, not only in data attributes.
    assert.equal(
      await page.locator('#sim-charts [data-strategy="round-robin"] li[data-id="a"] .value').textContent(),
      '100 · 33.3%',
    );

    // Where 10 000 keys go before c leaves, and how many move when it does.
    await page.locator('#sim-n').fill('10000');
    await page.locator('#sim-fire').click();
    await page.locator('#sim-picks-summary', { hasText: '10,000 picks' }).waitFor();
    const maglevBefore = await chartCounts(page, 'maglev');
    const ringBefore = await chartCounts(page, 'ring');
    assert.equal(sum(maglevBefore), 10_000);
    await page.getByRole('button', { name: 'Remove c' }).click();
    await page.locator('#sim-rows tr[data-id="c"]').waitFor({ state: 'detached' });
    const moves = page.locator('#sim-moves-output');
    await moves.locator('.moves-result', { hasText: 'c left' }).waitFor();
    for (const [strategy, before] of [['maglev', maglevBefore], ['ring', ringBefore]]) {
      const item = moves.locator(`li[data-strategy="${strategy}"]`);
      const moved = Number(await item.getAttribute('data-moved'));
      const fromRemoved = Number(await item.getAttribute('data-from-removed'));
      const elsewhere = Number(await item.getAttribute('data-elsewhere'));
      assert.equal(Number(await item.getAttribute('data-total')), 10_000);
      assert.equal(moved, fromRemoved + elsewhere, strategy);
      // Every key c held moves (the chart above counted the same keys, key-0 … key-9999).
      assert.equal(fromRemoved, before.c, `${strategy}: the keys on c (${before.c}) all move`);
      if (strategy === 'ring') assert.equal(elsewhere, 0, 'on the ring no other key moves');
      // Maglev keeps its table size for small N, so only a sliver of other keys may move.
      if (strategy === 'maglev') assert.ok(elsewhere <= 200, `maglev moved ${elsewhere} keys between survivors`);
      t.diagnostic(`${strategy}: removing c of 3 moved ${moved} of 10000 keys (${fromRemoved} from c, ${elsewhere} between survivors)`);
      assert.match(await item.textContent(), new RegExp(`${moved.toLocaleString('en')} of 10,000 keys moved`));
    }

    // Weighted 1:3 is exact over a multiple of 4 with smooth weighted round robin.
    const weightB = page.getByLabel('Weight of b');
    await weightB.fill('3');
    await weightB.press('Tab');
    await page.locator('#sim-log li', { hasText: 'b: weight set to 3' }).waitFor();
    await page.locator('#sim-n').fill('400');
    await page.locator('#sim-fire').click();
    await page.locator('#sim-picks-summary', { hasText: '400 picks' }).waitFor();
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 100, b: 300 });
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 200, b: 200 });

    // Kill b: its heartbeats stop and its 10 s lease runs out on the simulated clock.
    await page.getByRole('button', { name: 'Kill b' }).click();
    const b = page.locator('#sim-rows tr[data-id="b"]');
    assert.equal(await b.locator('.state').textContent(), 'killed');
    const left = seconds(await b.locator('.remaining').textContent());
    assert.ok(left > 6 && left <= 10, `b has ${left} s left`);
    const time = async () => Number.parseFloat((await page.locator('#sim-time').textContent()).replace('t = ', ''));
    const t0 = await time();
    await page.getByRole('button', { name: '+5 s' }).click();
    assert.ok(Math.abs((await time()) - (t0 + 5)) < 0.05, 'the clock moved 5 s');
    assert.equal(await b.count(), 1, 'b is still live 5 s after it was killed');
    await page.getByRole('button', { name: '+5 s' }).click();
    await b.waitFor({ state: 'detached' });
    await page.locator('#sim-log li', { hasText: /b: lease lapsed, \d+\.\d s after it was killed/ }).waitFor();
    // The charts follow: the same 400 picks again, now all on a.
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 400 });
    assert.deepEqual(await chartCounts(page, 'maglev'), { a: 400 });
    assert.match(await page.locator('#sim-picks-summary').textContent(), /^400 picks .*drawn again because the live instances changed\.$/);
    // a keeps beating: still there 30 s later.
    await page.getByRole('button', { name: '+30 s' }).click();
    assert.equal(await page.locator('#sim-rows tr[data-id="a"] .state').textContent(), 'running');
    assert.ok(seconds(await page.locator('#sim-rows tr[data-id="a"] .remaining').textContent()) > 6);

    // Add instances with a form, then a fresh round of picks for the screenshot.
    for (const [id, weight, zone] of [['d', '2', 'us-1'], ['e', '1', 'eu-1']]) {
      await page.locator('#sim-add-id').fill(id);
      await page.locator('#sim-add-weight').fill(weight);
      await page.locator('#sim-add-zone').fill(zone);
      await page.locator('#sim-add button[type="submit"]').click();
      await page.locator(`#sim-rows tr[data-id="${id}"]`).waitFor();
    }
    await page.locator('#sim-n').fill('1000');
    await page.locator('#sim-fire').click();
    await page.locator('#sim-picks-summary', { hasText: '1,000 picks' }).waitFor();
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 250, d: 500, e: 250 });
    // The Keys field sets how many sample keys a removal is measured with.
    await page.locator('#sim-move-keys').fill('2000');
    await page.locator('#sim-move-target').selectOption('e');
    await page.getByRole('button', { name: 'Measure its removal' }).click();
    await moves.locator('.moves-result', { hasText: 'If removed: e' }).waitFor();
    for (const strategy of ['maglev', 'ring']) {
      const item = moves.locator(`li[data-strategy="${strategy}"]`);
      assert.equal(Number(await item.getAttribute('data-total')), 2000, strategy);
      assert.match(await item.textContent(), / of 2,000 keys moved/);
    }
    await page.locator('#sim-move-keys').fill('10000');
    await page.locator('#sim-move-target').selectOption('d');
    await page.getByRole('button', { name: 'Measure its removal' }).click();
    await moves.locator('.moves-result', { hasText: 'If removed: d' }).waitFor();
    // e drained: the charts are drawn again and e gets no pick.
    await page.getByLabel('Status of e').selectOption('maintenance');
    await page.locator('#sim-charts [data-strategy="weighted"] li[data-id="e"][data-count="0"]').waitFor();
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 333, d: 667, e: 0 });
    await screenshot(page, 'simulator', { fullPage: true, doc: true });
  });
});

test('simulator: a status set takes an instance out of the core\'s picks', async () => {
  await withPage({ hash: '#simulator' }, async (page) => {
    await page.locator('#sim-body').waitFor({ state: 'visible' });
    await page.locator('#sim-play').click();
    // a and b weigh 1, c weighs 2.
    await page.locator('#sim-n').fill('300');
    await page.locator('#sim-fire').click();
    await page.locator('#sim-charts [data-strategy="round-robin"]').waitFor();
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 100, b: 100, c: 100 });
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 75, b: 75, c: 150 });
    const status = page.getByLabel('Status of b');
    assert.deepEqual(await status.locator('option').allTextContents(), ['passing', 'warning', 'critical', 'maintenance']);

    // Maintenance: still registered (its row stays, greyed), never picked; charts drawn again.
    await status.selectOption('maintenance');
    await page.locator('#sim-log li', { hasText: 'b: status set to maintenance (out of rotation)' }).waitFor();
    await page.locator('#sim-picks-summary', { hasText: 'drawn again' }).waitFor();
    const b = page.locator('#sim-rows tr[data-id="b"]');
    assert.match((await b.getAttribute('class')) ?? '', /\bout\b/);
    assert.equal(await b.locator('.state').textContent(), 'running');
    for (const strategy of ['random', 'round-robin', 'weighted', 'least-request', 'maglev', 'ring', 'zone']) {
      const counts = await chartCounts(page, strategy);
      assert.equal(counts.b, 0, `${strategy} never picks b in maintenance`);
      assert.equal(sum(counts), 300, strategy);
    }
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 150, b: 0, c: 150 });
    assert.equal(await page.locator('#sim-charts [data-strategy="round-robin"] li[data-id="b"] .badge').textContent(), 'maintenance');
    assert.match(await page.locator('#sim-picks-summary').textContent(), /1 instance out of rotation, never picked/);

    // Warning: picked only when no passing instance is left.
    await status.selectOption('warning');
    await page.locator('#sim-log li', { hasText: 'b: status set to warning' }).first().waitFor();
    await page.waitForFunction(() => !document.querySelector('#sim-rows tr[data-id="b"]').classList.contains('out'));
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 150, b: 0, c: 150 });
    await page.getByLabel('Status of a').selectOption('critical');
    await page.getByLabel('Status of c').selectOption('maintenance');
    await page.locator('#sim-charts [data-strategy="round-robin"] li[data-id="b"][data-count="300"]').waitFor();
    assert.deepEqual(await chartCounts(page, 'weighted'), { a: 0, b: 300, c: 0 });

    // Every one back to passing: the first counts again. Statuses survive heartbeats.
    for (const id of ['a', 'b', 'c']) await page.getByLabel(`Status of ${id}`).selectOption('passing');
    await page.getByRole('button', { name: '+30 s' }).click();
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 100, b: 100, c: 100 });
    await page.getByLabel('Status of c').selectOption('maintenance');
    await page.getByRole('button', { name: '+30 s' }).click();
    assert.equal(await page.getByLabel('Status of c').inputValue(), 'maintenance');
    assert.deepEqual(await chartCounts(page, 'round-robin'), { a: 150, b: 150, c: 0 });
  });
});

// --- accessibility and small screens ----------------------------------------------------------

test('every control is labelled, and both views fit a phone-width screen', async () => {
  await put('api', '2.1.0', 'a1', { url: '10.0.0.1:3000', ttl: 120, zone: 'eu-1', tags: ['v2', 'canary'], meta: { commit: '5e1f0c2' } });
  await withPage({ viewport: { width: 390, height: 844 } }, async (page) => {
    await row(page, 'api@2.1.0', 'a1').waitFor();
    const unlabelled = await page.$$eval('input, select, button', (controls) =>
      controls
        .filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || c.textContent.trim()))
        .map((c) => c.outerHTML),
    );
    assert.deepEqual(unlabelled, []);

    // The first Tab lands on the skip link.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');

    await noHorizontalScroll(page, 'live view at 390px');
    await screenshot(page, 'live-phone', { fullPage: true });

    await page.locator('#tab-simulator').click();
    await page.locator('#sim-body').waitFor({ state: 'visible' });
    await page.locator('#sim-fire').click();
    await page.locator('#sim-charts [data-strategy="weighted"]').waitFor();
    await noHorizontalScroll(page, 'simulator at 390px');
    await screenshot(page, 'simulator-phone', { fullPage: true });
  });
});
