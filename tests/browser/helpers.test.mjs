// The page's DOM-free helpers (www/js/clock.js, www/js/format.js), in Node: the server clock
// estimate behind the countdowns, the resolve box's parser, the retry backoff and the
// countdown text.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ServerClock } from '../../www/js/clock.js';
import { backoffMs, formatAge, formatRemaining, parseDependencies } from '../../www/js/format.js';

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
  const plain = (text) => {
    const { dependencies, error } = parseDependencies(text);
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
  const odd = parseDependencies('__proto__@1, constructor');
  assert.equal(odd.error, null);
  assert.equal(JSON.stringify(odd.dependencies), '{"__proto__":"1","constructor":"*"}');
  assert.deepEqual(Object.keys(odd.dependencies), ['__proto__', 'constructor']);
  assert.match(parseDependencies('').error, /at least one/);
  assert.match(parseDependencies('Api@1').error, /not a service name/);
  assert.match(parseDependencies('@1.0.0').error, /not a service name/);
  assert.match(parseDependencies('api@').error, /empty version range/);
  assert.match(parseDependencies('api@1, api@2').error, /listed twice/);
});

test('backoffMs: doubles from 1 s to at most 30 s, with up to 20 % jitter taken off', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffMs(n, () => 0)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffMs(0, () => 0.999_999), 800);
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
