// The core's rules as the npm package shows them, in memory mode (no server): npm range
// semantics, one version per range for pick and findDependencies, one candidate identity for
// the client and the Selector, health-aware selection, names and tags that round-trip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { loadVasco } from './helpers.mjs';

let vasco;
let client;
let counter = 0;
const unique = (base) => `${base}-rules-${process.pid}-${counter++}`;

before(async () => {
  vasco = await loadVasco();
  client = vasco.connect({ url: 'memory:', handleSignals: false, seed: 7 });
});

after(async () => {
  await client?.close();
});

test('ranges mean what npm says: * leaves prereleases out, x in a prerelease is no wildcard', async () => {
  assert.equal(vasco.versionMatches('*', '2.0.0-beta.1'), false);
  assert.equal(vasco.versionMatches('x', '2.0.0-beta.1'), false);
  assert.equal(vasco.versionMatches('', '2.0.0-beta.1'), false);
  assert.equal(vasco.versionMatches('^2.0.0-beta', '2.0.0-beta.1'), true);
  const name = unique('pre');
  await client.register({ name, version: '1.0.0', url: '127.0.0.1:4101' });
  await client.register({ name, version: '2.0.0-beta.1', url: '127.0.0.1:4102' });
  const resolved = await client.findDependencies({ [name]: '*' }, {});
  assert.deepEqual(resolved, { [name]: '127.0.0.1:4101' });
  const next = unique('next');
  await client.register({ name: next, version: '1.0.0-next.1', url: '127.0.0.1:4103' });
  const found = await client.instances(next, '1.0.0-next.1');
  assert.deepEqual(found.map((i) => i.version), ['1.0.0-next.1']);
});

test('pick and findDependencies use the same version of a range', async () => {
  const name = unique('api');
  await client.register({ name, version: '2.1.0', url: '127.0.0.1:4201' });
  await client.register({ name, version: '2.0.3', url: '127.0.0.1:4202' });
  const resolved = await client.findDependencies({ [name]: '^2' }, {});
  assert.deepEqual(resolved, { [name]: '127.0.0.1:4201' });
  const picked = new Set();
  for (const strategy of ['weighted', 'random', 'round-robin', 'maglev', 'ring']) {
    for (let i = 0; i < 20; i++) picked.add((await client.pick(name, '^2', { strategy, key: `k${i}` })).version);
  }
  assert.deepEqual([...picked], ['2.1.0']);
  // Listings still show every matching version.
  assert.equal((await client.instances(name, '^2')).length, 2);
});

test('the client and a Selector over the same instances send a key to the same instance', async () => {
  const name = unique('hash');
  for (let i = 0; i < 20; i++) {
    await client.register({ name, version: '1.0.0', id: `node-${i}`, url: `10.9.0.${i}:80` });
  }
  const instances = await client.instances(name);
  for (const strategy of ['maglev', 'ring']) {
    const selector = new vasco.Selector(strategy, instances, { seed: 1 });
    try {
      for (let k = 0; k < 20; k++) {
        const key = `user-${k}`;
        const mine = await client.pick(name, undefined, { strategy, key });
        assert.equal(mine.id, instances[selector.pick(key)].id, `${strategy} ${key}`);
      }
    } finally {
      selector.free();
    }
  }
});

test('the Selector leaves unhealthy candidates out until the protection threshold', () => {
  const list = ['a', 'b', 'c', 'd'].map((id, i) => ({ id, healthy: i !== 0 }));
  const counts = (threshold) => {
    const selector = new vasco.Selector('round-robin', list, { seed: 3, protectionThreshold: threshold });
    try {
      return { counts: Array.from(selector.pickMany(400)), panic: selector.panic };
    } finally {
      selector.free();
    }
  };
  const normal = counts(0.5);
  assert.equal(normal.panic, false);
  assert.equal(normal.counts[0], 0);
  assert.ok(normal.counts.slice(1).every((c) => c >= 133 && c <= 134), String(normal.counts));
  const panic = counts(0.8); // 3 of 4 healthy is below 0.8
  assert.equal(panic.panic, true);
  assert.deepEqual(panic.counts, [100, 100, 100, 100]);
});

test('names and tags: what registers can be looked up, the rest is refused', async () => {
  for (const name of ['.', '..']) {
    await assert.rejects(client.register({ name, version: '1.0.0', url: '127.0.0.1:4301' }), { code: 'invalid_name' });
  }
  const name = unique('tags');
  await assert.rejects(
    client.register({ name, version: '1.0.0', url: '127.0.0.1:4302', tags: ['team,a'] }),
    { code: 'invalid_tags' },
  );
  await assert.rejects(
    client.register({ name, version: '1.0.0', url: '127.0.0.1:4302', tags: ['team '] }),
    { code: 'invalid_tags' },
  );
  await client.register({ name, version: '1.0.0', url: '127.0.0.1:4303', tags: ['team a', '日本'] });
  assert.equal((await client.instances(name, undefined, { tag: 'team a' })).length, 1);
  assert.equal((await client.instances(name, undefined, { tag: 'team a, 日本' })).length, 1);
  assert.equal((await client.instances(name, undefined, { tag: 'team a,other' })).length, 0);
  // Limits count characters.
  await client.register({ name, version: '1.0.0', url: '127.0.0.1:4304', tags: ['日'.repeat(64)], meta: { k: 'é'.repeat(256) } });
});
