// The live view's change-feed client (www/js/feed.js), in Node: the model applies changes by
// index (next index applied, old ones ignored, a gap or an unknown version read again), and the
// client loads from the catalog, holds back changes while loading, reads one service again on a
// gap, and loads everything again after a reconnect. A fake WebSocket and a fake fetch stand
// in for the registry; the browser suite (page.test.mjs) runs the real thing.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';

import { ServerClock } from '../../www/js/clock.js';
import { Feed, FeedModel, watchUrl } from '../../www/js/feed.js';

const inst = (version, id, extra = {}) => ({ service: 'api', version, id, url: `h-${id}`, expires_at: 10_000, ttl_ms: 10_000, ...extra });
const ids = (list) => list.map((i) => `${i.version}/${i.id}`);

describe('FeedModel', () => {
  test('applies the next index, ignores old ones, asks for a read on a gap', () => {
    const model = new FeedModel();
    model.load('api', 5, [inst('2.0.0', 'b'), inst('1.0.0', 'a')]);
    assert.equal(model.apply({ service: 'api', index: 6, added: [inst('2.0.0', 'a')] }), 'applied');
    assert.deepEqual(ids(model.instances()), ['2.0.0/a', '2.0.0/b', '1.0.0/a']);
    assert.equal(model.index('api'), 6);
    // Late or repeated: nothing changes.
    assert.equal(model.apply({ service: 'api', index: 6, removed: [{ service: 'api', version: '2.0.0', id: 'a' }] }), 'old');
    assert.equal(model.apply({ service: 'api', index: 3, added: [inst('2.0.0', 'z')] }), 'old');
    assert.deepEqual(ids(model.instances()), ['2.0.0/a', '2.0.0/b', '1.0.0/a']);
    // A gap: 7 was missed.
    assert.equal(model.apply({ service: 'api', index: 8, added: [inst('2.0.0', 'c')] }), 'reload');
    assert.equal(model.index('api'), 6, 'a gap changes nothing');
    assert.deepEqual(ids(model.instances()), ['2.0.0/a', '2.0.0/b', '1.0.0/a']);
  });

  test('updates in place, removes, and keeps ids in order within a version', () => {
    const model = new FeedModel();
    model.load('api', 2, [inst('1.0.0', 'b'), inst('1.0.0', 'd')]);
    const event = {
      service: 'api',
      index: 3,
      added: [inst('1.0.0', 'e'), inst('1.0.0', 'a'), inst('1.0.0', 'c')],
      updated: [inst('1.0.0', 'b', { url: 'moved' })],
      removed: [{ service: 'api', version: '1.0.0', id: 'd' }, { service: 'api', version: '1.0.0', id: 'unknown' }],
    };
    assert.equal(model.apply(event), 'applied');
    assert.deepEqual(ids(model.instances()), ['1.0.0/a', '1.0.0/b', '1.0.0/c', '1.0.0/e']);
    assert.equal(model.instances()[1].url, 'moved');
  });

  test('a version the page does not hold, or a service without a known index, is read again', () => {
    const model = new FeedModel();
    model.load('api', 4, [inst('1.0.0', 'a')]);
    // Where 1.10.0 goes among the versions is the registry's order, not the page's guess.
    assert.equal(model.apply({ service: 'api', index: 5, added: [inst('1.10.0', 'x')] }), 'reload');
    // The last member of a version leaves and another joins it in one change: read too.
    const swap = { service: 'api', index: 5, added: [inst('2.0.0', 'n')], removed: [{ service: 'api', version: '1.0.0', id: 'a' }] };
    assert.equal(model.apply(swap), 'reload');
    assert.deepEqual(ids(model.instances()), ['1.0.0/a']);
    // A service the catalog did not list (it had no members) has no known index.
    assert.equal(model.apply({ service: 'new', index: 2, added: [{ ...inst('1.0.0', 'a'), service: 'new' }] }), 'reload');
  });

  test('services come out by name', () => {
    const model = new FeedModel();
    model.load('web', 2, [{ ...inst('1.0.0', 'w'), service: 'web' }]);
    model.load('api', 2, [inst('1.0.0', 'a')]);
    model.load('empty', 3, []);
    assert.deepEqual(model.instances().map((i) => i.service), ['api', 'web']);
  });

  test('watchUrl: same origin, ws or wss, the read token as ?token=', () => {
    assert.equal(watchUrl('http://127.0.0.1:8787/#live', ''), 'ws://127.0.0.1:8787/v1/watch');
    assert.equal(watchUrl('https://r.example/x?y', 'a b&c'), 'wss://r.example/v1/watch?token=a+b%26c');
  });
});

// --- the client, over a fake socket and a fake fetch ------------------------------------------

class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  /** @type {FakeSocket[]} */
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = FakeSocket.OPEN;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close() {
    this.readyState = FakeSocket.CLOSED;
  }
  /** The registry sends `message`. */
  push(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  /** The connection drops. */
  drop() {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code: 1006 });
  }
}

/** Services as the registry's objects hold them: name → {index, instances}. */
let registry;
/** Every request the client made, as `METHOD path`. */
let requests;
/** Reads held until the test lets them answer: path → resolve. */
let held;
const saved = {};

function fakeFetch(path) {
  requests.push(`GET ${path}`);
  const answer = () => {
    const name = decodeURIComponent(/^\/v1\/services\/([^?]+)\?consistent&all$/.exec(path)?.[1] ?? '');
    const service = registry.get(name) ?? { index: 1, instances: [] };
    return new Response(JSON.stringify({ service: name, instances: service.instances }), {
      headers: { 'x-vasco-index': String(service.index), 'x-vasco-now': '1000', 'content-type': 'application/json' },
    });
  };
  if (held.has(path)) {
    return new Promise((resolve) => {
      held.set(path, () => resolve(answer()));
    });
  }
  return Promise.resolve(answer());
}

/** Lets queued promise callbacks and zero-delay timers run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Lets callbacks run until `condition` holds (at most 50 turns of the event loop). */
async function until(condition, what) {
  for (let turn = 0; turn < 50 && !condition(); turn++) await settle();
  assert.ok(condition(), what);
}

/** Every feed a test made, stopped after it (its ping timer would keep Node alive). */
let feeds = [];

function makeFeed() {
  const seen = [];
  const failures = [];
  const feed = new Feed({
    token: () => '',
    clock: new ServerClock(),
    onData: (instances) => seen.push(ids(instances).join(' ')),
    onFailure: (err) => {
      failures.push(err.message);
      return 0;
    },
    retryDelay: () => 0,
    onFallback: () => assert.fail('no fallback expected'),
  });
  feeds.push(feed);
  return { feed, seen, failures, last: () => seen.at(-1) };
}

describe('Feed', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    registry = new Map();
    requests = [];
    held = new Map();
    for (const name of ['WebSocket', 'fetch', 'location']) saved[name] = Object.getOwnPropertyDescriptor(globalThis, name);
    Object.defineProperty(globalThis, 'WebSocket', { value: FakeSocket, configurable: true, writable: true });
    Object.defineProperty(globalThis, 'fetch', { value: fakeFetch, configurable: true, writable: true });
    Object.defineProperty(globalThis, 'location', { value: { href: 'http://127.0.0.1:8787/' }, configurable: true, writable: true });
  });
  afterEach(() => {
    for (const feed of feeds) feed.stop();
    feeds = [];
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete globalThis[name];
    }
  });

  test('loads each catalog service once, applies changes meanwhile by index, then reads nothing', async () => {
    registry.set('api', { index: 4, instances: [inst('1.0.0', 'a')] });
    registry.set('web', { index: 9, instances: [{ ...inst('1.0.0', 'w'), service: 'web' }] });
    held.set('/v1/services/api?consistent&all', null);
    const { feed, last } = makeFeed();
    feed.start();
    const socket = FakeSocket.all[0];
    assert.equal(socket.url, 'ws://127.0.0.1:8787/v1/watch');
    socket.push({ type: 'catalog', services: [{ name: 'api', index: 4 }, { name: 'web', index: 9 }], now: 1000 });
    await settle();
    // While api's read is out, a change for it comes (index 5), and one already in the read (4).
    registry.get('api').index = 5;
    registry.get('api').instances.push(inst('1.0.0', 'b'));
    socket.push({ type: 'change', service: 'api', index: 4, added: [inst('1.0.0', 'stale')] });
    socket.push({ type: 'change', service: 'api', index: 5, added: [inst('1.0.0', 'b')] });
    held.get('/v1/services/api?consistent&all')();
    await settle();
    assert.equal(last(), '1.0.0/a 1.0.0/b 1.0.0/w');
    assert.deepEqual(requests.sort(), ['GET /v1/services/api?consistent&all', 'GET /v1/services/web?consistent&all']);

    // Steady state: each change is applied from the message alone.
    requests = [];
    socket.push({ type: 'change', service: 'web', index: 10, removed: [{ service: 'web', version: '1.0.0', id: 'w' }] });
    socket.push({ type: 'change', service: 'web', index: 10, removed: [] });
    await settle();
    assert.equal(last(), '1.0.0/a 1.0.0/b');
    assert.deepEqual(requests, [], 'no request for changes that arrive in order');
    feed.stop();
  });

  test('a gap or an overtaken message reads that one service again; the late one is then ignored', async () => {
    registry.set('api', { index: 2, instances: [inst('1.0.0', 'a')] });
    const { feed, last } = makeFeed();
    feed.start();
    const socket = FakeSocket.all[0];
    socket.push({ type: 'catalog', services: [{ name: 'api', index: 2 }], now: 1000 });
    await settle();
    requests = [];
    // 4 overtakes 3: the service is read (at 4), and 3, arriving late, changes nothing.
    registry.set('api', { index: 4, instances: [inst('1.0.0', 'a'), inst('1.0.0', 'b'), inst('1.0.0', 'c')] });
    held.set('/v1/services/api?consistent&all', null);
    socket.push({ type: 'change', service: 'api', index: 4, added: [inst('1.0.0', 'c')] });
    socket.push({ type: 'change', service: 'api', index: 3, added: [inst('1.0.0', 'b')] });
    await settle();
    held.get('/v1/services/api?consistent&all')();
    await settle();
    assert.deepEqual(requests, ['GET /v1/services/api?consistent&all']);
    assert.equal(last(), '1.0.0/a 1.0.0/b 1.0.0/c');
    socket.push({ type: 'change', service: 'api', index: 5, removed: [{ service: 'api', version: '1.0.0', id: 'b' }] });
    await settle();
    assert.equal(last(), '1.0.0/a 1.0.0/c');
    feed.stop();
  });

  test('a dropped socket is reported, reopened, and everything is loaded again', async () => {
    registry.set('api', { index: 2, instances: [inst('1.0.0', 'a')] });
    const { feed, last, failures } = makeFeed();
    feed.start();
    FakeSocket.all[0].push({ type: 'catalog', services: [{ name: 'api', index: 2 }], now: 1000 });
    await settle();
    assert.equal(last(), '1.0.0/a');
    // While the socket is down, a leaves and web joins: no message will say so.
    FakeSocket.all[0].drop();
    registry.set('api', { index: 3, instances: [] });
    registry.set('web', { index: 2, instances: [{ ...inst('1.0.0', 'w'), service: 'web' }] });
    assert.deepEqual(failures, ['Registry unreachable (the change feed closed)']);
    await until(() => FakeSocket.all.length === 2, 'a new socket after the reconnect delay (0 here)');
    FakeSocket.all[1].push({ type: 'catalog', services: [{ name: 'web', index: 2 }], now: 2000 });
    await settle();
    assert.equal(last(), '1.0.0/w', 'api, absent from the new catalog, is gone');
    feed.stop();
    assert.equal(FakeSocket.all[1].readyState, FakeSocket.CLOSED);
  });
});
