// The page's DOM-free helpers (www/js/clock.js, www/js/format.js), in Node: the server clock
// estimate behind the countdowns, the resolve box's parser (with the name rule of the page's own
// wasm core, www/pkg, built by scripts/build-wasm.sh), element ids and the countdown text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ServerClock } from '../../www/js/clock.js';
import { elementId, formatAge, formatRemaining, parseDependencies } from '../../www/js/format.js';
import { ROOT } from '../support/wrangler.mjs';

const wasm = await import('../../www/pkg/vasco_wasm.js').catch(() => {
  throw new Error('www/pkg is not built: run bash scripts/build-wasm.sh --web');
});
wasm.initSync({ module: readFileSync(join(ROOT, 'www', 'pkg', 'vasco_wasm_bg.wasm')) });
/** The core's rule, as the page calls it. */
const serviceName = (name) => wasm.serviceName(name);

const httpDate = (ms) => new Date(ms).toUTCString();

test('ServerClock: no Date header means the local clock', () => {
  const clock = new ServerClock();
  assert.equal(clock.observe(1000, 1010, null), false);
  assert.equal(clock.observe(1000, 1010, 'not a date'), false);
  assert.equal(clock.offset(), 0);
  assert.equal(clock.now(5000), 5000);
});

test('ServerClock: a server 90 s behind is estimated within the round trip after a few polls', () => {
  const skew = 90_000; // local - server
  const clock = new ServerClock();
  let local = Date.UTC(2026, 0, 1, 12, 0, 0, 137);
  for (let poll = 0; poll < 30; poll++) {
    const sentAt = local;
    const serverAt = sentAt + 20 - skew; // stamped 20 ms after sending
    const receivedAt = sentAt + 40;
    const stamped = Math.floor(serverAt / 1000) * 1000; // Date has whole seconds
    assert.ok(clock.observe(sentAt, receivedAt, httpDate(stamped)));
    // The true offset is never excluded.
    assert.ok(clock.low <= skew && skew <= clock.high, `poll ${poll}: ${clock.low}..${clock.high}`);
    local += 1000 + 173; // polls drift across the second boundary
  }
  assert.ok(clock.high - clock.low <= 100, `narrowed to ${clock.high - clock.low} ms`);
  assert.ok(Math.abs(clock.offset() - skew) <= 50, `offset ${clock.offset()} vs ${skew}`);
  // A lease ending at server time T is T - now() away, whatever the local clock says.
  const serverNow = local - skew;
  assert.ok(Math.abs(clock.now(local) - serverNow) <= 50);
});

test('ServerClock: the registry\'s x-vasco-now pins the offset to the round trip at once', () => {
  const skew = -42_000; // the page's clock runs 42 s behind the registry's
  const clock = new ServerClock();
  const sentAt = Date.UTC(2026, 0, 1, 12, 0, 0, 500);
  const serverNow = sentAt + 15 - skew;
  // x-vasco-now wins over a Date header that is a whole second coarser.
  assert.ok(clock.observe(sentAt, sentAt + 30, new Date(serverNow).toUTCString(), String(serverNow)));
  assert.ok(clock.high - clock.low <= 31, `one exchange narrows it to ${clock.high - clock.low} ms`);
  assert.ok(Math.abs(clock.offset() - skew) <= 16, `offset ${clock.offset()} vs ${skew}`);
  assert.equal(clock.observe(sentAt, sentAt + 30, null, 'soon'), false, 'garbage is ignored');
});

test('ServerClock: a stepped clock starts the estimate over', () => {
  const clock = new ServerClock();
  const t = Date.UTC(2026, 0, 1, 12, 0, 0, 500);
  clock.observe(t, t + 10, httpDate(t - 500));
  assert.ok(Math.abs(clock.offset()) < 1000);
  // The local clock jumps an hour ahead: the old interval no longer overlaps.
  const later = t + 3_600_000 + 2000;
  clock.observe(later, later + 10, httpDate(t + 2000));
  assert.equal(clock.samples, 1);
  assert.ok(Math.abs(clock.offset() - 3_600_000) < 1000);
});

test('parseDependencies: names, ranges with spaces, bare names, and mistakes', () => {
  const parse = (text) => parseDependencies(text, serviceName);
  const plain = (text) => {
    const { dependencies, error } = parse(text);
    return { dependencies: { ...dependencies }, error };
  };
  assert.deepEqual(plain('api@^2, auth@1.0.0'), {
    dependencies: { api: '^2', auth: '1.0.0' },
    error: null,
  });
  assert.deepEqual(plain(' web , db@>=1 <3 ,cache@1.x || 2.x,').dependencies, {
    web: '*',
    db: '>=1 <3',
    cache: '1.x || 2.x',
  });
  const odd = parse('__proto__@1, constructor');
  assert.equal(odd.error, null);
  assert.equal(JSON.stringify(odd.dependencies), '{"__proto__":"1","constructor":"*"}');
  assert.deepEqual(Object.keys(odd.dependencies), ['__proto__', 'constructor']);
  assert.match(parse('').error, /at least one/);
  assert.match(parse('Api@1').error, /not a service name/);
  assert.match(parse('@1.0.0').error, /not a service name/);
  assert.match(parse('api@').error, /empty version range/);
  assert.match(parse('api@1, api@2').error, /listed twice/);
});

test('parseDependencies accepts what the API accepts: npm names, scoped ones included', () => {
  // The registry maps `@scope/pkg` to the service `scope.pkg`; so does the page, by the core.
  const scoped = parseDependencies('@acme/api@^1, @acme/auth, web@>=1 <3', serviceName);
  assert.equal(scoped.error, null);
  assert.deepEqual({ ...scoped.dependencies }, { 'acme.api': '^1', 'acme.auth': '*', web: '>=1 <3' });
  assert.deepEqual({ ...scoped.written }, { 'acme.api': '@acme/api', 'acme.auth': '@acme/auth', web: 'web' });
  // One service, two spellings.
  assert.match(parseDependencies('@acme/api@1, acme.api@2', serviceName).error, /"@acme\/api" and "acme\.api" are the same service, "acme\.api"/);
  // The core's reasons come through.
  for (const bad of ['@acme', '@acme/api/x@1', '@/api', 'a b@1']) {
    assert.match(parseDependencies(bad, serviceName).error, /is not a service name: ./, bad);
  }
});

test('elementId: distinct texts never share an id', () => {
  // The field report: `a.b` and `a_2eb` both became `live-group-a_2eb_...`.
  assert.notEqual(elementId('g-', 'a.b@1.0.0'), elementId('g-', 'a_2eb@1.0.0'));
  // Every id is a valid, selector-safe id.
  assert.match(elementId('g-', 'a.b_c@1.0.0-rc.1+build.5'), /^g-[A-Za-z0-9_-]+$/);
  // Exhaustively over short strings of the characters that names and versions use (and some
  // beyond), no two texts map to one id.
  const alphabet = ['a', 'b', '2', 'e', 'f', '_', '.', '-', '@', '+', 'é', '😀'];
  const seen = new Map();
  const visit = (text) => {
    const id = elementId('x-', text);
    assert.ok(!seen.has(id) || seen.get(id) === text, `${JSON.stringify(text)} and ${JSON.stringify(seen.get(id))} share ${id}`);
    seen.set(id, text);
  };
  const grow = (prefix, depth) => {
    visit(prefix);
    if (depth > 0) for (const c of alphabet) grow(prefix + c, depth - 1);
  };
  grow('', 4);
  assert.equal(seen.size, (alphabet.length ** 5 - 1) / (alphabet.length - 1));
});

test('formatRemaining and formatAge', () => {
  assert.equal(formatRemaining(0), 'expired');
  assert.equal(formatRemaining(-5), 'expired');
  assert.equal(formatRemaining(NaN), 'expired');
  assert.equal(formatRemaining(2_950), '2.9 s');
  assert.equal(formatRemaining(9_999), '9.9 s');
  assert.equal(formatRemaining(10_000), '10 s');
  assert.equal(formatRemaining(119_999), '119 s');
  assert.equal(formatRemaining(120_000), '2 min 0 s');
  assert.equal(formatRemaining(3 * 3600_000 + 5 * 60_000), '3 h 5 min');
  assert.equal(formatAge(-3), '0.0 s');
  assert.equal(formatAge(450), '0.4 s');
  assert.equal(formatAge(42_000), '42 s');
  assert.equal(formatAge(600_000), '10 min');
});
