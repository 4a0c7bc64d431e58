// The npm package suite, run twice: against a real local Worker (http.test.mjs) and against the
// in-process registry (memory.test.mjs). `mode` says how to reach the registry and how to look
// at it without the client's cache.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';

import { loadVasco, startChild, unique, waitFor } from './helpers.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {object} mode
 * @param {'http'|'memory'} mode.name
 * @param {() => Promise<void>} mode.setup      starts the registry; sets VASCO_URL/VASCO_TOKEN
 * @param {() => Promise<void>} mode.teardown
 * @param {() => {url: string, token?: string}} mode.options   connect() options
 * @param {(name: string) => Promise<string[]>} mode.ids         live instance ids, uncached
 * @param {(name: string, version: string, id: string) => Promise<void>} [mode.remove]  cleanup
 * @param {() => Promise<number>} [mode.registryLag]  how far (ms, at most) the registry's clock
 *   may be behind this process's now, from its x-vasco-now; 0 when it is this process's clock
 */
export function defineSuite(mode) {
  let vasco;
  let client;
  const prefix = `${mode.name}:`;

  // The package's timers are unref'd (a CLI using it must be able to exit); a service has its
  // server to keep it running, and this suite has this interval.
  let keepAlive;

  before(async () => {
    keepAlive = setInterval(() => {}, 1000);
    vasco = await loadVasco();
    await mode.setup();
    client = vasco.connect(mode.options());
  });

  after(async () => {
    await client?.close();
    await vasco?.deregister();
    await mode.teardown();
    clearInterval(keepAlive);
  });

  test(`${prefix} bad arguments get the original messages and stable codes`, async () => {
    const pkg = { name: 'svc', version: '1.0.0' };
    const viaCallback = await new Promise((resolve) => {
      const returned = vasco.register(undefined, pkg, (err, deps) => resolve({ err, deps }));
      assert.equal(returned, null, 'nothing was registered');
    });
    assert.ok(viaCallback.err instanceof Error);
    assert.equal(viaCallback.err.message, 'Need url of service');
    assert.equal(viaCallback.err.code, 'need_url');
    await assert.rejects(vasco.register('', pkg), { message: 'Need url of service', code: 'need_url' });
    // The original's messages come first (2018 code matching them keeps working), the detail after.
    for (const bad of [undefined, null, {}, 'pkg', { name: 'svc' }, { version: '1.0.0' }, { name: '', version: '1.0.0' }]) {
      await assert.rejects(vasco.register('127.0.0.1:1', bad), (err) => {
        assert.equal(err.code, 'invalid_package');
        assert.match(err.message, /^Invalid package: ./);
        return true;
      });
    }
    await assert.rejects(vasco.register('127.0.0.1:1', { name: 'svc' }), { message: /^Invalid package: "version" is missing/ });
    await assert.rejects(vasco.register('127.0.0.1:1', { version: '1.0.0' }), { message: /^Invalid package: "name" is missing/ });
    // A typo in the vasco key is not silently ignored.
    await assert.rejects(vasco.register('127.0.0.1:1', { name: 'svc', version: '1.0.0', vasco: { dependecies: { api: '1' } } }), (err) => {
      assert.equal(err.code, 'invalid_package');
      assert.match(err.message, /^Invalid package: unknown key "dependecies" in "vasco" \(did you mean "dependencies"\?/);
      return true;
    });
    await assert.rejects(client.register({ name: 'svc', version: '1.0.0', url: '127.0.0.1:1', tll: 3 }), {
      code: 'invalid_argument',
      message: /unknown key "tll" \(did you mean "ttl"\?/,
    });
    assert.throws(() => vasco.connect({ url: 'memory:', cacheTTL: 10 }), { code: 'invalid_argument', message: /did you mean "cacheTtl"\?/ });
    const field = (url, p, code, fieldName) =>
      assert.rejects(vasco.register(url, p), (err) => {
        assert.equal(err.code, code);
        assert.equal(err.field, fieldName);
        assert.match(err.message, new RegExp(fieldName));
        return true;
      });
    await field('127.0.0.1:1', { name: 'svc', version: '1.0.0', vasco: { aliveDuration: -1 } }, 'invalid_ttl', 'ttl');
    await field('127.0.0.1:1', { name: 'svc', version: '1.0.0', vasco: { aliveDuration: 'soon' } }, 'invalid_ttl', 'ttl');
    await field('127.0.0.1:1', { name: 'Not A Name', version: '1.0.0' }, 'invalid_name', 'name');
    await field('127.0.0.1:1', { name: 'svc', version: 'one' }, 'invalid_version', 'version');
    await field('not a url', pkg, 'invalid_url', 'url');
    await field('127.0.0.1:1', { name: 'svc', version: '1.0.0', vasco: { dependencies: { api: 2 } } }, 'invalid_dependencies', 'dependencies');

    await assert.rejects(vasco.findDependencies('api'), { code: 'invalid_dependencies' });
    await assert.rejects(vasco.findDependencies({ api: '>>1' }), { code: 'invalid_dependencies' });
    await assert.rejects(vasco.findDependencies({ api: '1' }, { api: 3000 }), { code: 'invalid_mocks' });
    const cbErr = await new Promise((resolve) => vasco.findDependencies({ 'Bad Name': '1' }, {}, (err) => resolve(err)));
    assert.equal(cbErr.code, 'invalid_dependencies');

    assert.throws(() => vasco.connect({ url: 'redis://127.0.0.1:6379' }), (err) => {
      assert.equal(err.code, 'invalid_registry_url');
      assert.match(err.message, /no longer uses Redis/);
      assert.match(err.message, /VASCO_URL/);
      assert.match(err.message, /memory:/);
      return true;
    });
    assert.throws(() => vasco.connect({ url: 'ftp://example.com' }), { code: 'invalid_registry_url' });
    // VASCO_URL mistakes a new user makes: each message names the url and says what to write.
    assert.throws(() => vasco.connect({ url: 'http//x' }), { code: 'invalid_registry_url', message: /"http\/\/x".*did you mean http:\/\/x\?/ });
    assert.throws(() => vasco.connect({ url: '10.0.0.9:6379' }), { code: 'invalid_registry_url', message: /"10\.0\.0\.9:6379".*no longer uses Redis/ });
    await assert.rejects(vasco.connect({ url: '127.0.0.1:1', handleSignals: false }).findDependencies({ api: '1' }), (err) => {
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /http:\/\/127\.0\.0\.1:1\/v1\/resolve/, 'names the url');
      assert.match(err.message, /bad port: fetch refuses to connect to port 1/);
      return true;
    });
    assert.throws(() => vasco.connect({ url: 'memory:', timeout: -1 }), { code: 'invalid_argument' });
    await assert.rejects(client.pick('api', '*', { strategy: 'fastest' }), { code: 'invalid_strategy' });
    await assert.rejects(client.instances('Not A Name'), { code: 'invalid_name' });
    await assert.rejects(client.instances('api', '>>1'), { code: 'invalid_version' });
    await assert.rejects(client.register({ name: 'svc', version: '1.0.0' }), { message: 'Need url of service' });
    await assert.rejects(client.register({ url: '127.0.0.1:1', version: '1.0.0' }), { code: 'invalid_name' });
    await assert.rejects(client.register(null), { code: 'invalid_argument' });
    await assert.rejects(client.register({ name: 'svc', version: '1.0.0', url: '127.0.0.1:1', ttl: 0 }), { code: 'invalid_ttl' });
  });

  test(`${prefix} two versions of a service resolve by exact version and by range`, async () => {
    const name = unique('api');
    const v1 = await client.register({ name, version: '1.0.0', url: '127.0.0.1:4001' });
    const v2 = await client.register({ name, version: '2.1.0', url: '127.0.0.1:4002' });
    assert.equal(v1.instance.version, '1.0.0');
    const find = (range) => vasco.findDependencies({ [name]: range }, {});
    assert.deepEqual(await find('1.0.0'), { [name]: '127.0.0.1:4001' });
    assert.deepEqual(await find('v1.0.0'), { [name]: '127.0.0.1:4001' });
    assert.deepEqual(await find('2.1.0'), { [name]: '127.0.0.1:4002' });
    assert.deepEqual(await find('^2'), { [name]: '127.0.0.1:4002' });
    assert.deepEqual(await find('1.x'), { [name]: '127.0.0.1:4001' });
    assert.deepEqual(await find('>=1'), { [name]: '127.0.0.1:4002' }, 'the newest matching version wins');
    // The original's message, then the range asked and what is live instead.
    await assert.rejects(find('3.0.0'), { message: `No url for: ${name} (wanted ${name} 3.0.0: live versions 2.1.0, 1.0.0)`, code: 'no_url' });
    await assert.rejects(client.pick(name, '^3'), { message: `No url for: ${name} (wanted ${name} ^3: live versions 2.1.0, 1.0.0)`, code: 'no_url' });

    const all = await client.instances(name);
    assert.deepEqual(all.map((i) => i.version), ['2.1.0', '1.0.0'], 'newest version first');
    assert.deepEqual((await client.instances(name, '<2')).map((i) => i.url), ['127.0.0.1:4001']);
    const resolution = await client.resolve({ [name]: '^1 || ^2' });
    assert.equal(resolution.resolved[name].version, '2.1.0');
    assert.deepEqual(resolution.resolved[name].instances.map((i) => i.url), ['127.0.0.1:4002']);
    assert.deepEqual(resolution.missing, []);
    assert.ok(Object.isFrozen(all[0]), 'cached instances are shared, so frozen');

    await v1.deregister();
    await v2.deregister();
  });

  test(`${prefix} scoped package names work as the original's did`, async () => {
    const base = unique('api');
    const scoped = `@acme/${base}`;
    const pending = vasco.register('127.0.0.1:4010', { name: scoped, version: '1.2.0' });
    const registration = pending.registration;
    assert.deepEqual(await pending, {}, 'no dependencies');
    try {
      assert.equal(registration.instance.service, `acme.${base}`, 'stored under a key-safe name');
      assert.deepEqual(await vasco.findDependencies({ [scoped]: '^1' }, {}), { [scoped]: '127.0.0.1:4010' });
      const missing = `@acme/${unique('gone')}`;
      await assert.rejects(vasco.findDependencies({ [scoped]: '^1', [missing]: '1.0.0' }, {}), (err) => {
        assert.equal(err.code, 'no_url');
        assert.deepEqual(err.missing, [missing]);
        assert.deepEqual(err.dependencies, { [scoped]: '127.0.0.1:4010' });
        return true;
      });
      const resolution = await client.resolve({ [scoped]: '1.2.0' });
      assert.deepEqual(resolution.resolved[scoped].instances.map((i) => i.url), ['127.0.0.1:4010']);
    } finally {
      await registration.deregister();
    }
  });

  test(`${prefix} mocks win, and only for dependencies`, async () => {
    const api = unique('api');
    const auth = unique('auth');
    const reg = await client.register({ name: api, version: '2.0.0', url: '127.0.0.1:4101' });
    const urls = await vasco.findDependencies({ [api]: '2.0.0', [auth]: '1.0.0' }, { [auth]: 'localhost:3000', other: 'x:1' });
    assert.deepEqual(urls, { [api]: '127.0.0.1:4101', [auth]: 'localhost:3000' });
    const mockedApi = await client.findDependencies({ [api]: '2.0.0' }, { [api]: 'http://mock.local:9' });
    assert.deepEqual(mockedApi, { [api]: 'http://mock.local:9' }, 'a mock replaces even a live instance');
    const resolution = await client.resolve({ [auth]: '1' }, { [auth]: 'localhost:3000' });
    assert.deepEqual(resolution.resolved[auth], { mock: 'localhost:3000', instances: [] });
    await reg.deregister();
  });

  test(`${prefix} a dependent registers before its dependency, then resolves it in the background`, async () => {
    const dep = unique('late');
    const app = unique('frontend');
    const pkg = { name: app, version: '1.3.0', vasco: { dependencies: { [dep]: '^1' }, aliveDuration: 5 } };
    const pending = vasco.register('127.0.0.1:5001', pkg);
    const registration = pending.registration;
    assert.ok(registration, 'the promise carries the registration');
    const err = await pending.then(
      () => assert.fail('must report the missing dependency'),
      (e) => e,
    );
    assert.equal(err.message, `No url for: ${dep} (wanted ${dep} ^1: no live instance)`);
    assert.equal(err.code, 'no_url');
    assert.deepEqual(err.missing, [dep]);
    assert.deepEqual(registration.missing, [dep]);
    assert.ok((await mode.ids(app)).includes(registration.id), 'registered itself anyway');

    const resolved = once(registration, 'dependencies', { signal: AbortSignal.timeout(10_000) });
    const depRegistration = await client.register({ name: dep, version: '1.2.0', url: '127.0.0.1:5002' });
    const [urls] = await resolved;
    assert.deepEqual(urls, { [dep]: '127.0.0.1:5002' });
    assert.deepEqual(registration.dependencies, { [dep]: '127.0.0.1:5002' });
    assert.deepEqual(registration.missing, []);
    assert.deepEqual(await vasco.findDependencies({ [dep]: '^1' }), { [dep]: '127.0.0.1:5002' });

    // The callback form reports the same, with the urls found so far.
    const other = unique('other');
    const viaCallback = await new Promise((resolve) => {
      const r = vasco.register('127.0.0.1:5003', { name: unique('app'), version: '1.0.0', vasco: { dependencies: { [dep]: '1', [other]: '1' } } }, (e, deps) =>
        resolve({ e, deps, r }),
      );
    });
    assert.equal(viaCallback.e.message, `No url for: ${other} (wanted ${other} 1: no live instance)`);
    assert.deepEqual(viaCallback.deps, { [dep]: '127.0.0.1:5002' });
    await viaCallback.r.deregister();

    // The modern API resolves with the handle and lists what is missing.
    const modern = await client.register({ name: unique('app'), version: '1.0.0', url: '127.0.0.1:5004', dependencies: { [other]: '*' } });
    assert.deepEqual(modern.missing, [other]);
    await modern.deregister();

    await registration.deregister();
    await depRegistration.deregister();
  });

  test(`${prefix} heartbeats keep a 1 s lease alive across many TTLs`, async () => {
    const name = unique('beat');
    const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6001', ttl: 1 });
    let beats = 0;
    registration.on('heartbeat', () => {
      beats += 1;
    });
    const start = Date.now();
    let looks = 0;
    while (Date.now() - start < 4500) {
      const ids = await mode.ids(name);
      assert.ok(ids.includes(registration.id), `the instance vanished ${Date.now() - start} ms in`);
      looks += 1;
      await sleep(50);
    }
    assert.ok(looks > 20, `looked ${looks} times`);
    assert.ok(beats >= 9, `only ${beats} heartbeats in 4.5 s with a 1 s lease`);
    await registration.deregister();
    assert.ok(!(await mode.ids(name)).includes(registration.id));
  });

  test(`${prefix} an instance expires once its process stops beating`, async () => {
    const name = unique('gone');
    let id;
    let stopped;
    if (mode.name === 'http') {
      const child = startChild('service.cjs', { SVC_NAME: name, SVC_TTL: '1' });
      ({ id } = await child.message('registered'));
      assert.ok((await mode.ids(name)).includes(id));
      child.kill('SIGKILL'); // no chance to deregister
      await child.exited;
    } else {
      const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6101', ttl: 1 });
      id = registration.id;
      registration.stop(); // heartbeats stop; nothing is deregistered
    }
    stopped = Date.now();
    await waitFor(async () => !(await mode.ids(name)).includes(id), { timeout: 4000, message: 'expiry' });
    const took = Date.now() - stopped;
    assert.ok(took <= 1500, `gone ${took} ms after the last beat with a 1 s lease`);
  });

  test(`${prefix} another client never answers with an instance whose lease has ended`, async () => {
    const name = unique('lapse');
    const owner = vasco.connect({ ...mode.options(), handleSignals: false });
    // A fresh observer with the default cache (5 s): longer than the 1 s lease. Without change
    // feeds: this is the HTTP cache's rule (a feed's answers follow removals instead, which the
    // registry sends when the object reaps the lease: tests/npm/sockets.test.mjs).
    const observer = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false });
    const registration = await owner.register({ name, version: '1.0.0', url: '127.0.0.1:6151', ttl: 1 });
    const id = registration.id;
    assert.deepEqual((await observer.instances(name)).map((i) => i.id), [id]);
    assert.equal((await observer.pick(name, { strategy: 'maglev', key: 'user-1' })).id, id);
    registration.stop(); // its process "dies": no more heartbeats, nothing deregistered

    // Judged on the registry's clock: it runs on this machine's clock, but stamps a request
    // with the time it arrived (workerd's clock moves only between I/O), so at a local time t
    // it reads at least t - lag. A lease has surely ended once asked - lag >= expires_at.
    // Every answer is checked until it is gone. (waitFor retries on a throw, so violations
    // are collected and asserted after it.)
    let lag = 0;
    const late = [];
    // Default reads come from the registry's membership snapshot, which the service's object
    // rewrites when it reaps the lease (coalesced to one write a second) and the Worker caches
    // for up to VASCO_CACHE_MS (1 s): an answer may list a lapsed member that long, never more.
    const slack = mode.name === 'http' ? 2_000 : 0;
    const check = (asked, instance, how) => {
      if (instance && instance.id === id && asked - lag - slack >= instance.expires_at) {
        late.push(`${how} ${asked - lag - instance.expires_at} ms late (registry lag ${lag} ms)`);
      }
    };
    await waitFor(
      async () => {
        lag = Math.max(lag, (await mode.registryLag?.()) ?? 0);
        let asked = Date.now();
        const list = await observer.instances(name);
        for (const instance of list) check(asked, instance, 'instances()');
        asked = Date.now();
        check(asked, await observer.pick(name).catch(() => null), 'pick()');
        asked = Date.now();
        check(asked, await observer.pick(name, { strategy: 'maglev', key: 'user-1' }).catch(() => null), 'pick(key)');
        asked = Date.now();
        const found = await observer.findDependencies({ [name]: '1' }).catch(() => ({}));
        if (found[name]) check(asked, { id, expires_at: registration.instance.expires_at }, 'findDependencies()');
        return !list.some((i) => i.id === id);
      },
      { timeout: 8000, message: `${id} to be gone from the observer's answers` },
    );
    assert.deepEqual(late, [], `answered with ${id} after its lease ended`);
    await assert.rejects(observer.pick(name), { code: 'no_url' });
    await owner.close({ deregister: false });
    await observer.close();
  });

  test(`${prefix} concurrent cold lookups share one request per question`, { skip: mode.name !== 'http' && 'counts HTTP requests' }, async () => {
    const a = unique('co-a');
    const b = unique('co-b');
    const c = unique('co-c');
    const regs = [];
    for (const [name, port] of [[a, 6301], [b, 6302], [c, 6303]]) {
      regs.push(await client.register({ name, version: '1.0.0', url: `127.0.0.1:${port}` }));
    }
    // Count the package's requests where it makes them: the global fetch.
    const realFetch = globalThis.fetch;
    const requests = [];
    globalThis.fetch = (url, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
      return realFetch(url, init);
    };
    try {
      // Without change feeds, which would answer without any HTTP request at all.
      const cold = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false });
      const found = await Promise.all(Array.from({ length: 50 }, () => cold.findDependencies({ [a]: '^1', [b]: '1' })));
      assert.ok(found.every((urls) => urls[a] === '127.0.0.1:6301' && urls[b] === '127.0.0.1:6302'));
      assert.deepEqual(requests, ['POST /v1/resolve'], '50 callers, one question, one request');

      // Overlapping questions: only what nobody is asking yet is asked.
      requests.length = 0;
      const other = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false });
      const [ab, bc] = await Promise.all([other.findDependencies({ [a]: '1', [b]: '1' }), other.findDependencies({ [b]: '1', [c]: '1' })]);
      assert.equal(bc[b], ab[b]);
      assert.equal(bc[c], '127.0.0.1:6303');
      assert.equal(requests.length, 2, `asked ${JSON.stringify(requests)}`);

      // Instance lists and picks of a new client: one GET, however many callers.
      requests.length = 0;
      const third = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false });
      const lists = await Promise.all([
        ...Array.from({ length: 25 }, () => third.instances(a)),
        ...Array.from({ length: 25 }, (_, i) => third.pick(a, { strategy: 'maglev', key: `k${i}` })),
      ]);
      assert.equal(lists.length, 50);
      assert.deepEqual(requests, [`GET /v1/services/${a}`]);
      for (const c_ of [cold, other, third]) await c_.close();
    } finally {
      globalThis.fetch = realFetch;
      for (const r of regs) await r.deregister();
    }
  });

  test(`${prefix} the answer cache stays within cacheSize however many questions are asked`, async () => {
    const name = unique('bounded');
    const regs = [];
    for (const [version, port] of [['1.0.0', 6501], ['2.0.0', 6502]]) {
      regs.push(await client.register({ name, version, url: `127.0.0.1:${port}` }));
    }
    // Default reads are the registry's snapshot, which trails a lease socket's write by up to 1 s.
    const probe = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false, cacheTtl: 0 });
    await waitFor(async () => (await probe.instances(name)).length === 2, { timeout: 5000, message: 'both versions listed' });
    await probe.close();
    const small = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false, cacheSize: 8 });
    assert.throws(() => vasco.connect({ ...mode.options(), cacheSize: 0 }), { code: 'invalid_argument', message: /cacheSize/ });
    // A watched question stays however much else is asked.
    const seen = [];
    const unwatch = small.watch(name, '^2', (list) => seen.push(list.map((i) => i.url)));
    // 200 distinct questions (ranges and tags), 20 at a time, all in flight together: each is
    // answered right although the cache holds 8, and its handles die under the callers' feet.
    const ranges = Array.from({ length: 100 }, (_, i) => (i % 2 ? `>=1.0.0 <2.0.${i + 1}` : `1.0.0 || 2.0.0 || 9.9.${i}`));
    for (let start = 0; start < ranges.length; start += 20) {
      const batch = ranges.slice(start, start + 20);
      const [picks, lists] = await Promise.all([
        Promise.all(batch.map((range) => small.pick(name, range))),
        Promise.all(batch.map((range) => small.instances(name, range, { status: 'passing' }))),
      ]);
      for (const pick of picks) assert.equal(pick.url, '127.0.0.1:6502', 'the newest version in range');
      for (const list of lists) assert.deepEqual(list.map((i) => i.url).sort(), ['127.0.0.1:6501', '127.0.0.1:6502']);
      assert.ok(small.cachedQuestions <= 8 + 1, `${small.cachedQuestions} questions held`);
    }
    const found = await Promise.all(
      Array.from({ length: 30 }, (_, i) => small.findDependencies({ [name]: `>=1.0.0 <2.1.${i}` })),
    );
    for (const urls of found) assert.equal(urls[name], '127.0.0.1:6502');
    assert.ok(small.cachedQuestions <= 8 + 1, `${small.cachedQuestions} questions held`);
    // One question written two ways (`*` and no range) is one slot: once it is pushed out, both
    // spellings ask again, and a resolution of more dependencies than the cache holds answers
    // every one of them.
    const tiny = vasco.connect({ ...mode.options(), handleSignals: false, feeds: false, cacheSize: 1 });
    const others = [`${name}-b`, `${name}-c`];
    for (const [i, other] of others.entries()) {
      regs.push(await client.register({ name: other, version: '1.0.0', url: `127.0.0.1:${6504 + i}` }));
    }
    await tiny.pick(name);
    await tiny.pick(name, '*');
    await tiny.pick(name, '^1');
    assert.equal((await tiny.pick(name)).url, '127.0.0.1:6502');
    assert.equal((await tiny.instances(name, '*')).length, 2);
    const all = await waitFor(
      async () => {
        const urls = await tiny.findDependencies({ [name]: '^2', [others[0]]: '1', [others[1]]: '1' }).catch((error) => {
          // The registry's snapshot may not list the new ones yet: that is `no_url`, and only that.
          if (error.code === 'no_url') return null;
          throw error;
        });
        return urls && Object.keys(urls).length === 3 && urls;
      },
      { timeout: 5000, message: 'three dependencies resolved with cacheSize 1' },
    );
    assert.deepEqual(all, { [name]: '127.0.0.1:6502', [others[0]]: '127.0.0.1:6504', [others[1]]: '127.0.0.1:6505' });
    assert.deepEqual(await tiny.findDependencies({ [name]: '^2', [others[0]]: '1', [others[1]]: '1' }), all);
    await tiny.close();
    // The watched question survived all that: it still hears about a new instance.
    await waitFor(() => seen.length > 0, { timeout: 5000, message: 'the first watch answer' });
    regs.push(await client.register({ name, version: '2.1.0', url: `127.0.0.1:6503` }));
    await waitFor(() => seen.at(-1)?.includes('127.0.0.1:6503'), { timeout: 8000, message: 'the watch to see 2.1.0' });
    unwatch();
    await small.close();
    for (const r of regs) await r.deregister();
  });

  test(`${prefix} a memoized sticky pick follows an ejection`, async () => {
    const name = unique('sticky');
    const regs = [];
    for (const port of [6401, 6402, 6403]) regs.push(await client.register({ name, version: '1.0.0', url: `127.0.0.1:${port}` }));
    const sticky = vasco.connect({ ...mode.options(), handleSignals: false });
    const first = await sticky.pick(name, { strategy: 'maglev', key: 'user-7' });
    for (let i = 0; i < 10; i += 1) assert.equal((await sticky.pick(name, { strategy: 'maglev', key: 'user-7' })).url, first.url);
    let ejected = false;
    for (let i = 0; i < 5; i += 1) ejected = sticky.reportFailure(name, first.url);
    assert.equal(ejected, true);
    const moved = await sticky.pick(name, { strategy: 'maglev', key: 'user-7' });
    assert.notEqual(moved.url, first.url, 'the key moved off the ejected instance at once');
    assert.equal((await sticky.pick(name, { strategy: 'maglev', key: 'user-7' })).url, moved.url);
    await sticky.close();
    for (const r of regs) await r.deregister();
  });

  test(`${prefix} the original API keeps a register()-only process alive; connect() does not`, async () => {
    const name = unique('alive');
    const child = startChild('register-only.cjs', { SVC_NAME: name, SVC_TTL: '1' });
    try {
      const { id } = await child.message('registered');
      // Heartbeats keep coming (every ~ttl/3): the process did not exit after registering.
      await waitFor(() => child.messages.filter((m) => m.heartbeat).length >= 3 || child.child.exitCode !== null, {
        timeout: 10_000,
        message: 'three heartbeats',
      });
      assert.equal(child.child.exitCode, null, `exited after registering (stderr: ${child.stderr()})`);
      if (mode.name === 'http') assert.ok((await mode.ids(name)).includes(id));
      child.kill('SIGTERM');
      const { signal } = await child.exited;
      assert.equal(signal, 'SIGTERM');
      assert.ok(child.messages.some((m) => m.deregistered), 'deregistered on the way out');
    } finally {
      child.kill('SIGKILL');
    }
    // The modern API's timers are unref'd: with nothing else to do, the process exits.
    const modern = startChild('register-only.cjs', { SVC_NAME: unique('cli'), SVC_TTL: '1', SVC_MODERN: '1' });
    const exit = await modern.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, modern.stderr());
    assert.ok(modern.messages.some((m) => m.registered));
    if (mode.name === 'http') await mode.remove(modern.messages[0]?.name ?? '', '1.0.0', modern.messages[0]?.id ?? '');
  });

  test(`${prefix} deregister() removes the instance at once`, async () => {
    const name = unique('bye');
    const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6201', ttl: 60 });
    assert.ok((await mode.ids(name)).includes(registration.id));
    const event = once(registration, 'deregistered');
    await registration.deregister();
    await event;
    assert.deepEqual(await mode.ids(name), []);
    await registration.deregister(); // idempotent
    assert.equal(registration.active, false);

    // The original API: vasco.deregister() removes everything register() added.
    const pkgName = unique('orig');
    const urls = await vasco.register('127.0.0.1:6202', { name: pkgName, version: '1.0.0', vasco: { aliveDuration: 60 } });
    assert.deepEqual(urls, {});
    assert.equal((await mode.ids(pkgName)).length, 1);
    await vasco.deregister();
    assert.deepEqual(await mode.ids(pkgName), []);
  });

  test(`${prefix} SIGTERM deregisters before the process exits (unless opted out)`, async () => {
    const name = unique('term');
    const child = startChild('service.cjs', { SVC_NAME: name, SVC_TTL: '60', DEBUG: 'vasco' });
    const { id } = await child.message('registered');
    if (mode.name === 'http') assert.ok((await mode.ids(name)).includes(id));
    child.kill('SIGTERM');
    const { code, signal } = await child.exited;
    assert.equal(signal, 'SIGTERM', `exits by the signal, as without vasco (code ${code}, ${child.stderr()})`);
    assert.ok(child.messages.some((m) => m.deregistered), 'deregistered first');
    // DEBUG=vasco logs what happened, like the `debug` package would.
    assert.match(child.stderr(), new RegExp(`vasco registered ${name}@1\\.0\\.0/`));
    assert.match(child.stderr(), /vasco SIGTERM: deregistering 1 instance/);
    if (mode.name === 'http') {
      assert.ok(!(await mode.ids(name)).includes(id), 'gone long before its 60 s lease');

      const optOut = startChild('service.cjs', { SVC_NAME: name, SVC_TTL: '60', SVC_SIGNALS: '0' });
      const kept = await optOut.message('registered');
      optOut.kill('SIGTERM');
      const exit = await optOut.exited;
      assert.equal(exit.signal, 'SIGTERM');
      assert.ok(!optOut.messages.some((m) => m.deregistered), 'with handleSignals: false nothing deregisters');
      // The lease was held on a WebSocket: the exit closed it, and the registry dropped the
      // instance with it rather than at the end of its 60 s lease.
      assert.equal(kept.socket, true);
      await waitFor(async () => !(await mode.ids(name)).includes(kept.id), { timeout: 5000, message: 'the closed lease socket removed it' });
    }
  });

  test(`${prefix} health status: setStatus, a health check and drain() decide picks and lookups`, async () => {
    const name = unique('health');
    let healthy = true;
    const a = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6901', ttl: 3, healthCheck: () => healthy });
    const b = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6902', ttl: 3 });
    const picked = async (n = 20) => {
      const urls = new Set();
      for (let i = 0; i < n; i += 1) urls.add((await client.pick(name, { strategy: 'round-robin' })).url);
      return [...urls].sort();
    };
    await waitFor(async () => (await picked()).length === 2, { message: 'both picked' });
    await a.setStatus('maintenance', 'deploy');
    await waitFor(async () => (await picked()).join() === b.url, { message: 'a out of picks' });
    assert.deepEqual((await client.instances(name)).map((i) => i.url), [b.url]);
    assert.deepEqual((await client.instances(name, { all: true })).map((i) => [i.url, i.status, i.reason ?? null]), [
      [a.url, 'maintenance', 'deploy'],
      [b.url, 'passing', null],
    ]);
    await a.setStatus('passing');
    await waitFor(async () => (await picked()).length === 2, { message: 'a back' });

    // The check fails: critical at the next beat (every ttl/3), with its note; then passing.
    healthy = false;
    await waitFor(() => a.status === 'critical', { timeout: 5000, message: 'a critical' });
    assert.equal(a.instance.reason, 'the health check returned false');
    await waitFor(async () => (await picked()).join() === b.url, { message: 'a out of picks after its check failed' });
    healthy = true;
    await waitFor(() => a.status === 'passing', { timeout: 5000, message: 'a passing again' });

    await b.drain({ timeout: 100 });
    assert.equal(b.active, false);
    assert.deepEqual(await mode.ids(name), [a.id]);
    await a.deregister();
  });

  test(`${prefix} reportFailure ejects an instance from picks`, async () => {
    const name = unique('flaky');
    const regs = [];
    for (const port of [7001, 7002, 7003]) {
      regs.push(await client.register({ name, version: '1.0.0', url: `127.0.0.1:${port}` }));
    }
    const urls = new Set();
    for (let i = 0; i < 30; i += 1) urls.add((await client.pick(name, '1', { strategy: 'round-robin' })).url);
    assert.equal(urls.size, 3);
    let ejected = false;
    for (let i = 0; i < 5; i += 1) ejected = client.reportFailure(name, '127.0.0.1:7001');
    assert.equal(ejected, true, 'the fifth failure in a row ejects');
    for (let i = 0; i < 50; i += 1) {
      assert.notEqual((await client.pick(name, '1', { strategy: 'round-robin' })).url, '127.0.0.1:7001');
      assert.notEqual((await client.pick(name, { strategy: 'maglev', key: `k${i}` })).url, '127.0.0.1:7001');
    }
    const found = await client.findDependencies({ [name]: '1.0.0' });
    assert.notEqual(found[name], '127.0.0.1:7001', 'findDependencies avoids it too');
    for (const r of regs) await r.deregister();
  });

  test(`${prefix} every strategy picks; consistent hashing sticks to its key`, async () => {
    const name = unique('pick');
    const regs = [];
    for (const port of [7101, 7102, 7103, 7104]) {
      regs.push(await client.register({ name, version: '1.0.0', url: `127.0.0.1:${port}`, weight: port - 7100 }));
    }
    const urls = new Set(regs.map((r) => r.url));
    for (const strategy of [...vasco.strategies(), 'consistent-hash']) {
      const picked = await client.pick(name, '^1', { strategy, key: 'user-42' });
      assert.ok(urls.has(picked.url), strategy);
      if (strategy === 'maglev' || strategy === 'ring' || strategy === 'consistent-hash') {
        for (let i = 0; i < 20; i += 1) {
          assert.equal((await client.pick(name, '^1', { strategy, key: 'user-42' })).url, picked.url, strategy);
        }
      }
    }
    const lr = await client.pick(name, { strategy: 'least-request' });
    client.reportSuccess(name, lr.url);
    await assert.rejects(client.pick(unique('nobody')), (err) => err.code === 'no_url' && /^No url for: /.test(err.message));
    for (const r of regs) await r.deregister();
  });
}
