// The per-isolate snapshot cache (VASCO_CACHE_MS > 0): repeated lookups cost no KV operation,
// a change through the isolate drops it (and bypasses it while the coalesced snapshot write may
// be pending), `Cache-Control: no-cache` bypasses it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, eventually, ids, lookup, register } from './helpers.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 30_000 });
});
after(() => server?.stop());

test('a cached lookup costs 0 KV operations; a change drops the cache', async () => {
  await register(server, 'cached', '1.0.0', 'a', { url: 'h:1' });
  // Reads bypass the cache for 2 s after a change through this isolate.
  const first = await eventually(async () => {
    const out = await lookup(server, 'cached');
    return out.ops === 0 ? out : null;
  }, { deadlineMs: 4_000, what: 'served from the isolate cache' });
  assert.deepEqual(ids(first), ['a']);

  await register(server, 'cached', '1.0.0', 'b', { url: 'h:2' });
  const after = await lookup(server, 'cached');
  assert.equal(after.ops, 1, 'the change dropped the cache');
  await eventually(async () => ids(await lookup(server, 'cached')).join() === 'a,b', { deadlineMs: 2_000 });
});

test('Cache-Control: no-cache reads KV', async () => {
  await lookup(server, 'cached');
  const fresh = await call(server, 'GET', '/v1/services/cached', { headers: { 'cache-control': 'no-cache' } });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.ops, 1);
});

test('resolve uses the cache too: 0 KV operations when every dependency is cached', async () => {
  await register(server, 'dep-x', '1.0.0', 'x', { url: 'h:1' });
  await register(server, 'dep-y', '1.0.0', 'y', { url: 'h:2' });
  const body = { dependencies: { 'dep-x': '1', 'dep-y': '^1' } };
  // Changes through this isolate bypass the cache for 2 s; after that a resolve fills it.
  let cold;
  const warm = await eventually(async () => {
    const out = await call(server, 'POST', '/v1/resolve', { body });
    if (out.ops === 2 && out.body.missing.length === 0) cold = out;
    return cold && out.ops === 0 ? out : null;
  }, { deadlineMs: 5_000, everyMs: 250, what: 'a resolve served from the isolate cache' });
  assert.equal(warm.ops, 0);
  // The same members (a snapshot read shows each lease as open until at least now + ttl, so
  // expires_at moves between reads).
  const members = (out) =>
    Object.entries(out.body.resolved).map(([name, r]) => [name, r.version, r.instances.map((i) => i.url)]);
  assert.deepEqual(members(warm), members(cold));
});

test('a renewal keeps registered_at and does not drop the cache', async () => {
  const first = await register(server, 'keeper', '1.0.0', 'k', { url: 'h:1' });
  await eventually(async () => (await lookup(server, 'keeper')).ops === 0, { deadlineMs: 4_000 });
  const beat = await register(server, 'keeper', '1.0.0', 'k', { url: 'h:1' });
  assert.equal(beat.ops, 0);
  assert.equal(beat.body.registered_at, first.body.registered_at);
  assert.ok(beat.body.expires_at > first.body.expires_at);
  assert.equal((await lookup(server, 'keeper')).ops, 0, 'still cached');
});

test('a lapsed instance leaves uncached reads as soon as its object reaps it', async () => {
  await register(server, 'fleeting', '1.0.0', 'f', { url: 'h:1', ttl: 1 });
  const fresh = () => call(server, 'GET', '/v1/services/fleeting', { headers: { 'cache-control': 'no-cache' } });
  assert.deepEqual(ids(await fresh()), ['f']);
  await eventually(async () => ids(await fresh()).length === 0, {
    deadlineMs: 2_500,
    everyMs: 50,
    what: 'the reaped instance left the snapshot',
  });
});
